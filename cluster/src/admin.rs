//! A serving host's admin service (`troupe/host/NAME/admin`): hello (who it is, which
//! versions it speaks, what it serves) and health.

use serde::{Deserialize, Serialize};

/// Version of the cluster frames ([`crate::frame`] and these); hosts and clients refuse to
/// talk across versions.
pub const CLUSTER_VERSION: u32 = 2;

/// What a client asks the admin service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Who are you and what do you serve?
    Hello,
    /// How are your extensions?
    Health,
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
}

impl Hello {
    /// This process's hello as host `host` serving `extensions`.
    pub fn ours(host: &str, extensions: Vec<String>) -> Hello {
        Hello {
            host: host.to_owned(),
            troupe_version: env!("CARGO_PKG_VERSION").to_owned(),
            cluster_version: CLUSTER_VERSION,
            protocol_version: troupe_protocol::PROTOCOL_VERSION,
            extensions,
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
