//! What [`EnvCache::ensure`](super::EnvCache::ensure) reports while it works, so a host can
//! show that a slow install is alive.

use std::path::PathBuf;
use std::time::Duration;

use super::installer::InstallerKind;
use super::key::EnvKey;

/// One step of finding or building a venv, passed to the `progress` callback.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvProgress {
    /// Another thread or process is building this venv; waiting for it to finish.
    Waiting {
        /// The venv waited for.
        key: EnvKey,
    },
    /// The venv was already complete: nothing was run.
    Reused {
        /// The venv reused.
        key: EnvKey,
    },
    /// A venv directory without its completion marker (a crashed build) is being deleted.
    RemovingIncomplete {
        /// The directory deleted.
        path: PathBuf,
    },
    /// No `uv` was found: installing troupe's own copy with pip (once per cache, ~10-20 s).
    BootstrappingUv {
        /// The venv that will hold it.
        path: PathBuf,
    },
    /// Creating the empty venv.
    Creating {
        /// The venv created.
        key: EnvKey,
        /// The tool doing it.
        installer: InstallerKind,
    },
    /// Installing the dependencies.
    Installing {
        /// How many requirements.
        count: usize,
    },
    /// A line the installer printed.
    Line(String),
    /// The venv is built and marked complete.
    Done {
        /// The venv built.
        key: EnvKey,
        /// Time spent building it.
        elapsed: Duration,
    },
}

impl EnvProgress {
    /// A one-line account of the step for people, or `None` for installer output lines.
    pub fn summary(&self) -> Option<String> {
        Some(match self {
            EnvProgress::Waiting { key } => format!("waiting for another build of venv {key}"),
            EnvProgress::Reused { key } => format!("venv {key} reused from the cache"),
            EnvProgress::RemovingIncomplete { path } => {
                format!("removing a half-built venv at {}", path.display())
            }
            EnvProgress::BootstrappingUv { .. } => {
                "no uv found: installing troupe's own copy with pip (once)".to_owned()
            }
            EnvProgress::Creating { key, installer } => {
                format!("creating venv {key} with {installer:?}")
            }
            EnvProgress::Installing { count } => format!("installing {count} requirement(s)"),
            EnvProgress::Line(_) => return None,
            EnvProgress::Done { key, elapsed } => {
                format!("venv {key} ready in {:.1} s", elapsed.as_secs_f64())
            }
        })
    }
}

/// A progress callback that ignores everything: `cache.ensure(&spec, &env::quiet)`.
pub fn quiet(_: EnvProgress) {}
