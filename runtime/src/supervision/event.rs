use std::sync::Arc;
use std::time::Duration;

use super::{ExitReason, GiveUp};

/// Something a supervisor did, as its subscribers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisionEvent {
    /// The supervised actor's name.
    pub actor: Arc<str>,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of [`SupervisionEvent`].
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// Instance number `instance` (1 for the first) started.
    Started {
        /// Counts from 1.
        instance: u64,
    },
    /// An instance ended.
    Exited {
        /// How.
        reason: ExitReason,
    },
    /// A new instance starts after `delay`.
    Restarting {
        /// Restarts in the current window, this one included.
        attempt: u32,
        /// Backoff before it starts.
        delay: Duration,
    },
    /// The policy said the last exit is final.
    Stopped,
    /// The restart limit was hit; the supervisor gave up.
    GaveUp(GiveUp),
}

/// Where a supervised actor stands.
#[derive(Debug, Clone, PartialEq)]
pub enum SupervisorStatus {
    /// Instance `instance` is being made (a bridged actor's process is starting); messages
    /// wait for it.
    Starting {
        /// Which one (counts from 1).
        instance: u64,
    },
    /// An instance is running.
    Running {
        /// Which one (counts from 1).
        instance: u64,
    },
    /// The last instance ended; the next starts after a backoff. Messages wait.
    Restarting {
        /// Restarts in the current window, this one included.
        attempt: u32,
        /// How the last instance ended.
        last: ExitReason,
    },
    /// Ended for good, per policy or on request, after this exit.
    Stopped(ExitReason),
    /// Ended for good because the restart limit was hit.
    GaveUp(GiveUp),
}

impl SupervisorStatus {
    /// Whether the supervisor is done (stopped or gave up).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            SupervisorStatus::Stopped(_) | SupervisorStatus::GaveUp(_)
        )
    }

    /// Whether an instance is running.
    pub fn is_running(&self) -> bool {
        matches!(self, SupervisorStatus::Running { .. })
    }
}
