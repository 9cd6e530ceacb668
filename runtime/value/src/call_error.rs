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
    /// Nothing serves that target here: e.g. `troupe.host` under `troupe run`, whose host
    /// offers no service of its own.
    #[error("no {target} here to call")]
    NotFound {
        /// What was called (`host`, `singleton:NAME`, `extension:NAME`).
        target: String,
    },
    /// The host serving a remote extension was lost with the call pending (its liveliness
    /// token went away: it crashed, was killed or was cut off), or is not there when the call
    /// is made. The call ran there at most once; whether it did is unknown.
    #[error("host {host} lost")]
    HostLost {
        /// The host's name (`[hosts.NAME]` in the manifest).
        host: String,
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

/// How the process behind a bridged actor ended, with what it last wrote to stderr.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("{}", self.describe())]
pub struct CrashInfo {
    /// Why it ended.
    pub cause: ExitCause,
    /// The last lines it wrote to stderr.
    pub stderr_tail: String,
    /// Set when this end made its supervisor give up: the restarts it had made within the
    /// restart window.
    pub gave_up_after: Option<u32>,
}

impl CrashInfo {
    /// A crash for `cause` with no stderr.
    pub fn new(cause: ExitCause) -> CrashInfo {
        CrashInfo {
            cause,
            stderr_tail: String::new(),
            gave_up_after: None,
        }
    }

    /// Whether the process ended by itself with status 0: a normal end, not a failure.
    pub fn is_clean_exit(&self) -> bool {
        self.cause == ExitCause::Exited(0)
    }

    fn describe(&self) -> String {
        match self.gave_up_after {
            Some(restarts) => format!(
                "process ended: {}; gave up after {restarts} restarts",
                self.cause
            ),
            None => format!("process ended: {}", self.cause),
        }
    }
}

/// Why a bridged actor's process ended. Exits troupe caused (it killed the process for a
/// reason) name the reason; the others say what the operating system reported.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum ExitCause {
    /// It exited with this status (0: by itself, normally).
    #[error("exited with code {0}")]
    Exited(i32),
    /// A signal troupe did not send killed it (a crash, the OOM killer, `kill -9`).
    #[error("killed by signal {0}")]
    Signaled(i32),
    /// troupe killed it: its resident memory passed its limit.
    #[error("memory limit exceeded: {} MiB resident > limit {} MiB", rss_bytes >> 20, limit_bytes >> 20)]
    MemoryLimit {
        /// Resident bytes when sampled.
        rss_bytes: u64,
        /// The limit.
        limit_bytes: u64,
    },
    /// Importing the module or a start-up hook raised (the exception, with its traceback).
    #[error("start-up failed: {0}")]
    StartFailed(RemoteException),
    /// troupe killed it: its start-up hooks did not finish within this deadline.
    #[error("start-up hooks did not finish within {0:?}")]
    StartTimeout(Duration),
    /// troupe killed it: a call of the host's was cancelled (its caller's deadline passed,
    /// or the caller gave up) and was still running this long afterwards (a hung `def`
    /// method, a loop that never awaits). The next instance takes the calls that follow.
    #[error("a cancelled call was still running {0:?} after it was cancelled")]
    CancelIgnored(Duration),
    /// troupe killed it: it did not say hello within this deadline.
    #[error("did not connect within {0:?}")]
    ConnectTimeout(Duration),
    /// It said hello in another protocol version (the child's), or not at all.
    #[error("handshake failed: {0}")]
    Handshake(HandshakeError),
    /// troupe killed it: it broke the protocol (what it sent is described).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// It could not be started at all (what the operating system said).
    #[error("could not be started: {0}")]
    Spawn(String),
    /// It was not started because the sandbox its configuration asks for cannot be set up
    /// here.
    #[error("sandbox: {0}")]
    Sandbox(SandboxFailure),
    /// How it ended could not be found out (it could not be reaped).
    #[error("ended for an unknown reason")]
    Unknown,
}

/// One protection of an extension's sandbox (see the bridge's `process::sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protection {
    /// Landlock: files the child may read and write.
    Landlock,
    /// Landlock ABI 4+: no TCP bind or connect (unless the network is allowed).
    LandlockNetwork,
    /// Landlock ABI 6+: no signals to, and no abstract unix sockets of, processes outside.
    LandlockScopes,
    /// seccomp: the system calls that reach other processes or the kernel's attack surface.
    Seccomp,
    /// bubblewrap: namespaces around the child (`strict`).
    Bubblewrap,
    /// A cgroup bounding the child's memory and process count (`strict`, best effort).
    Cgroup,
}

impl std::fmt::Display for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protection::Landlock => "landlock (files)",
            Protection::LandlockNetwork => "landlock (tcp)",
            Protection::LandlockScopes => "landlock (signals, abstract sockets)",
            Protection::Seccomp => "seccomp",
            Protection::Bubblewrap => "bubblewrap",
            Protection::Cgroup => "cgroup",
        })
    }
}

/// Why a child's sandbox could not be set up, so that it was not started.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum SandboxFailure {
    /// The kernel lacks protections the sandbox requires (`require = true`, or `strict`).
    #[error("unavailable here: {}", list(.0))]
    Unavailable(Vec<Protection>),
    /// `strict` needs bubblewrap, and `bwrap` is not on `PATH`.
    #[error("strict needs bubblewrap (`bwrap`), which is not on PATH")]
    NoBubblewrap,
    /// `bwrap` is there but failed its probe (e.g. no user namespaces); what it said.
    #[error("bubblewrap does not work here: {0}")]
    BubblewrapBroken(String),
    /// Building the sandbox failed (a path, a ruleset, a filter); what failed.
    #[error("cannot build it: {0}")]
    Setup(String),
}

fn list(protections: &[Protection]) -> String {
    let names: Vec<String> = protections.iter().map(ToString::to_string).collect();
    names.join(", ")
}

/// Why a child's first frame was not a good hello.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum HandshakeError {
    /// It speaks protocol `child`; the host speaks `host`.
    #[error("the child speaks protocol {child}, the host speaks {host}")]
    Version {
        /// The host's version.
        host: u32,
        /// The child's version.
        child: u32,
    },
    /// Its first frame was not a hello, or did not decode (described).
    #[error("the first frame is not a hello: {0}")]
    NotHello(String),
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
