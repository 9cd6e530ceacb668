//! What can go wrong while finding or building a venv.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

use super::installer::InstallerKind;

/// Why a venv could not be provided. Every failure concerns one spec only: the cache stays
/// usable for the others.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// The interpreter could not be started (missing, not executable) or gave no usable
    /// answer to the version probe.
    #[error("python interpreter {} is unusable: {detail}", python.display())]
    Interpreter {
        /// The interpreter as the spec named it.
        python: PathBuf,
        /// What happened, for people.
        detail: String,
    },
    /// A dependency string that must not reach an installer: empty, or an option such as
    /// `--index-url=...` that would change how every other requirement is resolved.
    #[error("requirement {requirement:?} rejected: {reason}")]
    Requirement {
        /// The string as declared.
        requirement: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// No cache directory could be found: `TROUPE_CACHE_DIR` unset and no home directory.
    #[error("no cache directory: set TROUPE_CACHE_DIR")]
    NoCacheDir,
    /// A file operation failed: an unwritable or full cache directory, a lock file that
    /// cannot be opened, an installer binary that cannot be started.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file, directory or program concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The installer failed to create the empty venv (`uv venv` or `python -m venv`).
    #[error("creating the venv for {spec} with {installer} failed ({status}):\n{message}")]
    Create {
        /// The extension and its dependencies, for messages.
        spec: String,
        /// The tool that failed.
        installer: InstallerKind,
        /// Its exit status.
        status: ExitStatus,
        /// The last lines it printed.
        message: String,
    },
    /// The installer failed to install the dependencies: usually an unsatisfiable or
    /// unknown requirement, or an unreachable package index.
    #[error("installing {spec} with {installer} failed ({status}):\n{message}")]
    Install {
        /// The extension and its dependencies, for messages.
        spec: String,
        /// The tool that failed.
        installer: InstallerKind,
        /// Its exit status.
        status: ExitStatus,
        /// The last lines it printed: the resolver's explanation.
        message: String,
    },
}

impl EnvError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
