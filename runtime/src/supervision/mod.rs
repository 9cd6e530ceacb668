//! Supervision: restart policies, restart limits, backoff, and the supervisor that applies
//! them to an actor.
//!
//! The pieces are separate so that other supervisors (the Python bridge's, which restarts
//! child processes) apply the same rules: [`RestartTracker`] decides, [`Supervised`] runs an
//! actor under it.

mod backoff;
mod event;
mod policy;
mod supervisor;
mod tracker;

pub use backoff::Backoff;
pub use event::{EventKind, SupervisionEvent, SupervisorStatus};
pub use policy::{ExitReason, GiveUp, RestartLimit, RestartPolicy, RestartSpec};
pub use supervisor::Supervised;
pub(crate) use supervisor::supervise;
pub use tracker::{Decision, RestartTracker};
