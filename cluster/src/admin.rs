//! A serving host's admin service (`troupe/host/NAME/admin`): hello (who it is, which
//! versions it speaks, what it serves) and health; and its lifecycle service
//! (`troupe/host/NAME/lifecycle`): stop and start again one of the extensions its manifest
//! names for it. Nothing else can be started: no code travels with a request.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use troupe_runtime::Caller;

/// Version of the cluster frames ([`crate::frame`] and these); hosts and clients refuse to
/// talk across versions.
pub const CLUSTER_VERSION: u32 = 4;

/// What a client asks the admin service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Who are you and what do you serve?
    Hello,
    /// How are your extensions?
    Health,
}

/// What a client asks the lifecycle service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LifecycleRequest {
    /// Stop this served extension (gracefully: its shutdown hooks run); calls to it fail
    /// with `ActorStopped` until it is started again.
    Stop(String),
    /// Start this served extension again (from the host's manifest), and wait until it is
    /// ready.
    Start(String),
}

/// Why a host did not stop or start an extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum LifecycleError {
    /// The host does not serve an extension of that name.
    #[error("not served by this host")]
    NotServed,
    /// Start: it is running (or still stopping).
    #[error("already running")]
    Running,
    /// Stop: it is not running.
    #[error("not running")]
    NotRunning,
    /// Start: it did not come up (why, as the host saw it).
    #[error("did not start: {0}")]
    NotStarted(String),
    /// The host takes no lifecycle requests (it was started without a lifecycle handler)
    /// or is shutting down.
    #[error("this host does not start or stop extensions now")]
    Unavailable,
}

/// The lifecycle service's answer: done, or why not.
pub type LifecycleReply = Result<(), LifecycleError>;

/// A boxed future a [`Lifecycle`] returns (it runs on the cluster runtime).
pub type LifecycleFuture<T> = Pin<Box<dyn Future<Output = Result<T, LifecycleError>> + Send>>;

/// What stops and starts a serving host's extensions (`troupe serve` implements it on its
/// extension host). Each name it is given is one the host serves.
pub trait Lifecycle: Send + Sync + 'static {
    /// Stops `extension` gracefully and waits until its process ended.
    fn stop(&self, extension: &str) -> LifecycleFuture<()>;
    /// Starts `extension` again, waits until it is ready, and gives its new caller.
    fn start(&self, extension: &str) -> LifecycleFuture<Caller>;
}

/// The admin service's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AdminReply {
    /// The answer to [`AdminRequest::Hello`].
    Hello(Hello),
    /// The answer to [`AdminRequest::Health`].
    Health(Vec<ExtensionHealth>),
}

/// Who a serving host is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Its name (`troupe serve --name`).
    pub host: String,
    /// Its troupe version.
    pub troupe_version: String,
    /// Its version of the cluster frames ([`CLUSTER_VERSION`]).
    pub cluster_version: u32,
    /// Its version of the bridge protocol (`troupe_protocol::PROTOCOL_VERSION`).
    pub protocol_version: u32,
    /// The extensions it serves, in manifest order.
    pub extensions: Vec<String>,
    /// The pipeline nodes it runs for others, as `PIPELINE/NODE`, in manifest order.
    pub nodes: Vec<String>,
}

impl Hello {
    /// This process's hello as host `host` serving `extensions` and `nodes`.
    pub fn ours(host: &str, extensions: Vec<String>, nodes: Vec<String>) -> Hello {
        Hello {
            host: host.to_owned(),
            troupe_version: env!("CARGO_PKG_VERSION").to_owned(),
            cluster_version: CLUSTER_VERSION,
            protocol_version: troupe_protocol::PROTOCOL_VERSION,
            extensions,
            nodes,
        }
    }
}

/// One served extension's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtensionHealth {
    /// The extension.
    pub name: String,
    /// Whether it can take calls (its actor runs).
    pub up: bool,
}
