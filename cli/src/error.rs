//! The errors a subcommand ends with, and the exit codes they give.

use thiserror::Error;
use troupe_bridge_python::env::EnvError;
use troupe_manifest::ManifestError;
use troupe_pipeline::PipelineError;

/// Why a command failed.
#[derive(Debug, Error)]
pub(crate) enum CliError {
    /// The manifest cannot be read, is wrong, or names what is not in it.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A singleton of the manifest could not start.
    #[error(transparent)]
    Singleton(#[from] troupe_host::singleton::SingletonError),
    /// The pipeline ran and failed.
    #[error("the run failed: {0}")]
    Run(#[from] PipelineError),
    /// The venv cache could not be read or cleaned.
    #[error("venv cache: {0}")]
    Env(#[from] EnvError),
    /// `troupe nodes TYPE` names no node type.
    #[error("unknown node type `{0}` (see `troupe nodes`)")]
    UnknownNodeType(String),
    /// `troupe check` found things a run could not do (each printed above it).
    #[error("{problems} problem(s) found")]
    Check {
        /// How many.
        problems: usize,
    },
    /// Extensions the run needs did not start (why is printed above, once).
    #[error("could not start extension(s): {}", extensions.join(", "))]
    NotStarted {
        /// Their names.
        extensions: Vec<String>,
    },
    /// `troupe listen` cannot serve: its arguments do not fit the manifest, or the address
    /// cannot be bound.
    #[error("listen: {0}")]
    Listen(String),
    /// `--metrics ADDR` could not be served.
    #[error("cannot serve metrics at {address}: {source}")]
    Metrics {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// What binding it said.
        source: std::io::Error,
    },
    /// Serving, or reaching a remote host, failed (a refused endpoint, nothing listening,
    /// no hello).
    #[error(transparent)]
    Cluster(#[from] troupe_cluster::ClusterError),
    /// `troupe host NAME` names no `[hosts.NAME]` of the manifest.
    #[error("no [hosts.{host}] in the manifest (it has: {})", known.join(", "))]
    UnknownHost {
        /// The name given.
        host: String,
        /// The manifest's hosts.
        known: Vec<String>,
    },
    /// The benchmark harness failed.
    #[error(transparent)]
    Bench(troupe_bench::BenchError),
}

impl CliError {
    /// 1 when a run failed, 130 when Ctrl-C stopped it (as a shell reports SIGINT), 2 when
    /// the input was wrong.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Run(PipelineError::Cancelled) => 130,
            CliError::Run(_) | CliError::NotStarted { .. } => 1,
            _ => 2,
        }
    }
}
