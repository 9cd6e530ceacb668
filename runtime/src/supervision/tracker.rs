use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{ExitReason, GiveUp, RestartPolicy, RestartSpec};

/// What to do after an actor instance ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Start a new instance after `delay`; this is restart number `attempt` in the window.
    Restart {
        /// Restarts in the current window, this one included.
        attempt: u32,
        /// Backoff to wait first.
        delay: Duration,
    },
    /// The policy says this end is final.
    Stop,
    /// The restart limit is hit: give up and report why.
    GiveUp(GiveUp),
}

/// Applies a [`RestartSpec`] to a sequence of exits.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    spec: RestartSpec,
    recent: VecDeque<Instant>,
}

impl RestartTracker {
    /// A tracker with no restarts yet.
    pub fn new(spec: RestartSpec) -> RestartTracker {
        RestartTracker {
            spec,
            recent: VecDeque::new(),
        }
    }

    /// The spec it applies.
    pub fn spec(&self) -> &RestartSpec {
        &self.spec
    }

    /// Decides what follows an exit at `now`.
    pub fn on_exit(&mut self, reason: &ExitReason, now: Instant) -> Decision {
        let restart = match self.spec.policy {
            RestartPolicy::Permanent => *reason != ExitReason::MailboxClosed,
            RestartPolicy::Transient => reason.is_abnormal(),
            RestartPolicy::Temporary => false,
        };
        if !restart {
            return Decision::Stop;
        }
        let within = self.spec.limit.within;
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > within)
        {
            self.recent.pop_front();
        }
        let restarts = self.recent.len() as u32;
        if restarts >= self.spec.limit.max_restarts {
            return Decision::GiveUp(GiveUp {
                restarts,
                within,
                last_exit: reason.clone(),
            });
        }
        self.recent.push_back(now);
        let attempt = restarts + 1;
        Decision::Restart {
            attempt,
            delay: self.spec.backoff.delay(attempt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervision::{Backoff, RestartLimit};

    fn spec(policy: RestartPolicy, max_restarts: u32) -> RestartSpec {
        RestartSpec {
            policy,
            limit: RestartLimit {
                max_restarts,
                within: Duration::from_secs(10),
            },
            backoff: Backoff::NONE,
        }
    }

    #[test]
    fn policies_decide_which_exits_restart() {
        let panic = ExitReason::Panicked("boom".into());
        let now = Instant::now();
        let mut permanent = RestartTracker::new(spec(RestartPolicy::Permanent, 5));
        assert!(matches!(
            permanent.on_exit(&ExitReason::Stopped, now),
            Decision::Restart { .. }
        ));
        assert_eq!(
            permanent.on_exit(&ExitReason::MailboxClosed, now),
            Decision::Stop
        );
        let mut transient = RestartTracker::new(spec(RestartPolicy::Transient, 5));
        assert_eq!(transient.on_exit(&ExitReason::Stopped, now), Decision::Stop);
        assert!(matches!(
            transient.on_exit(&panic, now),
            Decision::Restart { attempt: 1, .. }
        ));
        let mut temporary = RestartTracker::new(spec(RestartPolicy::Temporary, 5));
        assert_eq!(temporary.on_exit(&panic, now), Decision::Stop);
    }

    #[test]
    fn the_limit_counts_restarts_in_a_sliding_window() {
        let panic = ExitReason::Panicked("boom".into());
        let t0 = Instant::now();
        let mut tracker = RestartTracker::new(spec(RestartPolicy::Permanent, 2));
        assert!(matches!(
            tracker.on_exit(&panic, t0),
            Decision::Restart { attempt: 1, .. }
        ));
        assert!(matches!(
            tracker.on_exit(&panic, t0 + Duration::from_secs(1)),
            Decision::Restart { attempt: 2, .. }
        ));
        let Decision::GiveUp(give_up) = tracker.on_exit(&panic, t0 + Duration::from_secs(2)) else {
            panic!("expected to give up");
        };
        assert_eq!(give_up.restarts, 2);
        // Once the window has slid past the old restarts, restarting is allowed again.
        assert!(matches!(
            tracker.on_exit(&panic, t0 + Duration::from_secs(12)),
            Decision::Restart { attempt: 1, .. }
        ));
    }
}
