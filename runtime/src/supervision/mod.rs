//! Supervision: restart policies, restart limits, backoff, and the one [`Supervisor`] that
//! applies them.
//!
//! Every supervised thing uses the same core: [`Supervisor`] numbers instances, decides after
//! each exit ([`RestartTracker`]: policy, sliding window, backoff with jitter), and reports
//! events and status that a [`SupervisionWatch`] follows. Local actors run under it through
//! [`Supervised`] (`ActorBuilder::supervise`); the Python bridge's extensions (whose
//! instances are child processes) and pipeline nodes drive it themselves.

mod backoff;
mod event;
mod policy;
mod supervised;
mod supervisor;
mod tracker;

pub use backoff::Backoff;
pub use event::{EventKind, SupervisionEvent, SupervisorStatus};
pub use policy::{ExitReason, GiveUp, RestartLimit, RestartPolicy, RestartSpec};
pub use supervised::Supervised;
pub(crate) use supervised::supervise;
pub use supervisor::{SupervisionWatch, Supervisor};
pub use tracker::{Decision, RestartTracker};
