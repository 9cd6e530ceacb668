//! The manifest's shape as serde reads it, before it is checked. Unknown keys are refused
//! here, with their line.

use indexmap::IndexMap;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    #[serde(default)]
    pub(crate) extensions: IndexMap<String, RawExtension>,
    /// Each singleton's table: `kind` plus free-form parameters.
    #[serde(default)]
    pub(crate) singletons: IndexMap<String, IndexMap<String, toml::Value>>,
    #[serde(default)]
    pub(crate) pipelines: IndexMap<String, RawPipeline>,
    #[serde(default)]
    pub(crate) hosts: IndexMap<String, RawHost>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHost {
    pub(crate) connect: Vec<String>,
    pub(crate) call_timeout_ms: Option<u64>,
    pub(crate) lease_ms: Option<u64>,
    pub(crate) tls: Option<RawTls>,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExtension {
    pub(crate) module: String,
    pub(crate) path: Option<String>,
    pub(crate) class: Option<String>,
    #[serde(default)]
    pub(crate) dependencies: Vec<String>,
    pub(crate) pyproject: Option<String>,
    pub(crate) python: Option<String>,
    #[serde(default)]
    pub(crate) system_site_packages: bool,
    pub(crate) restart: Option<RawRestart>,
    pub(crate) memory_limit_mb: Option<u64>,
    pub(crate) call_timeout_ms: Option<u64>,
    pub(crate) start_timeout_ms: Option<u64>,
    pub(crate) cancel_grace_ms: Option<u64>,
    /// A level or a table: checked by `sandbox::sandbox_config`.
    pub(crate) sandbox: Option<toml::Value>,
    #[serde(default)]
    pub(crate) grants: RawGrants,
    #[serde(default)]
    pub(crate) env: IndexMap<String, String>,
    /// `[hosts.NAME]` that serves it; `None`: this host runs it.
    pub(crate) host: Option<String>,
    /// Several hosts serving it, in order of preference (fail-over).
    pub(crate) hosts: Option<Vec<String>>,
    /// Methods safe to run again: retried on the next host after a lost one.
    #[serde(default)]
    pub(crate) idempotent: Vec<String>,
    /// The only users (of `troupe serve --users`) who may call it from other hosts.
    pub(crate) users: Option<Vec<String>>,
}

/// Mutual TLS files of a `quic/` host (paths relative to the manifest).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub(crate) root_ca: String,
    pub(crate) cert: String,
    pub(crate) key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrants {
    #[serde(default)]
    pub(crate) singletons: Vec<String>,
    #[serde(default)]
    pub(crate) extensions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRestart {
    pub(crate) policy: Option<RawRestartPolicy>,
    pub(crate) max_restarts: Option<u32>,
    pub(crate) within_s: Option<f64>,
    pub(crate) backoff_initial_ms: Option<u64>,
    pub(crate) backoff_max_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawRestartPolicy {
    Permanent,
    Transient,
    Temporary,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPipeline {
    #[serde(default)]
    pub(crate) nodes: Vec<RawNode>,
    #[serde(default)]
    pub(crate) edges: Vec<RawEdge>,
    pub(crate) error_policy: Option<RawErrorPolicy>,
    pub(crate) capacity: Option<usize>,
    pub(crate) restart: Option<RawRestart>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) type_name: String,
    #[serde(default)]
    pub(crate) params: IndexMap<String, toml::Value>,
    pub(crate) capacity: Option<usize>,
    pub(crate) error_policy: Option<RawErrorPolicy>,
    pub(crate) restart: Option<RawRestart>,
    /// Built-in processing nodes only: the `[hosts.NAME]` that runs it.
    pub(crate) host: Option<String>,
    /// Python nodes only.
    pub(crate) extension: Option<String>,
    pub(crate) method: Option<String>,
    pub(crate) generator: Option<bool>,
    pub(crate) flush: Option<bool>,
    pub(crate) concurrency: Option<usize>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawErrorPolicy {
    #[serde(alias = "fail")]
    FailPipeline,
    #[serde(alias = "skip")]
    SkipItem,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEdge {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) policy: Option<RawEdgePolicy>,
    pub(crate) capacity: Option<usize>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawEdgePolicy {
    Backpressure,
    DropOldest,
    DropNewest,
}
