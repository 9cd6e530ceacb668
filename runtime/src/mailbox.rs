//! Bounded mailboxes with a priority lane.
//!
//! actix's own mailbox lets every sender push one message past its capacity (and `do_send`
//! ignores it entirely), so troupe keeps its own queues in front of each actor: a data lane
//! of fixed capacity and a smaller control lane. An [`Address`](crate::Address) is the only
//! way in; it never exposes `do_send`. The actor drains the lanes from a future spawned in
//! its context, always taking control messages first.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};

use actix::dev::{Envelope, EnvelopeProxy};
use actix::fut::ActorFuture;
use actix::{Actor, ActorContext, ActorState, AsyncContext, Context};
use tokio::sync::mpsc;

use crate::supervision::ExitReason;

/// Default data-lane capacity.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The largest data-lane capacity (2^20 messages): capacities come from manifests, and a
/// bound far above any real need keeps a typo from reserving absurd memory.
pub const MAX_CAPACITY: usize = 1 << 20;
/// Default control-lane capacity.
pub const DEFAULT_CONTROL_CAPACITY: usize = 64;

/// How many messages the driver handles before yielding to the actor's other work.
const BATCH: usize = 64;

/// Sizes of an actor's lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxConfig {
    /// Data messages that may wait (or be handled) at once, across all senders.
    pub capacity: usize,
    /// Control messages that may wait at once.
    pub control_capacity: usize,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        MailboxConfig {
            capacity: DEFAULT_CAPACITY,
            control_capacity: DEFAULT_CONTROL_CAPACITY,
        }
    }
}

impl MailboxConfig {
    /// A mailbox of `capacity` data messages (1 to [`MAX_CAPACITY`]) and the default
    /// control lane.
    pub fn bounded(capacity: usize) -> MailboxConfig {
        MailboxConfig {
            capacity: capacity.clamp(1, MAX_CAPACITY),
            ..MailboxConfig::default()
        }
    }
}

/// A valve on an actor's data lane, for backpressure the actor decides: while it is paused
/// the actor takes control messages only, so its data lane fills up and senders wait for
/// room (`try_send` is refused) until it resumes. Messages keep their order.
///
/// ```
/// use troupe_runtime::Intake;
///
/// let intake = Intake::new();
/// intake.pause();
/// assert!(intake.is_paused());
/// intake.resume();
/// ```
#[derive(Debug, Clone, Default)]
pub struct Intake(Arc<IntakeState>);

