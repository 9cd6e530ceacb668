//! The supervision core: one place where restart rules are applied and reported, whatever
//! is supervised (a local actor, a bridged extension's process, a pipeline node).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{broadcast, watch};

use super::{
    Decision, EventKind, ExitReason, RestartSpec, RestartTracker, SupervisionEvent,
    SupervisorStatus,
};

/// Events kept for subscribers that fall behind.
const EVENT_BACKLOG: usize = 256;

/// Applies a [`RestartSpec`] to the instances of one supervised thing and reports what it
/// does: it numbers instances, decides after each exit ([`RestartTracker`]), sends
/// [`SupervisionEvent`]s to subscribers and to `tracing`, and keeps the
/// [`SupervisorStatus`] that a [`SupervisionWatch`] reads.
///
/// The owner runs instances and calls [`Supervisor::starting`], [`Supervisor::running`] and
/// [`Supervisor::exited`] as they come and go, and acts on the [`Decision`]; the rules and
/// the reporting are the same for every kind of thing supervised.
#[derive(Debug)]
pub struct Supervisor {
    name: Arc<str>,
    tracker: RestartTracker,
    instance: u64,
    events: broadcast::Sender<SupervisionEvent>,
    status: watch::Sender<SupervisorStatus>,
}

impl Supervisor {
    /// A supervisor of `name` under `spec`, before its first instance.
    pub fn new(name: impl Into<Arc<str>>, spec: RestartSpec) -> Supervisor {
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let (status, _) = watch::channel(SupervisorStatus::Starting { instance: 1 });
        Supervisor {
            name: name.into(),
            tracker: RestartTracker::new(spec),
            instance: 0,
            events,
            status,
        }
    }

    /// What is supervised (its name in events and traces).
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// A handle to follow it (events, status).
    pub fn watch(&self) -> SupervisionWatch {
        SupervisionWatch {
            events: self.events.clone(),
            status: self.status.subscribe(),
        }
    }

    /// The number of the current (or last) instance, from 1; 0 before the first.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// Whether it is done for good.
    pub fn is_final(&self) -> bool {
        self.status.borrow().is_final()
    }

    fn event(&self, kind: EventKind) {
        let _ = self.events.send(SupervisionEvent {
            actor: self.name.clone(),
            kind,
        });
    }

    /// A new instance is being made; returns its number.
    pub fn starting(&mut self) -> u64 {
        self.instance += 1;
        self.status.send_replace(SupervisorStatus::Starting {
            instance: self.instance,
        });
        self.instance
    }

    /// The instance made last runs.
    pub fn running(&mut self) {
        self.status.send_replace(SupervisorStatus::Running {
            instance: self.instance,
        });
        self.event(EventKind::Started {
            instance: self.instance,
        });
    }

    /// The current instance ended with `reason`: decides what follows, reports it, and
    /// returns the decision for the owner to carry out.
    pub fn exited(&mut self, reason: ExitReason) -> Decision {
        tracing::debug!(actor = %self.name, %reason, instance = self.instance, "instance exited");
        self.event(EventKind::Exited {
            reason: reason.clone(),
        });
        let decision = self.tracker.on_exit(&reason, Instant::now());
        match &decision {
            Decision::Restart { attempt, delay } => {
                tracing::warn!(actor = %self.name, %reason, attempt, ?delay, "restarting");
                self.status.send_replace(SupervisorStatus::Restarting {
                    attempt: *attempt,
                    last: reason,
                });
                self.event(EventKind::Restarting {
                    attempt: *attempt,
                    delay: *delay,
                });
            }
            Decision::Stop => self.finish(reason),
            Decision::GiveUp(give_up) => {
                tracing::error!(actor = %self.name, %give_up, "gave up");
                self.status
                    .send_replace(SupervisorStatus::GaveUp(give_up.clone()));
                self.event(EventKind::GaveUp(give_up.clone()));
            }
        }
        decision
    }

    /// It is done for good after `reason` (stopped on request, or its policy said so).
    pub fn finish(&mut self, reason: ExitReason) {
        if self.is_final() {
            return;
        }
        self.status.send_replace(SupervisorStatus::Stopped(reason));
        self.event(EventKind::Stopped);
    }
}

