//! Python extensions as supervised, bridged actors.
//!
//! [`start`] runs one extension: an actix actor ([`Extension`]) owns its child process
//! (`<venv>/bin/python -m troupe`), sends it calls without waiting for their answers, and
//! serves the calls the child makes (to the host, singletons and other extensions, as the
//! [`Router`] allows) concurrently on the actor's arbiter, so host -> extension -> host ->
//! extension nesting does not deadlock.
//!
//! Failure: when the child dies (crash, `os._exit`, kill -9, OOM, memory limit), every call
//! in flight fails at once with [`CallError::Crashed`](troupe_wire::CallError::Crashed)
//! carrying the exit code or signal and the tail of its stderr; calls made meanwhile wait;
//! the extension restarts per its [`RestartSpec`](troupe_runtime::supervision::RestartSpec)
//! and runs its start-up hooks again; past the restart limit it is [`ExtensionStatus::Failed`]
//! and every call fails with the reason.

mod actor;
mod config;
mod handle;
mod pending;
mod router;
mod session;
mod spin_wait;
mod status;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use troupe_runtime::ActorBuilder;
use troupe_runtime::resource::ResourceMonitor;

pub use actor::{CancelCall, Extension, StopExtension, TimedCall};
pub use config::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_CAPACITY, DEFAULT_CONNECT_TIMEOUT, DEFAULT_START_TIMEOUT,
    DEFAULT_STOP_TIMEOUT, ExtensionConfig,
};
pub use handle::ExtensionRef;
pub use router::{NoRoutes, Router};
pub use status::ExtensionStatus;

use crate::env::Venv;

/// How often memory limits are checked.
const MEMORY_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

const EVENT_BACKLOG: usize = 64;

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
    let name: Arc<str> = Arc::from(config.name.as_str());
    let (status_tx, status) = watch::channel(ExtensionStatus::Starting { instance: 1 });
    let (events, _) = broadcast::channel(EVENT_BACKLOG);
    let monitor = config.memory_limit.and_then(|_| memory_monitor());
    let builder = ActorBuilder::new(&*name).capacity(config.capacity);
    let actor = actor::Extension::new(config, venv, router, monitor, status_tx, events.clone());
    let address = match arbiter {
        Some(arbiter) => builder.spawn_on(arbiter, actor),
        None => builder.spawn(actor),
    };
    ExtensionRef {
        name,
        address,
        status,
        events,
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
