//! Why a host could not serve, or a remote host could not be reached.

use std::sync::Arc;

use thiserror::Error;

use crate::admin::LifecycleError;
use crate::endpoint::EndpointError;
use crate::frame::FrameError;
use crate::keys::BadName;

/// Why serving or connecting failed. Each is found at start-up: a host that does not answer
/// its probe is an error at once, never a silent retry.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// An endpoint was refused (`tls/`, a link not compiled in, malformed).
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// A host or extension name cannot be used in a key expression.
    #[error(transparent)]
    Name(#[from] BadName),
    /// An extension on several hosts was given none.
    #[error("extension `{extension}`: no host serves it")]
    NoHost {
        /// The extension.
        extension: String,
    },
    /// No endpoint to listen on or to connect to.
    #[error("{host}: no endpoint given")]
    NoEndpoint {
        /// The host.
        host: String,
    },
    /// The runtime zenoh runs on could not start.
    #[error("cannot start the cluster runtime: {0}")]
    Runtime(#[source] Arc<std::io::Error>),
    /// A task on the cluster runtime panicked or was cancelled.
    #[error("a cluster task failed")]
    TaskFailed,
    /// zenoh refused the configuration troupe made (a bug, or a value it cannot take).
    #[error("zenoh configuration `{key}`: {reason}")]
    Config {
        /// The configuration key.
        key: String,
        /// What zenoh said.
        reason: String,
    },
    /// The session could not be opened: nothing listens at the endpoints, they cannot be
    /// bound, or the credentials were refused.
    #[error("host {host}: cannot open a session on {endpoints}: {reason}")]
    Open {
        /// The host (this one when serving).
        host: String,
        /// The endpoints, comma-separated.
        endpoints: String,
        /// What zenoh said.
        reason: String,
    },
    /// A session is open but declaring what troupe needs on it failed.
    #[error("host {host}: cannot declare {what}: {reason}")]
    Declare {
        /// The host.
        host: String,
        /// What (`liveliness token`, `queryable troupe/host/...`).
        what: String,
        /// What zenoh said.
        reason: String,
    },
    /// The host did not answer its hello within the probe timeout: it is not a troupe host,
    /// not that host, or it is unreachable.
    #[error("host {host}: no answer to hello within {timeout_ms} ms")]
    NoHello {
        /// The host.
        host: String,
        /// The probe timeout.
        timeout_ms: u64,
    },
    /// The host's hello could not be read.
    #[error("host {host}: bad hello: {source}")]
    BadHello {
        /// The host.
        host: String,
        /// Why.
        #[source]
        source: FrameError,
    },
    /// The host speaks another version of the cluster protocol.
    #[error("host {host} speaks cluster protocol {theirs}, this troupe {ours}")]
    Version {
        /// The host.
        host: String,
        /// Its version.
        theirs: u32,
        /// Ours.
        ours: u32,
    },
    /// The host does not serve an extension asked for.
    #[error("host {host} does not serve extension {extension} (it serves: {})", .serves.join(", "))]
    NotServed {
        /// The host.
        host: String,
        /// The extension asked for.
        extension: String,
        /// What it serves.
        serves: Vec<String>,
    },
    /// A pipeline node placed on a host (`host = "NAME"` on the node) is not one it runs:
    /// its manifest does not place that node on it.
    #[error("host {host} does not run node {node} (it runs: {serves:?})")]
    NodeNotServed {
        /// The host.
        host: String,
        /// The node, as `PIPELINE/NODE`.
        node: String,
        /// The nodes it runs.
        serves: Vec<String>,
    },
    /// A host's service (`lifecycle`) gave no answer within the timeout: the host is gone,
    /// or it has a users file and this client's user may not ask it (not an operator).
    #[error(
        "host {host}: no answer from its {service} service within {timeout_ms} ms (gone, or not allowed)"
    )]
    Unanswered {
        /// The host.
        host: String,
        /// The service asked.
        service: &'static str,
        /// How long the client waited.
        timeout_ms: u64,
    },
    /// A host's service (`lifecycle`) answered something that could not be read.
    #[error("host {host}: bad answer from its {service} service: {source}")]
    BadAnswer {
        /// The host.
        host: String,
        /// The service asked.
        service: &'static str,
        /// Why it could not be read.
        #[source]
        source: FrameError,
    },
    /// A host did not stop or start an extension.
    #[error("host {host}: extension {extension}: {source}")]
    Lifecycle {
        /// The host.
        host: String,
        /// The extension.
        extension: String,
        /// Why.
        #[source]
        source: LifecycleError,
    },
}

impl ClusterError {
    /// What a failed declaration of `what` on host `host`'s session becomes.
    pub(crate) fn declare(host: &str, what: String) -> impl FnOnce(zenoh::Error) -> ClusterError {
        let host = host.to_owned();
        move |error| ClusterError::Declare {
            host,
            what,
            reason: error.to_string(),
        }
    }
}
