use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a call to an actor (local or bridged) did not return a value.
///
/// Every variant says what a caller can branch on; none is a bare string.
#[derive(Debug, Clone, PartialEq, Error, Serialize, Deserialize)]
pub enum CallError {
    /// The actor has no method of that name.
    #[error("unknown method {method:?}")]
    UnknownMethod {
        /// The name asked for.
        method: String,
    },
    /// An argument is missing, of the wrong type or out of range.
    #[error("bad argument at {path}: {reason}")]
    BadArguments {
        /// Where the bad value sits, e.g. `args[1]["rate"]` or `kwargs["shape"][0]`.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The callee raised an exception (Python) or returned an error of its own.
    #[error("{0}")]
    Remote(RemoteException),
    /// No reply within the deadline; the callee was asked to cancel the call.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The caller cancelled the call.
    #[error("call cancelled")]
    Cancelled,
    /// The actor stopped (or was never running) before it replied.
    #[error("actor stopped before replying")]
    ActorStopped,
    /// The actor's mailbox was full and the caller asked not to wait.
    #[error("mailbox full")]
    MailboxFull,
    /// The process behind a bridged actor died with the call pending.
    #[error("{0}")]
    Crashed(CrashInfo),
    /// The caller may not call that target (see the manifest's grants).
    #[error("{caller} may not call {target}")]
    PermissionDenied {
        /// Who called.
        caller: String,
        /// What it tried to call (`singleton:NAME`, `extension:NAME`, ...).
        target: String,
    },
}

/// An exception raised by the callee, as the caller receives it.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("{type_name}: {message}")]
pub struct RemoteException {
    /// The exception's qualified type name, e.g. `ValueError` or `mypkg.errors.Bad`.
    pub type_name: String,
    /// `str(exception)`.
    pub message: String,
    /// The formatted traceback, empty when the callee has none.
    pub traceback: String,
}

/// How a child process ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("process crashed ({})", self.describe())]
pub struct CrashInfo {
    /// Exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Signal number, when a signal killed it.
    pub signal: Option<i32>,
    /// Why troupe thinks it ended, when troupe knows more (e.g. "memory limit exceeded").
    pub reason: Option<String>,
    /// The last lines it wrote to stderr.
    pub stderr_tail: String,
}

impl CrashInfo {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(code) = self.exit_code {
            parts.push(format!("exit code {code}"));
        }
        if let Some(signal) = self.signal {
            parts.push(format!("signal {signal}"));
        }
        if let Some(reason) = &self.reason {
            parts.push(reason.clone());
        }
        if parts.is_empty() {
            parts.push("unknown cause".into());
        }
        parts.join(", ")
    }
}

impl CallError {
    /// A [`CallError::BadArguments`] for the value at `path`.
    pub fn bad_argument(path: impl Into<String>, reason: impl Into<String>) -> CallError {
        CallError::BadArguments {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