/// Follows a supervised thing: its status now and its events. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SupervisionWatch {
    events: broadcast::Sender<SupervisionEvent>,
    status: watch::Receiver<SupervisorStatus>,
}

impl SupervisionWatch {
    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SupervisionEvent> {
        self.events.subscribe()
    }

    /// Where it stands now.
    pub fn status(&self) -> SupervisorStatus {
        self.status.borrow().clone()
    }

    /// A receiver of every status change.
    pub fn status_changes(&self) -> watch::Receiver<SupervisorStatus> {
        self.status.clone()
    }

    /// Waits until an instance runs, or until it is done for good, and says which.
    pub async fn ready(&self) -> SupervisorStatus {
        self.wait_for(|s| s.is_running() || s.is_final()).await
    }

    /// Waits until it is done for good (stopped or gave up) and says how.
    pub async fn finished(&self) -> SupervisorStatus {
        self.wait_for(SupervisorStatus::is_final).await
    }

    async fn wait_for(&self, done: impl Fn(&SupervisorStatus) -> bool) -> SupervisorStatus {
        let mut status = self.status.clone();
        if let Ok(found) = status.wait_for(|s| done(s)).await {
            return found.clone();
        }
        // The supervisor is gone (its arbiter stopped): report the last status seen.
        status.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::supervision::{Backoff, RestartLimit, RestartPolicy};

    #[test]
    fn it_reports_each_step_and_decides_by_the_spec() {
        let spec = RestartSpec {
            policy: RestartPolicy::Transient,
            limit: RestartLimit {
                max_restarts: 1,
                within: Duration::from_secs(60),
            },
            backoff: Backoff::NONE,
        };
        let mut supervisor = Supervisor::new("x", spec);
        let watch = supervisor.watch();
        let mut events = watch.subscribe();
        assert_eq!(supervisor.starting(), 1);
        supervisor.running();
        assert_eq!(watch.status(), SupervisorStatus::Running { instance: 1 });
        let crash = ExitReason::Panicked("boom".into());
        assert!(matches!(
            supervisor.exited(crash.clone()),
            Decision::Restart { attempt: 1, .. }
        ));
        assert!(matches!(
            watch.status(),
            SupervisorStatus::Restarting { attempt: 1, last } if last == crash
        ));
        assert_eq!(supervisor.starting(), 2);
        supervisor.running();
        assert!(matches!(supervisor.exited(crash), Decision::GiveUp(_)));
        assert!(watch.status().is_final());
        let kinds: Vec<EventKind> = std::iter::from_fn(|| events.try_recv().ok())
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds.len(), 6, "{kinds:?}");
        assert!(matches!(kinds.last(), Some(EventKind::GaveUp(_))));
    }

    #[test]
    fn a_clean_exit_is_normal_for_transient_and_restarts_permanent() {
        let clean = ExitReason::Crashed(troupe_value::CrashInfo::new(
            troupe_value::ExitCause::Exited(0),
        ));
        let failed = ExitReason::Crashed(troupe_value::CrashInfo::new(
            troupe_value::ExitCause::Exited(3),
        ));
        let spec = |policy| RestartSpec {
            policy,
            backoff: Backoff::NONE,
            ..RestartSpec::default()
        };
        let mut transient = Supervisor::new("t", spec(RestartPolicy::Transient));
        transient.starting();
        assert_eq!(transient.exited(clean.clone()), Decision::Stop);
        let mut transient = Supervisor::new("t", spec(RestartPolicy::Transient));
        transient.starting();
        assert!(matches!(transient.exited(failed), Decision::Restart { .. }));
        let mut permanent = Supervisor::new("p", spec(RestartPolicy::Permanent));
        permanent.starting();
        assert!(matches!(
            permanent.exited(clean.clone()),
            Decision::Restart { .. }
        ));
        let mut temporary = Supervisor::new("o", spec(RestartPolicy::Temporary));
        temporary.starting();
        assert_eq!(temporary.exited(clean), Decision::Stop);
    }
}
