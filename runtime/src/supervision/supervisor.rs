use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use actix::{Actor, Context};
use tokio::sync::{broadcast, oneshot, watch};

use super::{Decision, EventKind, ExitReason, RestartTracker, SupervisionEvent, SupervisorStatus};
use crate::address::Address;
use crate::mailbox::{Exit, Lanes};
use crate::spawn::start_instance;

const EVENT_BACKLOG: usize = 256;

/// An actor running under a supervisor.
///
/// Its [`Address`] stays the same across restarts: messages queued while an instance is
/// restarting wait in the mailbox and go to the next instance.
pub struct Supervised<A: Actor> {
    address: Address<A>,
    events: broadcast::Sender<SupervisionEvent>,
    first_events: Option<broadcast::Receiver<SupervisionEvent>>,
    status: watch::Receiver<SupervisorStatus>,
}

impl<A: Actor<Context = Context<A>>> Supervised<A> {
    /// The actor's address.
    pub fn address(&self) -> &Address<A> {
        &self.address
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SupervisionEvent> {
        self.events.subscribe()
    }

    /// Every event from the start (once; later calls get [`Supervised::subscribe`]'s).
    pub fn events(&mut self) -> broadcast::Receiver<SupervisionEvent> {
        self.first_events
            .take()
            .unwrap_or_else(|| self.events.subscribe())
    }

    /// Where the actor stands now.
    pub fn status(&self) -> SupervisorStatus {
        self.status.borrow().clone()
    }

    /// Waits until the supervisor is done (stopped per policy or gave up) and says how.
    pub async fn finished(&self) -> SupervisorStatus {
        let mut status = self.status.clone();
        if let Ok(done) = status.wait_for(SupervisorStatus::is_final).await {
            return done.clone();
        }
        // The supervisor task is gone (its arbiter stopped): report the last status seen.
        status.borrow().clone()
    }
}

struct Reporter {
    actor: Arc<str>,
    events: broadcast::Sender<SupervisionEvent>,
    status: watch::Sender<SupervisorStatus>,
}

impl Reporter {
    fn event(&self, kind: EventKind) {
        let _ = self.events.send(SupervisionEvent {
            actor: self.actor.clone(),
            kind,
        });
    }

    fn status(&self, status: SupervisorStatus) {
        self.status.send_replace(status);
    }
}

/// Starts `factory`'s actor under `tracker` on the current arbiter; the returned future
/// supervises it and must be spawned on that arbiter.
pub(crate) fn supervise<A, F>(
    address: Address<A>,
    lanes: Lanes<A>,
    factory: F,
    tracker: RestartTracker,
) -> (Supervised<A>, impl std::future::Future<Output = ()>)
where
    A: Actor<Context = Context<A>>,
    F: FnMut() -> A + 'static,
{
    let (events, first_events) = broadcast::channel(EVENT_BACKLOG);
    let (status_tx, status) = watch::channel(SupervisorStatus::Running { instance: 0 });
    let reporter = Reporter {
        actor: Arc::from(address.name()),
        events: events.clone(),
        status: status_tx,
    };
    let handle = Supervised {
        address,
        events,
        first_events: Some(first_events),
        status,
    };
    (handle, run(lanes, factory, tracker, reporter))
}

async fn run<A, F>(
    mut lanes: Lanes<A>,
    mut factory: F,
    mut tracker: RestartTracker,
    reporter: Reporter,
) where
    A: Actor<Context = Context<A>>,
    F: FnMut() -> A,
{
    let mut instance = 0;
    loop {
        instance += 1;
        let exit = match start(&mut factory, lanes) {
            Ok(exit_rx) => {
                reporter.status(SupervisorStatus::Running { instance });
                reporter.event(EventKind::Started { instance });
                match exit_rx.await {
                    Ok(exit) => exit,
                    Err(_) => return, // the arbiter is shutting down
                }
            }
            Err(lanes) => Exit {
                reason: ExitReason::Panicked("the actor's factory panicked".into()),
                lanes: Some(lanes),
            },
        };
        tracing::debug!(actor = %reporter.actor, reason = %exit.reason, "actor exited");
        reporter.event(EventKind::Exited {
            reason: exit.reason.clone(),
        });
        let Some(next) = exit.lanes else {
            reporter.status(SupervisorStatus::Stopped(exit.reason));
            reporter.event(EventKind::Stopped);
            return;
        };
        match tracker.on_exit(&exit.reason, Instant::now()) {
            Decision::Restart { attempt, delay } => {
                tracing::warn!(actor = %reporter.actor, reason = %exit.reason, attempt, ?delay, "restarting actor");
                reporter.status(SupervisorStatus::Restarting { attempt });
                reporter.event(EventKind::Restarting { attempt, delay });
                tokio::time::sleep(delay).await;
                lanes = next;
            }
            Decision::Stop => {
                reporter.status(SupervisorStatus::Stopped(exit.reason));
                reporter.event(EventKind::Stopped);
                return;
            }
            Decision::GiveUp(give_up) => {
                tracing::error!(actor = %reporter.actor, %give_up, "supervisor gave up");
                reporter.status(SupervisorStatus::GaveUp(give_up.clone()));
                reporter.event(EventKind::GaveUp(give_up));
                return;
            }
        }
    }
}

/// Makes and starts one instance; gives the lanes back if the factory panics.
fn start<A, F>(factory: &mut F, lanes: Lanes<A>) -> Result<oneshot::Receiver<Exit<A>>, Lanes<A>>
where
    A: Actor<Context = Context<A>>,
    F: FnMut() -> A,
{
    match catch_unwind(AssertUnwindSafe(factory)) {
        Ok(actor) => {
            let (exit_tx, exit_rx) = oneshot::channel();
            start_instance(actor, lanes, Some(exit_tx));
            Ok(exit_rx)
        }
        Err(_) => Err(lanes),
    }
}
