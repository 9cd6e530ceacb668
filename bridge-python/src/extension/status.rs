//! Where an extension stands.

use troupe_runtime::supervision::GiveUp;
use troupe_wire::CrashInfo;

/// The state of an extension, as [`ExtensionRef::status`](super::ExtensionRef::status)
/// reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtensionStatus {
    /// Instance `instance` (1 for the first) is starting: calls wait for it.
    Starting {
        /// Counts from 1.
        instance: u64,
    },
    /// Instance `instance` runs in process `pid`.
    Running {
        /// Counts from 1.
        instance: u64,
        /// The child's process id.
        pid: u32,
    },
    /// The last instance ended; a new one starts after a backoff. Calls wait.
    Restarting {
        /// Restarts in the current window, this one included.
        attempt: u32,
        /// How the last instance ended.
        last: CrashInfo,
    },
    /// Stopped on request, or ended for good by its policy.
    Stopped,
    /// Gave up after too many restarts; calls fail with the reason.
    Failed {
        /// The restart limit that was hit.
        give_up: GiveUp,
        /// How the last instance ended.
        last: CrashInfo,
    },
}

impl ExtensionStatus {
    /// Whether the extension is done for good (stopped or failed).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            ExtensionStatus::Stopped | ExtensionStatus::Failed { .. }
        )
    }

    /// Whether an instance is running.
    pub fn is_running(&self) -> bool {
        matches!(self, ExtensionStatus::Running { .. })
    }
}
