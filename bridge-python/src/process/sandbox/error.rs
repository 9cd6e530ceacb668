//! Why a sandbox could not be set up.

use std::path::PathBuf;

use thiserror::Error;
use troupe_value::{Protection, SandboxFailure};

/// Why an extension's child was not started: the sandbox its configuration asks for
/// cannot be had here.
#[derive(Debug, Error)]
pub enum SandboxError {
    /// The kernel lacks protections the sandbox requires (`require = true`, or `strict`).
    #[error("{}", SandboxFailure::Unavailable(.0.clone()))]
    Unavailable(Vec<Protection>),
    /// `strict` needs bubblewrap, and `bwrap` is not on `PATH`.
    #[error("{}", SandboxFailure::NoBubblewrap)]
    NoBubblewrap,
    /// `bwrap` is on `PATH` but failed its probe (e.g. no user namespaces).
    #[error("bubblewrap does not work here: {0}")]
    BubblewrapBroken(String),
    /// The Landlock ruleset could not be built.
    #[error("cannot build the landlock ruleset: {0}")]
    Landlock(#[source] landlock::RulesetError),
    /// The seccomp filter could not be compiled.
    #[error("cannot compile the seccomp filter: {0}")]
    Seccomp(#[source] seccompiler::Error),
    /// A file the sandbox needs (its private temp dir, a memfd, a pipe) could not be made.
    #[error("cannot prepare {path}: {source}", path = path.display())]
    Io {
        /// What was being made.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

impl SandboxError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SandboxError {
        let path = path.into();
        move |source| SandboxError::Io { path, source }
    }

    /// What a supervisor records about it (serializable).
    pub fn failure(&self) -> SandboxFailure {
        match self {
            SandboxError::Unavailable(lost) => SandboxFailure::Unavailable(lost.clone()),
            SandboxError::NoBubblewrap => SandboxFailure::NoBubblewrap,
            SandboxError::BubblewrapBroken(reason) => {
                SandboxFailure::BubblewrapBroken(reason.clone())
            }
            other => SandboxFailure::Setup(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use troupe_value::ExitCause;

    use super::*;
    use crate::process::LaunchError;

    #[test]
    fn a_refused_sandbox_is_a_typed_exit_cause() {
        let lost = vec![Protection::Landlock, Protection::Seccomp];
        let crash = LaunchError::Sandbox(SandboxError::Unavailable(lost.clone())).into_crash();
        assert_eq!(
            crash.cause,
            ExitCause::Sandbox(SandboxFailure::Unavailable(lost))
        );
        let crash = LaunchError::from(SandboxError::NoBubblewrap).into_crash();
        assert_eq!(
            crash.cause,
            ExitCause::Sandbox(SandboxFailure::NoBubblewrap)
        );
        assert!(crash.cause.to_string().contains("bwrap"), "{}", crash.cause);
    }
}
