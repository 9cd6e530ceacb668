//! Local actors under a [`Supervisor`]: a loop that makes instances, waits for each to end,
//! and restarts per the supervisor's decision.

use std::panic::{AssertUnwindSafe, catch_unwind};

use actix::{Actor, Context};
use tokio::sync::{broadcast, oneshot};

use super::{
    Decision, ExitReason, RestartSpec, SupervisionEvent, SupervisionWatch, Supervisor,
    SupervisorStatus,
};
use crate::address::Address;
use crate::mailbox::{Exit, Lanes};
use crate::spawn::start_instance;

/// An actor running under a supervisor.
///
/// Its [`Address`] stays the same across restarts: messages queued while an instance is
/// restarting wait in the mailbox and go to the next instance.
pub struct Supervised<A: Actor> {
    address: Address<A>,
    watch: SupervisionWatch,
    first_events: Option<broadcast::Receiver<SupervisionEvent>>,
}

impl<A: Actor<Context = Context<A>>> Supervised<A> {
    /// The actor's address.
    pub fn address(&self) -> &Address<A> {
        &self.address
    }

    /// Its supervision: status and events.
    pub fn watch(&self) -> &SupervisionWatch {
        &self.watch
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SupervisionEvent> {
        self.watch.subscribe()
    }

    /// Every event from the start (once; later calls get [`Supervised::subscribe`]'s).
    pub fn events(&mut self) -> broadcast::Receiver<SupervisionEvent> {
        self.first_events
            .take()
            .unwrap_or_else(|| self.watch.subscribe())
    }

    /// Where the actor stands now.
    pub fn status(&self) -> SupervisorStatus {
        self.watch.status()
    }

    /// Waits until the supervisor is done (stopped per policy or gave up) and says how.
    pub async fn finished(&self) -> SupervisorStatus {
        self.watch.finished().await
    }
}

/// Starts `factory`'s actor under `spec` on the current arbiter; the returned future
/// supervises it and must be spawned on that arbiter.
pub(crate) fn supervise<A, F>(
    address: Address<A>,
    lanes: Lanes<A>,
    factory: F,
    spec: RestartSpec,
) -> (Supervised<A>, impl std::future::Future<Output = ()>)
where
    A: Actor<Context = Context<A>>,
    F: FnMut() -> A + 'static,
{
    let supervisor = Supervisor::new(address.name(), spec);
    let watch = supervisor.watch();
    let handle = Supervised {
        address,
        first_events: Some(watch.subscribe()),
        watch,
    };
    (handle, run(lanes, factory, supervisor))
}

async fn run<A, F>(mut lanes: Lanes<A>, mut factory: F, mut supervisor: Supervisor)
where
    A: Actor<Context = Context<A>>,
    F: FnMut() -> A,
{
    loop {
        supervisor.starting();
        let exit = match start(&mut factory, lanes) {
            Ok(exit_rx) => {
                supervisor.running();
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
        let Some(next) = exit.lanes else {
            // Every sender is gone: nothing can reach a new instance.
            let _ = supervisor.exited(ExitReason::MailboxClosed);
            supervisor.finish(exit.reason);
            return;
        };
        match supervisor.exited(exit.reason) {
            Decision::Restart { delay, .. } => {
                tokio::time::sleep(delay).await;
                lanes = next;
            }
            Decision::Stop | Decision::GiveUp(_) => return,
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
