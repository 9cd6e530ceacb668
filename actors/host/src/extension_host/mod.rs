//! The extension host: builds each extension's venv, starts the extensions as bridged actors,
//! and routes their calls to the host, singletons and each other per their [`Grants`].
//!
//! ```no_run
//! use troupe_host::extension_host::{ExtensionHost, Grants};
//! use troupe_bridge_python::extension::ExtensionConfig;
//! use troupe_value::Value;
//!
//! # async fn run() {
//! let host = ExtensionHost::builder()
//!     .extension(
//!         ExtensionConfig::new("stats", "stats_plugin").path("plugins").dependencies(["numpy>=2"]),
//!         Grants::host_only().singletons(["kv"]),
//!     )
//!     .start()
//!     .await;
//! let stats = host.extension("stats").expect("started");
//! let mean: f64 = stats.call_as("mean", vec![Value::from(vec![1.0, 2.0])]).await.unwrap();
//! host.shutdown().await;
//! # }
//! ```

mod grants;
mod python_node;
mod router;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use indexmap::IndexMap;
use thiserror::Error;
use troupe_bridge_python::env::{EnvCache, EnvError, EnvProgress, Venv};
use troupe_bridge_python::extension::{self, ExtensionConfig, ExtensionRef};
use troupe_bridge_python::provision::{self, ProvisionError};
use troupe_runtime::supervision::{ExitReason, SupervisorStatus};
use troupe_runtime::{Caller, Registry};
use troupe_value::ExitCause;

pub use grants::Grants;
pub use python_node::{PythonNode, PythonNodeSpec, STREAM_WINDOW};

use router::HostRouter;

/// Why an extension was not started. The host starts the others regardless.
#[derive(Debug, Error)]
pub enum HostError {
    /// Its venv could not be found or built (the resolver's message is inside).
    #[error("extension {extension}: environment: {source}")]
    Env {
        /// The extension.
        extension: String,
        /// What went wrong.
        #[source]
        source: EnvError,
    },
    /// The `troupe` package could not be put into its venv.
    #[error("extension {extension}: provisioning the troupe package: {source}")]
    Provision {
        /// The extension.
        extension: String,
        /// What went wrong.
        #[source]
        source: ProvisionError,
    },
    /// Two extensions have the same name.
    #[error("two extensions are named {0:?}")]
    Duplicate(String),
    /// The venv build task died.
    #[error("extension {extension}: preparing its environment failed: {reason}")]
    Task {
        /// The extension.
        extension: String,
        /// Why.
        reason: String,
    },
}

type Progress = Arc<dyn Fn(&str, EnvProgress) + Send + Sync>;

/// Collects extensions, singletons and the host's own service, then starts them all.
#[must_use]
pub struct ExtensionHostBuilder {
    cache: Option<EnvCache>,
    entries: Vec<(ExtensionConfig, Grants)>,
    singletons: Registry,
    host: Option<Caller>,
    remote: Vec<(String, Caller)>,
    progress: Progress,
}

