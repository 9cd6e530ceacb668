use std::fmt;
use std::time::Duration;

use troupe_value::CrashInfo;

use super::Backoff;

/// When a stopped actor is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// Always, however it ended (but never once every address is gone).
    #[default]
    Permanent,
    /// Only after an abnormal end (a panic); a stop it chose is final.
    Transient,
    /// Never.
    Temporary,
}

/// At most `max_restarts` restarts within any `within` window; one more and the supervisor
/// gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartLimit {
    /// Restarts allowed in the window.
    pub max_restarts: u32,
    /// The sliding window.
    pub within: Duration,
}

impl Default for RestartLimit {
    fn default() -> Self {
        RestartLimit {
            max_restarts: 3,
            within: Duration::from_secs(5),
        }
    }
}

/// Everything that decides whether and when an actor restarts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RestartSpec {
    /// When to restart.
    pub policy: RestartPolicy,
    /// How often at most.
    pub limit: RestartLimit,
    /// How long to wait before each restart.
    pub backoff: Backoff,
}

/// How an actor instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// It stopped itself (`ctx.stop()`), or was stopped on request.
    Stopped,
    /// Every address was dropped and its mailbox drained: nothing can reach it any more.
    MailboxClosed,
    /// A handler or a future it spawned panicked; the message is the panic's.
    Panicked(String),
    /// The process behind it ended (bridged actors): how, typed. An exit with status 0 by
    /// itself is a normal end; every other is a failure.
    Crashed(CrashInfo),
}

impl ExitReason {
    /// Whether this end counts as a failure (for [`RestartPolicy::Transient`]).
    pub fn is_abnormal(&self) -> bool {
        match self {
            ExitReason::Panicked(_) => true,
            ExitReason::Crashed(info) => !info.is_clean_exit(),
            ExitReason::Stopped | ExitReason::MailboxClosed => false,
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Stopped => f.write_str("stopped"),
            ExitReason::MailboxClosed => f.write_str("mailbox closed"),
            ExitReason::Panicked(m) => write!(f, "panicked: {m}"),
            ExitReason::Crashed(info) => write!(f, "{info}"),
        }
    }
}

/// Why a supervisor gave up: the restart limit was hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiveUp {
    /// Restarts made within the window before giving up.
    pub restarts: u32,
    /// The window.
    pub within: Duration,
    /// How the last instance ended.
    pub last_exit: ExitReason,
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gave up after {} restarts within {:?}; last exit: {}",
            self.restarts, self.within, self.last_exit
        )
    }
}
