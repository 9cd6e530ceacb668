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

use std::sync::Arc;

use indexmap::IndexMap;
use thiserror::Error;
use troupe_bridge_python::env::{EnvCache, EnvError, EnvProgress};
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
            progress,
        } = self;
        let mut failed = IndexMap::new();
        let mut grants = std::collections::HashMap::new();
        let mut configs = Vec::new();
        for (config, grant) in entries {
            if grants.contains_key(&config.name) {
                failed.insert(
                    config.name.clone(),
                    HostError::Duplicate(config.name.clone()),
                );
                continue;
            }
            grants.insert(config.name.clone(), grant);
            configs.push(config);
        }
        let cache = match cache.map(Ok).unwrap_or_else(EnvCache::from_env) {
            Ok(cache) => Arc::new(cache),
            Err(source) => {
                for config in configs {
                    let extension = config.name.clone();
                    let source = EnvError::NoCacheDir;
                    failed.insert(extension.clone(), HostError::Env { extension, source });
                }
                tracing::error!(error = %source, "no venv cache directory");
                return ExtensionHost {
                    router: Arc::default(),
                    extensions: IndexMap::new(),
                    failed,
                };
            }
        };
        let preparing: Vec<_> = configs
            .into_iter()
            .map(|config| {
                let cache = cache.clone();
                let progress = progress.clone();
                let spec = config.env.clone();
                let name = config.name.clone();
                let task = actix_rt::task::spawn_blocking(move || {
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
                });
                (config, task)
            })
            .collect();
        let router = Arc::new(HostRouter {
            singletons,
            host,
            grants,
            extensions: Default::default(),
        });
        let mut extensions = IndexMap::new();
        for (config, task) in preparing {
            let name = config.name.clone();
            let venv = match task.await {
                Ok(Ok(venv)) => venv,
                Ok(Err(e)) => {
                    tracing::error!(extension = %name, error = %e, "extension not started");
                    failed.insert(name, e);
                    continue;
                }
                Err(e) => {
                    let reason = e.to_string();
                    failed.insert(
                        name.clone(),
                        HostError::Task {
                            extension: name,
                            reason,
                        },
                    );
                    continue;
                }
            };
            let ext = extension::start(config, venv, router.clone());
            router.add_extension(&name, &ext.caller());
            extensions.insert(name, ext);
        }
        ExtensionHost {
            router,
            extensions,
            failed,
        }
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

/// Running extensions, by name.
pub struct ExtensionHost {
    router: Arc<HostRouter>,
    extensions: IndexMap<String, ExtensionRef>,
    failed: IndexMap<String, HostError>,
}

impl std::fmt::Debug for ExtensionHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionHost")
            .field("extensions", &self.extensions.keys().collect::<Vec<_>>())
            .field("failed", &self.failed.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ExtensionHost {
    /// Makes python nodes from these extensions (a manifest's pipeline loader takes it for
    /// the pipelines' python nodes). A node whose extension did not start fails to build with
    /// [`CallError::ActorStopped`](troupe_value::CallError::ActorStopped).
    pub fn python_nodes(
        &self,
    ) -> impl Fn(&PythonNodeSpec) -> Result<Box<dyn troupe_nodes::Node>, troupe_nodes::NodeError>
    + Send
    + Sync
    + 'static {
        let extensions = self.extensions.clone();
        move |spec| match extensions.get(&spec.extension) {
            Some(extension) => {
                python_node::check_methods(extension, spec)?;
                Ok(Box::new(PythonNode::new(extension.clone(), spec)))
            }
            None => Err(troupe_nodes::NodeError::Call {
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
            progress: Arc::new(|_, _| {}),
        }
    }

    /// The extension called `name`, if it was started.
    pub fn extension(&self, name: &str) -> Option<&ExtensionRef> {
        self.extensions.get(name)
    }

    /// Every started extension, in the order given.
    pub fn extensions(&self) -> impl Iterator<Item = &ExtensionRef> {
        self.extensions.values()
    }

    /// Extensions that could not be started, and why.
    pub fn failed(&self) -> &IndexMap<String, HostError> {
        &self.failed
    }

    /// The registry singletons are looked up in.
    pub fn singletons(&self) -> &Registry {
        &self.router.singletons
    }

    /// Waits until every started extension runs or is done for good; returns their statuses.
    pub async fn ready(&self) -> Vec<(String, SupervisorStatus)> {
        let mut statuses = Vec::with_capacity(self.extensions.len());
        for (name, ext) in &self.extensions {
            statuses.push((name.clone(), ext.ready().await));
        }
        statuses
    }

    /// Stops every extension gracefully (in parallel) and waits for their processes to end.
    pub async fn shutdown(&self) {
        let stops: Vec<_> = self
            .extensions
            .values()
            .cloned()
            .map(|ext| actix_rt::spawn(async move { ext.stop().await }))
            .collect();
        for stop in stops {
            let _ = stop.await;
        }
    }
}
