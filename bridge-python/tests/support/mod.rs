//! Shared set-up of the bridge tests: one venv cache per target dir, the probe plugin, and
//! a host service that calls back into an extension.

#![allow(dead_code)]

pub(crate) mod cuda;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::prelude::*;
use troupe_bridge_python::env::{self, EnvCache, EnvSpec, Venv};
use troupe_bridge_python::extension::{self, ExtensionConfig, ExtensionRef, NoRoutes, Router};
use troupe_bridge_python::provision;
use troupe_protocol::Target;
use troupe_runtime::{ActorBuilder, Call, CallResult, Caller, Registry};
use troupe_value::{CallError, Value};

/// The cache all bridge tests share (kept between runs under the target dir).
pub(crate) fn cache() -> EnvCache {
    EnvCache::new(Path::new(env!("CARGO_TARGET_TMPDIR")).join("troupe-test-venvs"))
}

/// A venv with `deps`, provisioned with the troupe package.
pub(crate) fn venv(deps: &[&str]) -> Venv {
    venv_for(&EnvSpec::new(deps.iter().copied()))
}

/// The venv `spec` describes, provisioned with the troupe package.
pub(crate) fn venv_for(spec: &EnvSpec) -> Venv {
    let venv = cache().ensure(spec, &env::quiet).expect("venv builds");
    provision::provision(&venv).expect("troupe package provisioned");
    venv
}

/// Starts test plugin `module` (in [`plugins`]) as extension `name` in `venv`, with no
/// routes, and waits (at most `patience`) until it runs.
pub(crate) async fn start_plugin(
    name: &str,
    module: &str,
    venv: Venv,
    patience: Duration,
) -> ExtensionRef {
    let config = ExtensionConfig::new(name, module).path(plugins());
    let ext = extension::start(config, venv, Arc::new(NoRoutes));
    let status = ext.ready_within(patience).await;
    assert!(status.is_ok(), "{status:?}");
    ext
}

/// [`start_plugin`] in a venv with `deps` (built off the arbiter), waiting up to a minute.
pub(crate) async fn start_plugin_with(name: &str, module: &str, deps: &[&str]) -> ExtensionRef {
    let deps: Vec<String> = deps.iter().map(|d| (*d).to_owned()).collect();
    let venv = actix_rt::task::spawn_blocking(move || venv_for(&EnvSpec::new(deps)))
        .await
        .expect("venv task");
    start_plugin(name, module, venv, Duration::from_secs(60)).await
}

/// Where the test plugins live.
pub(crate) fn plugins() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins")
}

/// The probe extension's config.
pub(crate) fn probe(name: &str) -> ExtensionConfig {
    ExtensionConfig::new(name, "probe").path(plugins())
}

/// Routes host calls to `host`, singletons to `registry`, with a fixed allow-list.
pub(crate) struct TestRouter {
    pub host: Option<Caller>,
    pub registry: Registry,
    pub allowed: Vec<Target>,
}

impl Router for TestRouter {
    fn route(&self, from: &str, target: &Target) -> Result<Caller, CallError> {
        if !self.allowed.contains(target) {
            return Err(CallError::PermissionDenied {
                caller: from.to_owned(),
                target: target.to_string(),
            });
        }
        match target {
            Target::Host => self.host.clone().ok_or(CallError::ActorStopped),
            Target::Singleton(name) | Target::Extension(name) => self
                .registry
                .caller(name)
                .map_err(|_| CallError::ActorStopped),
        }
    }
}

/// The host service: `add(a, b)`, and `recurse(n)` / `recurse_async(n)` that call back into
/// the extension set with [`HostService::bind`].
#[derive(Default)]
pub(crate) struct HostService {
    pub(crate) extension: Arc<OnceLock<Caller>>,
}

impl Actor for HostService {
    type Context = Context<Self>;
}

impl Handler<Call> for HostService {
    type Result = ResponseFuture<CallResult>;

    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> Self::Result {
        let extension = self.extension.get().cloned();
        Box::pin(async move {
            match call.method() {
                "add" => Ok(Value::Int(call.arg::<i64>(0)? + call.arg::<i64>(1)?)),
                method @ ("recurse" | "recurse_async") => {
                    let extension = extension.ok_or(CallError::ActorStopped)?;
                    let depth = call.arg::<i64>(0)?;
                    extension
                        .call(Call::new(method.to_owned(), vec![Value::Int(depth)]))
                        .await
                }
                _ => Err(call.unknown_method()),
            }
        })
    }
}

/// Starts a [`HostService`]; returns its caller and the slot to bind the extension into.
pub(crate) fn host_service() -> (Caller, Arc<OnceLock<Caller>>) {
    let service = HostService::default();
    let slot = service.extension.clone();
    (ActorBuilder::new("host").spawn(service).caller(), slot)
}

/// A key-value singleton answering `put(key, value)` and `get(key)`.
#[derive(Default)]
pub(crate) struct Kv(std::collections::HashMap<String, Value>);

impl Actor for Kv {
    type Context = Context<Self>;
}

impl Handler<Call> for Kv {
    type Result = CallResult;

    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> CallResult {
        match call.method() {
            "put" => {
                let key: String = call.arg(0)?;
                self.0.insert(key, call.arg::<Value>(1)?);
                Ok(Value::Null)
            }
            "get" => Ok(self
                .0
                .get(&call.arg::<String>(0)?)
                .cloned()
                .unwrap_or_default()),
            _ => Err(call.unknown_method()),
        }
    }
}