#[derive(Debug, Default)]
struct IntakeState {
    paused: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Intake {
    /// An open valve.
    pub fn new() -> Intake {
        Intake::default()
    }

    /// Stops the actor from taking data messages.
    pub fn pause(&self) {
        self.0.paused.store(true, Ordering::SeqCst);
    }

    /// Lets the actor take data messages again.
    pub fn resume(&self) {
        if self.0.paused.swap(false, Ordering::SeqCst) {
            let waker = self
                .0
                .waker
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// Whether data messages are held back now.
    pub fn is_paused(&self) -> bool {
        self.0.paused.load(Ordering::SeqCst)
    }

    /// Whether data messages are held back; if so, `task` is woken when they no longer are.
    fn poll_paused(&self, task: &mut TaskContext<'_>) -> bool {
        if !self.is_paused() {
            return false;
        }
        *self.0.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.waker().clone());
        // Resumed meanwhile: its wake may have missed the waker just stored.
        self.is_paused()
    }
}

/// The receiving ends of an actor's lanes. They outlive an actor instance, so a restarted
/// actor picks up the messages still queued.
pub(crate) struct Lanes<A: Actor> {
    pub(crate) control: mpsc::Receiver<Envelope<A>>,
    pub(crate) data: mpsc::Receiver<Envelope<A>>,
    pub(crate) intake: Intake,
}

/// The sending ends.
pub(crate) struct Senders<A: Actor> {
    pub(crate) control: mpsc::Sender<Envelope<A>>,
    pub(crate) data: mpsc::Sender<Envelope<A>>,
}

impl<A: Actor> Clone for Senders<A> {
    fn clone(&self) -> Self {
        Senders {
            control: self.control.clone(),
            data: self.data.clone(),
        }
    }
}

pub(crate) fn lanes<A: Actor>(config: MailboxConfig, intake: Intake) -> (Senders<A>, Lanes<A>) {
    let (control_tx, control_rx) = mpsc::channel(config.control_capacity.max(1));
    let (data_tx, data_rx) = mpsc::channel(config.capacity.max(1));
    (
        Senders {
            control: control_tx,
            data: data_tx,
        },
        Lanes {
            control: control_rx,
            data: data_rx,
            intake,
        },
    )
}

/// What the driver reports when the actor instance it fed is gone.
pub(crate) struct Exit<A: Actor> {
    pub(crate) reason: ExitReason,
    /// The lanes, unless every sender is gone (nothing more can arrive).
    pub(crate) lanes: Option<Lanes<A>>,
}

/// Feeds queued messages to the actor; spawned into the actor's context.
pub(crate) struct Driver<A: Actor> {
    lanes: Option<Lanes<A>>,
    closed: bool,
    panicked: Option<String>,
    on_exit: Option<tokio::sync::oneshot::Sender<Exit<A>>>,
}

impl<A: Actor> Driver<A> {
    pub(crate) fn new(
        lanes: Lanes<A>,
        on_exit: Option<tokio::sync::oneshot::Sender<Exit<A>>>,
    ) -> Driver<A> {
        Driver {
            lanes: Some(lanes),
            closed: false,
            panicked: None,
            on_exit,
        }
    }

    fn next(&mut self, task: &mut TaskContext<'_>) -> Poll<Option<Envelope<A>>> {
        let Some(lanes) = self.lanes.as_mut() else {
            return Poll::Ready(None);
        };
        // Control first. Checking for emptiness is cheaper than polling, and polling control
        // after a pending data lane still registers the waker on both.
        if !lanes.control.is_empty()
            && let Poll::Ready(Some(envelope)) = lanes.control.poll_recv(task)
        {
            return Poll::Ready(Some(envelope));
        }
        if lanes.intake.poll_paused(task) {
            return match lanes.control.poll_recv(task) {
                Poll::Ready(Some(envelope)) => Poll::Ready(Some(envelope)),
                _ => Poll::Pending,
            };
        }
        match lanes.data.poll_recv(task) {
            Poll::Pending => match lanes.control.poll_recv(task) {
                Poll::Ready(Some(envelope)) => Poll::Ready(Some(envelope)),
                _ => Poll::Pending,
            },
            ready => ready,
        }
    }
}

impl<A> ActorFuture<A> for Driver<A>
where
    A: Actor<Context = Context<A>>,
{
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut A,
        ctx: &mut Context<A>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..BATCH {
            if ctx.waiting() || !matches!(ctx.state(), ActorState::Running | ActorState::Started) {
                return Poll::Pending;
            }
            let mut envelope = match this.next(task) {
                Poll::Ready(Some(envelope)) => envelope,
                Poll::Ready(None) => {
                    // Every address is gone and the lanes are drained: nothing can reach
                    // the actor any more, so it stops (its `stopping` may still keep it
                    // alive to finish what it has in hand).
                    this.closed = true;
                    ctx.stop();
                    return Poll::Ready(());
                }
                Poll::Pending => return Poll::Pending,
            };
            let handled = catch_unwind(AssertUnwindSafe(|| envelope.handle(act, ctx)));
            if let Err(payload) = handled {
                this.panicked = Some(panic_message(payload.as_ref()));
                ctx.stop();
                return Poll::Pending;
            }
        }
        task.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<A: Actor> Drop for Driver<A> {
    fn drop(&mut self) {
        let reason = match self.panicked.take() {
            Some(message) => ExitReason::Panicked(message),
            None if std::thread::panicking() => {
                ExitReason::Panicked("panic in a future spawned by the actor".into())
            }
            None if self.closed => ExitReason::MailboxClosed,
            None => ExitReason::Stopped,
        };
        let lanes = if self.closed { None } else { self.lanes.take() };
        if let Some(on_exit) = self.on_exit.take() {
            let _ = on_exit.send(Exit { reason, lanes });
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".into())
}