impl std::fmt::Debug for ExtensionHostBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionHostBuilder")
            .field("extensions", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl ExtensionHostBuilder {
    /// Uses `cache` for venvs (default: [`EnvCache::from_env`]).
    pub fn cache(mut self, cache: EnvCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Adds an extension allowed to make the calls `grants` lists.
    pub fn extension(mut self, config: ExtensionConfig, grants: Grants) -> Self {
        self.entries.push((config, grants));
        self
    }

    /// Looks singletons up in `registry` (shared with the rest of the program).
    pub fn singletons(mut self, registry: Registry) -> Self {
        self.singletons = registry;
        self
    }

    /// Lets extensions reach extension `name` served elsewhere (another host's, through
    /// its caller) by name, as they reach this host's own: only those granted it may call
    /// it. The host keeps `caller` while it runs.
    pub fn remote_extension(mut self, name: impl Into<String>, caller: Caller) -> Self {
        self.remote.push((name.into(), caller));
        self
    }

    /// Serves `troupe.host.<method>(...)` with `caller`.
    pub fn host(mut self, caller: Caller) -> Self {
        self.host = Some(caller);
        self
    }

    /// Hears venv progress (per extension), e.g. to show a long install is alive.
    pub fn on_progress(
        mut self,
        progress: impl Fn(&str, EnvProgress) + Send + Sync + 'static,
    ) -> Self {
        self.progress = Arc::new(progress);
        self
    }

    /// Adds extensions, each allowed to make the calls its grants list (a manifest's
    /// extensions, say).
    pub fn extensions(
        mut self,
        extensions: impl IntoIterator<Item = (ExtensionConfig, Grants)>,
    ) -> Self {
        self.entries.extend(extensions);
        self
    }

    /// [`start`](Self::start), then waits for every extension's start-up hooks: the host
    /// when all of them run, else (after stopping those that started) every extension that
    /// did not, and why.
    ///
    /// # Errors
    /// The extensions that are not running at the end of their start.
    pub async fn start_ready(self) -> Result<ExtensionHost, Vec<NotStarted>> {
        let host = self.start().await;
        let mut not_started: Vec<NotStarted> = host
            .failed()
            .iter()
            .map(|(extension, error)| NotStarted {
                extension: extension.clone(),
                reason: error.to_string(),
                traceback: String::new(),
            })
            .collect();
        for (extension, status) in host.ready().await {
            not_started.extend(NotStarted::from_status(&extension, &status));
        }
        if not_started.is_empty() {
            Ok(host)
        } else {
            host.shutdown().await;
            Err(not_started)
        }
    }

    /// Prepares every extension's venv (concurrently), then starts the extensions on the
    /// current arbiter. Extensions whose venv cannot be made are listed in
    /// [`ExtensionHost::failed`]; the others start. Returns once every child is spawned;
    /// use [`ExtensionHost::ready`] to wait for their start-up hooks.
    pub async fn start(self) -> ExtensionHost {
        let ExtensionHostBuilder {
            cache,
            entries,
            singletons,
            host,
            remote,
            progress,
        } = self;
        let cache = match cache.map(Ok).unwrap_or_else(EnvCache::from_env) {
            Ok(cache) => Some(Arc::new(cache)),
            Err(error) => {
                tracing::error!(%error, "no venv cache directory");
                None
            }
        };
        let mut router = HostRouter::new(singletons, host);
        for (name, caller) in remote {
            router.add_remote(&name, caller);
        }
        let mut host = ExtensionHost {
            router: Arc::new(router),
            cache,
            progress,
            extensions: RwLock::default(),
            failed: IndexMap::new(),
            closed: AtomicBool::new(false),
        };
        let mut preparing = Vec::new();
        for (config, grant) in entries {
            if !host.router.grant(&config.name, grant) {
                let name = config.name.clone();
                host.failed.insert(name.clone(), HostError::Duplicate(name));
                continue;
            }
            let venv = host.prepare(&config);
            preparing.push((config, venv));
        }
        // Venvs build concurrently; extensions start in the order given.
        for (config, venv) in preparing {
            match venv.await {
                Ok(venv) => {
                    host.launch(config, venv);
                }
                Err(error) => {
                    tracing::error!(extension = %config.name, %error, "extension not started");
                    host.router.forget(&config.name);
                    host.failed.insert(config.name, error);
                }
            }
        }
        host
    }
}

/// An extension that did not come up, as [`ExtensionHostBuilder::start_ready`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotStarted {
    /// The extension.
    pub extension: String,
    /// Why, in words: its venv could not be made, its start-up raised, it crashed...
    pub reason: String,
    /// The Python traceback of an exception raised while it started; empty otherwise.
    pub traceback: String,
}

impl std::fmt::Display for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.extension, self.reason)
    }
}

