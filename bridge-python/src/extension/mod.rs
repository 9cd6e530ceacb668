//! Python extensions as supervised, bridged actors.
//!
//! [`start`] runs one extension: an actix actor ([`Extension`]) owns its child process
//! (`<venv>/bin/python -m troupe`), sends it calls without waiting for their answers, and
//! serves the calls the child makes (to the host, singletons and other extensions, as the
//! [`Router`] allows) concurrently on the actor's arbiter, so host -> extension -> host ->
//! extension nesting does not deadlock.
//!
//! Failure: when the child dies (crash, `os._exit`, kill -9, OOM, memory limit), every call
//! in flight fails at once with [`CallError::Crashed`](troupe_value::CallError::Crashed)
//! carrying the typed cause and the tail of its stderr; calls made meanwhile wait; the
//! extension restarts per its [`RestartSpec`](troupe_runtime::supervision::RestartSpec)
//! under the runtime's [`Supervisor`] and runs its start-up hooks again; past the restart
//! limit its status is [`SupervisorStatus::GaveUp`](troupe_runtime::supervision::SupervisorStatus::GaveUp)
//! and every call fails with the reason.
//!
//! Threads: see [`session`] for who reads and writes a child's connection.

mod actor;
mod calls;
mod config;
mod handle;
mod router;
mod session;
mod spin_wait;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use troupe_runtime::resource::ResourceMonitor;
use troupe_runtime::supervision::Supervisor;
use troupe_runtime::{ActorBuilder, Intake};

pub use actor::Extension;
pub use calls::CallCounts;
pub use config::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_CANCEL_GRACE, DEFAULT_CAPACITY, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CHILD_CALLS, DEFAULT_MAX_IN_FLIGHT, DEFAULT_START_TIMEOUT, DEFAULT_STOP_TIMEOUT,
    ExtensionConfig, MAX_MEMORY_LIMIT_MB,
};
pub use handle::ExtensionRef;
pub use router::{NoRoutes, Router};

use crate::env::Venv;
use crate::process::{LaunchSpec, Launcher, PythonLauncher};

/// How often memory limits are checked.
const MEMORY_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// Starts `config`'s extension in `venv` (which must hold the `troupe` package: see
/// [`crate::provision`]) on the current arbiter, and returns at once; calls made before the
/// child is ready wait for it. Use [`ExtensionRef::ready`] to wait for the start.
pub fn start(config: ExtensionConfig, venv: Venv, router: Arc<dyn Router>) -> ExtensionRef {
    start_on(None, config, venv, router)
}

/// [`start`] on `arbiter` (the current one when `None`).
pub fn start_on(
    arbiter: Option<&actix_rt::ArbiterHandle>,
    config: ExtensionConfig,
    venv: Venv,
    router: Arc<dyn Router>,
) -> ExtensionRef {
    let launch = launch_spec(&config, &venv);
    start_with(arbiter, config, launch, Arc::new(PythonLauncher), router)
}

/// What launching `config`'s child in `venv` takes.
fn launch_spec(config: &ExtensionConfig, venv: &Venv) -> LaunchSpec {
    LaunchSpec {
        name: config.name.clone(),
        python: venv.python.clone(),
        venv: venv.root.clone(),
        env: config.vars.clone(),
        cwd: config.cwd.clone(),
        sys_path: config.sys_path.clone(),
        memory_limit: config.memory_limit,
        sandbox: config.sandbox.clone(),
        connect_timeout: config.connect_timeout,
        limits: config.link,
    }
}

/// Starts `config`'s extension with children `launcher` makes (a real
/// [`PythonLauncher`], or a fake child in tests) on `arbiter` (the current one when `None`).
pub fn start_with(
    arbiter: Option<&actix_rt::ArbiterHandle>,
    config: ExtensionConfig,
    launch: LaunchSpec,
    launcher: Arc<dyn Launcher>,
    router: Arc<dyn Router>,
) -> ExtensionRef {
    let name: Arc<str> = Arc::from(config.name.as_str());
    let supervisor = Supervisor::new(name.clone(), config.restart);
    let watch = supervisor.watch();
    let (running_tx, running) = watch::channel(None);
    let monitor = config.memory_limit.and_then(|_| memory_monitor());
    let intake = Intake::new();
    let metrics = troupe_runtime::metrics::Metrics::global().extension(&config.name);
    let calls = Arc::new(calls::Calls::new(
        config.max_in_flight,
        config.capacity,
        config.cancel_grace,
        intake.clone(),
        &metrics,
    ));
    let builder = ActorBuilder::new(&*name)
        .capacity(config.capacity)
        .intake(intake);
    let actor = actor::Extension::new(actor::ExtensionParts {
        config,
        launch,
        launcher,
        router,
        monitor,
        supervisor,
        calls: calls.clone(),
        running: running_tx,
        metrics,
    });
    let address = match arbiter {
        Some(arbiter) => builder.spawn_on(arbiter, actor),
        None => builder.spawn(actor),
    };
    ExtensionRef {
        name,
        caller: address.caller(),
        address,
        watch,
        running,
        calls,
    }
}

/// The process-wide sampler for memory limits, started on first use.
fn memory_monitor() -> Option<ResourceMonitor> {
    static MONITOR: OnceLock<Option<ResourceMonitor>> = OnceLock::new();
    MONITOR
        .get_or_init(|| match ResourceMonitor::start(MEMORY_SAMPLE_INTERVAL) {
            Ok(monitor) => Some(monitor),
            Err(e) => {
                tracing::warn!(error = %e, "memory limits cannot be enforced here");
                None
            }
        })
        .clone()
}
