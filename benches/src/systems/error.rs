//! Why a system has no rows in a scenario.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use thiserror::Error;
use troupe_bridge_python::EnvError;

/// Why a system has no rows in a scenario.
#[derive(Debug, Error)]
pub(crate) enum SystemError {
    /// A child process could not be started.
    #[error("cannot spawn {what}: {source}")]
    Spawn {
        /// The program.
        what: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The child exited before it connected.
    #[error("the child exited before connecting ({status})")]
    ChildExited {
        /// Its exit status.
        status: ExitStatus,
    },
    /// The child did not connect (or the driver did not finish) within the deadline.
    #[error("no answer within {0:?}")]
    Deadline(Duration),
    /// Talking to a child failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The venv for a Python peer could not be built (e.g. no network to PyPI).
    #[error("cannot build its venv: {0}")]
    Venv(#[from] EnvError),
    /// The Python driver exited with a failure.
    #[error("the driver failed ({status}); last lines of {}:\n{tail}", log.display())]
    Driver {
        /// Its exit status.
        status: ExitStatus,
        /// Its full output.
        log: PathBuf,
        /// The end of that output.
        tail: String,
    },
    /// The driver's results file is missing or malformed.
    #[error("unreadable driver results {}: {detail}", path.display())]
    Results {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The system cannot do what the scenario asks (the reason is the whole message).
    #[error("{0}")]
    Unsupported(String),
    /// The slot of a system that exists in the plan but is not measurable yet.
    #[error("not measured yet: {0}")]
    Pending(&'static str),
    /// A shared set-up failed earlier in this run; its first report carried the details,
    /// this one the first line.
    #[error("its set-up failed earlier in this run ({0} ...)")]
    Earlier(String),
}

impl SystemError {
    /// A closure turning an I/O error into [`SystemError::Io`] with `context`.
    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> SystemError {
        move |source| SystemError::Io { context, source }
    }
}