impl NotStarted {
    /// Why an extension with `status` at the end of its start is not running, or `None`
    /// if it runs.
    fn from_status(extension: &str, status: &SupervisorStatus) -> Option<NotStarted> {
        let last = match status {
            SupervisorStatus::Stopped(last) | SupervisorStatus::Restarting { last, .. } => last,
            SupervisorStatus::GaveUp(give_up) => &give_up.last_exit,
            SupervisorStatus::Starting { .. } | SupervisorStatus::Running { .. } => return None,
        };
        let traceback = match last {
            ExitReason::Crashed(info) => match &info.cause {
                ExitCause::StartFailed(exception) => exception.traceback.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        Some(NotStarted {
            extension: extension.to_owned(),
            reason: last.to_string(),
            traceback,
        })
    }
}

/// Running extensions, by name. Extensions may be added ([`ExtensionHost::add`]) and stopped
/// ([`ExtensionHost::stop_extension`]) while the others run.
pub struct ExtensionHost {
    router: Arc<HostRouter>,
    /// Where added extensions' venvs come from; `None` when no cache directory exists.
    cache: Option<Arc<EnvCache>>,
    progress: Progress,
    extensions: RwLock<IndexMap<String, ExtensionRef>>,
    failed: IndexMap<String, HostError>,
    /// Set by [`ExtensionHost::shutdown`]: nothing more starts.
    closed: AtomicBool,
}

impl std::fmt::Debug for ExtensionHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionHost")
            .field("extensions", &self.names())
            .field("failed", &self.failed.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ExtensionHost {
    /// Makes python nodes from these extensions and the remote ones it was given (a
    /// manifest's pipeline loader takes it for the pipelines' python nodes). A node whose
    /// extension did not start fails to build with
    /// [`CallError::ActorStopped`](troupe_value::CallError::ActorStopped).
    pub fn python_nodes(
        &self,
    ) -> impl Fn(&PythonNodeSpec) -> Result<Box<dyn troupe_nodes::Node>, troupe_nodes::NodeError>
    + Send
    + Sync
    + 'static {
        let extensions = self.read().clone();
        let remote = self.router.remote().clone();
        move |spec| match (extensions.get(&spec.extension), remote.get(&spec.extension)) {
            (Some(extension), _) => {
                python_node::check_methods(extension, spec)?;
                Ok(Box::new(PythonNode::new(extension.caller(), spec)))
            }
            (None, Some(caller)) => Ok(Box::new(PythonNode::new(caller.clone(), spec))),
            (None, None) => Err(troupe_nodes::NodeError::Call {
                method: spec.method.clone(),
                source: Box::new(troupe_value::CallError::ActorStopped),
            }),
        }
    }

    /// A builder with no extensions.
    pub fn builder() -> ExtensionHostBuilder {
        ExtensionHostBuilder {
            cache: None,
            entries: Vec::new(),
            singletons: Registry::new(),
            host: None,
            remote: Vec::new(),
            progress: Arc::new(|_, _| {}),
        }
    }

    /// The caller of extension `name` served by another host (given with
    /// [`ExtensionHostBuilder::remote_extension`]), if it is one.
    pub fn remote_extension(&self, name: &str) -> Option<Caller> {
        self.router.remote().get(name).cloned()
    }

    /// The extension called `name`, if it runs (was started or added, and not stopped).
    pub fn extension(&self, name: &str) -> Option<ExtensionRef> {
        self.read().get(name).cloned()
    }

    /// Every running extension, in the order started or added.
    pub fn extensions(&self) -> Vec<ExtensionRef> {
        self.read().values().cloned().collect()
    }

    /// The running extensions' names, in the order started or added.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Extensions of the first start that could not be started, and why.
    pub fn failed(&self) -> &IndexMap<String, HostError> {
        &self.failed
    }

    /// The registry singletons are looked up in.
    pub fn singletons(&self) -> &Registry {
        &self.router.singletons
    }

    /// Waits until every started extension runs or is done for good; returns their statuses.
    pub async fn ready(&self) -> Vec<(String, SupervisorStatus)> {
        let extensions = self.read().clone();
        let mut statuses = Vec::with_capacity(extensions.len());
        for (name, ext) in extensions {
            let status = ext.ready().await;
            statuses.push((name, status));
        }
        statuses
    }

    /// Starts one more extension next to the running ones, allowed the calls `grants`
    /// lists (calls to it from the others follow their grants, as for any extension), and
    /// waits for its start-up hooks.
    ///
    /// # Errors
    /// [`AddError::Duplicate`] if an extension of that name runs, is being added or is
    /// stopping; [`AddError::Prepare`] if its venv could not be made;
    /// [`AddError::NotStarted`] if it did not come up (it is stopped then);
    /// [`AddError::ShutDown`] once the host is shutting down.
    pub async fn add(
        &self,
        config: ExtensionConfig,
        grants: Grants,
    ) -> Result<ExtensionRef, AddError> {
        let name = config.name.clone();
        // The grant reserves the name until this add fails or the extension has stopped.
        if self.read().contains_key(&name) || !self.router.grant(&name, grants) {
            return Err(AddError::Duplicate(name));
        }
        let venv = match self.prepare(&config).await {
            Ok(venv) => venv,
            Err(source) => {
                self.router.forget(&name);
                return Err(AddError::Prepare {
                    extension: name,
                    source,
                });
            }
        };
        let Some(extension) = self.launch(config, venv) else {
            self.router.forget(&name);
            return Err(AddError::ShutDown);
        };
        match NotStarted::from_status(&name, &extension.ready().await) {
            None => Ok(extension),
            Some(not_started) => {
                self.stop(&extension).await;
                Err(AddError::NotStarted(not_started))
            }
        }
    }

    /// Stops extension `name` gracefully and waits for its process to end (see
    /// [`ExtensionHost::stop`]). Returns whether there was one (running, restarting or
    /// given up).
    pub async fn stop_extension(&self, name: &str) -> bool {
        let extension = self.extension(name);
        match extension {
            Some(extension) => self.stop(&extension).await,
            None => false,
        }
    }

    /// Stops `extension` gracefully and waits for its process to end, if it is still the
    /// one listed under its name (not one started again since). It keeps its grants while
    /// it stops (its `prepare_shutdown` may call what it was allowed to); then its grants
    /// and address leave the router, calls to it fail with `ActorStopped`, and its name
    /// may be added again. Returns whether it was listed.
    pub async fn stop(&self, extension: &ExtensionRef) -> bool {
        let name = extension.name();
        let listed = {
            let mut extensions = self
                .extensions
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let listed = extensions.get(name).is_some_and(|e| e.is_same(extension));
            if listed {
                extensions.shift_remove(name);
            }
            listed
        };
        extension.stop().await;
        if listed {
            self.router.forget(name);
        }
        listed
    }

    /// Stops every extension gracefully (in parallel) and waits for their processes to
    /// end; nothing is added from then on.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let stops: Vec<_> = self
            .extensions()
            .into_iter()
            .map(|ext| actix_rt::spawn(async move { ext.stop().await }))
            .collect();
        for stop in stops {
            let _ = stop.await;
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, IndexMap<String, ExtensionRef>> {
        self.extensions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Finds or builds `config`'s venv and puts the `troupe` package in it, on a blocking
    /// thread started now (so several build at once); the future waits for it.
    fn prepare(
        &self,
        config: &ExtensionConfig,
    ) -> impl Future<Output = Result<Venv, HostError>> + use<> {
        let name = config.name.clone();
        let task = self.cache.clone().map(|cache| {
            let progress = self.progress.clone();
            let spec = config.env.clone();
            let name = name.clone();
            actix_rt::task::spawn_blocking(move || {
                let venv =
                    cache
                        .ensure(&spec, &|step| progress(&name, step))
                        .map_err(|source| HostError::Env {
                            extension: name.clone(),
                            source,
                        })?;
                provision::provision(&venv).map_err(|source| HostError::Provision {
                    extension: name.clone(),
                    source,
                })?;
                Ok(venv)
            })
        });
        async move {
            let Some(task) = task else {
                return Err(HostError::Env {
                    extension: name,
                    source: EnvError::NoCacheDir,
                });
            };
            task.await.unwrap_or_else(|e| {
                Err(HostError::Task {
                    extension: name,
                    reason: e.to_string(),
                })
            })
        }
    }

    /// Starts `config` in `venv` on the current arbiter and lists it; `None` (and nothing
    /// starts) once the host is shutting down.
    fn launch(&self, config: ExtensionConfig, venv: Venv) -> Option<ExtensionRef> {
        let name = config.name.clone();
        let mut extensions = self
            .extensions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Checked under the lock `shutdown` takes after setting it: an extension is either
        // listed before shutdown looks, or not started.
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        let extension = extension::start(config, venv, self.router.clone());
        self.router.add_extension(&name, &extension.caller());
        extensions.insert(name, extension.clone());
        Some(extension)
    }
}

/// Why [`ExtensionHost::add`] did not add an extension.
#[derive(Debug, Error)]
pub enum AddError {
    /// An extension of that name runs, or is being added.
    #[error("an extension named {0:?} runs already")]
    Duplicate(String),
    /// Its venv could not be made or provisioned.
    #[error("{source}")]
    Prepare {
        /// The extension.
        extension: String,
        /// What went wrong.
        #[source]
        source: HostError,
    },
    /// It was spawned but did not come up (its start-up raised, it crashed...).
    #[error("{0}")]
    NotStarted(NotStarted),
    /// The host is shutting down.
    #[error("the extension host is shutting down")]
    ShutDown,
}
