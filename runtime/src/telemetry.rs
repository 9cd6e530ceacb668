//! Logging and tracing set-up.
//!
//! Every call through an [`Address`](crate::Address) runs in a `call` span (at debug level)
//! carrying the actor's name, the method and the call id; supervision events log at warn and
//! error. [`init`] installs a subscriber that shows them.

use thiserror::Error;
use tracing_subscriber::EnvFilter;

/// Why the subscriber could not be installed.
#[derive(Debug, Error)]
pub enum TelemetryError {
    /// The filter does not parse.
    #[error("bad log filter {filter:?}: {reason}")]
    BadFilter {
        /// The filter given.
        filter: String,
        /// What the parser said.
        reason: String,
    },
    /// A global subscriber was already installed.
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per event.
    Json,
}

/// What [`init_with`] installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// An `EnvFilter` directive, e.g. `info,troupe_runtime=debug`.
    pub filter: String,
    /// Output format.
    pub format: Format,
}

impl TelemetryConfig {
    /// The config from the environment: filter from `TROUPE_LOG`, else `RUST_LOG`, else
    /// `info`; JSON when `TROUPE_LOG_FORMAT=json`.
    pub fn from_env() -> TelemetryConfig {
        let filter = std::env::var("TROUPE_LOG")
            .or_else(|_| std::env::var("RUST_LOG"))
            .unwrap_or_else(|_| "info".into());
        let format = match std::env::var("TROUPE_LOG_FORMAT").as_deref() {
            Ok("json") => Format::Json,
            _ => Format::Text,
        };
        TelemetryConfig { filter, format }
    }
}

/// Installs the global subscriber configured from the environment (see
/// [`TelemetryConfig::from_env`]). Logs go to stderr.
pub fn init() -> Result<(), TelemetryError> {
    init_with(TelemetryConfig::from_env())
}

/// Installs the global subscriber `config` describes.
pub fn init_with(config: TelemetryConfig) -> Result<(), TelemetryError> {
    let filter = EnvFilter::try_new(&config.filter).map_err(|e| TelemetryError::BadFilter {
        filter: config.filter.clone(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match config.format {
        Format::Text => builder.try_init(),
        Format::Json => builder.json().with_current_span(true).try_init(),
    };
    installed.map_err(|_| TelemetryError::AlreadyInstalled)
}
