//! The calls of one extension: those waiting to be sent, and those in flight to its child.
//!
//! One table per extension, shared by its actor (which submits calls), the callers' futures
//! (which cancel theirs) and the running child's session (which completes them). A call is
//! sent at once while the child runs and fewer than `max_in_flight` calls are in it;
//! otherwise it waits here, in order. Once `capacity` calls wait, the actor's [`Intake`] is
//! paused: the actor takes no more calls from its mailbox, which fills up in turn, so callers
//! wait for room (or `try_call` is refused) until answers let waiting calls go. Each answer
//! that comes back lets the next waiting call go.
//!
//! A call cancelled while in the child (its deadline passed, or its caller gave up) is told
//! to stop and stays *outstanding* until the child answers it. Meanwhile no new call is sent
//! to that child: a `def` method that hangs keeps every later call from queueing behind it.
//! If it is still outstanding after the extension's cancel grace, the child is killed
//! ([`ExitCause::CancelIgnored`]) and the calls that waited go to the next instance.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use troupe_protocol::transport::SendError;
use troupe_protocol::{CallFrame, ToChild};
use troupe_runtime::metrics::{ExtensionMetrics, Gauge};
use troupe_runtime::{Call, CallResult, Intake, ItemSink};
use troupe_value::{CallError, ExitCause, Value};

use super::session::Session;
use crate::process::LinkError;

/// Where one call's answer goes.
type Answer = oneshot::Sender<CallResult>;

/// A call in flight: where its answer goes, and its items for a streaming call.
#[derive(Debug)]
struct Pending {
    answer: Answer,
    items: Option<Streaming>,
}

/// The host's side of a streaming call's credit.
#[derive(Debug)]
struct Streaming {
    sink: ItemSink,
    /// Items the child may have sent: its window plus every credit sent since.
    allowed: u64,
    /// Items it sent.
    received: u64,
}

/// A child broke the protocol with an item: it is killed with this.
#[derive(Debug)]
pub(crate) struct BadItem(pub(crate) String);

/// The calls of one extension (see the module docs).
#[derive(Debug)]
pub(crate) struct Calls {
    state: Mutex<State>,
    max_in_flight: usize,
    capacity: usize,
    /// How long a cancelled call may run on in the child before the child is killed;
    /// `None`: never killed for it.
    cancel_grace: Option<Duration>,
    /// The actor's data lane: paused while `capacity` calls wait.
    intake: Intake,
    /// The gauges of waiting calls and calls in flight.
    gauges: (Gauge, Gauge),
}

#[derive(Debug, Default)]
struct State {
    /// Not sent yet: no child runs, or the window is full. Oldest first.
    waiting: VecDeque<(Call, Answer)>,
    /// Sent to the running child and not answered, by call id.
    in_flight: HashMap<u64, Pending>,
    /// Cancelled in the running child and not answered yet: nothing more is sent to it
    /// until they are (see the module docs).
    outstanding: HashSet<u64>,
    /// The running child, once its start-up finished.
    session: Option<Arc<Session>>,
    /// Once set, every call fails with it.
    closed: Option<CallError>,
}

/// How many calls wait and how many are in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallCounts {
    /// Waiting to be sent (no child runs, or the window is full).
    pub waiting: usize,
    /// Sent to the child and not answered yet.
    pub in_flight: usize,
}

impl Calls {
    /// A table letting `max_in_flight` calls into the child at once and `capacity` wait,
    /// pausing `intake` while they do, and killing a child whose cancelled call runs on
    /// past `cancel_grace`.
    pub(crate) fn new(
        max_in_flight: usize,
        capacity: usize,
        cancel_grace: Option<Duration>,
        intake: Intake,
        metrics: &ExtensionMetrics,
    ) -> Calls {
        Calls {
            gauges: (metrics.waiting.clone(), metrics.in_flight.clone()),
            state: Mutex::default(),
            max_in_flight: max_in_flight.max(1),
            capacity: capacity.max(1),
            cancel_grace,
            intake,
        }
    }

    /// Whether a call may be sent to the child now.
    fn may_send(&self, state: &State) -> bool {
        state.session.is_some()
            && state.outstanding.is_empty()
            && state.in_flight.len() < self.max_in_flight
    }

    /// Pauses or resumes the actor's intake as the waiting calls reach or leave `capacity`.
    fn regulate(&self, state: &State) {
        self.gauge(state);
        if state.waiting.len() >= self.capacity && state.closed.is_none() {
            self.intake.pause();
        } else {
            self.intake.resume();
        }
    }

    /// Sets the gauges of waiting calls and calls in flight.
    fn gauge(&self, state: &State) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.gauges.0.set(count(state.waiting.len()));
        self.gauges.1.set(count(state.in_flight.len()));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many calls wait and how many are in flight now.
    pub(crate) fn counts(&self) -> CallCounts {
        let state = self.lock();
        CallCounts {
            waiting: state.waiting.len(),
            in_flight: state.in_flight.len(),
        }
    }

    /// The running child, for a caller to take its frames while it waits.
    pub(crate) fn session(&self) -> Option<Arc<Session>> {
        self.lock().session.clone()
    }

    /// Sends `call` now, or queues it, or refuses it; its outcome goes to `answer`.
    pub(crate) fn submit(self: &Arc<Self>, call: Call, answer: Answer) {
        let mut state = self.lock();
        if let Some(err) = &state.closed {
            let _ = answer.send(Err(err.clone()));
            return;
        }
        if state.waiting.is_empty() && self.may_send(&state) {
            self.send(&mut state, call, answer);
            self.gauge(&state);
            return;
        }
        if state.waiting.len() >= self.capacity {
            // Callers that gave up still hold their places: make room from them first.
            state.waiting.retain(|(_, answer)| !answer.is_closed());
        }
        if state.waiting.len() >= self.capacity {
            let _ = answer.send(Err(CallError::MailboxFull));
            return;
        }
        state.waiting.push_back((call, answer));
        self.regulate(&state);
    }

    /// Sends one call to the running child (there is one).
    fn send(self: &Arc<Self>, state: &mut State, mut call: Call, answer: Answer) {
        let Some(session) = state.session.clone() else {
            state.waiting.push_front((call, answer));
            return;
        };
        let id = call.id;
        let sink = call.take_items();
        let body = CallFrame {
            id,
            method: call.method.into_owned(),
            args: call.args,
            kwargs: call.kwargs,
        };
        let frame = match &sink {
            Some(sink) => ToChild::Stream {
                call: body,
                window: sink.window(),
            },
            None => ToChild::Call(body),
        };
        let refused = match session.link().send_call(frame) {
            Ok(()) => None,
            Err(LinkError::Frame(e)) => Some(CallError::bad_argument("args", e.to_string())),
            Err(LinkError::Send(SendError::TooLarge { len, max })) => {
                Some(CallError::bad_argument(
                    "args",
                    format!("the call's frame is {len} bytes, over the limit of {max}"),
                ))
            }
            Err(LinkError::Send(e @ SendError::TooManyFds(_))) => {
                Some(CallError::bad_argument("args", e.to_string()))
            }
            Err(LinkError::Send(SendError::Full { .. })) => Some(CallError::MailboxFull),
            // The child is gone and its end not reported yet: the call counts as in flight
            // and fails with the crash, like the others.
            Err(LinkError::Send(SendError::Closed)) => None,
        };
        match refused {
            Some(err) => {
                let _ = answer.send(Err(err));
            }
            None => {
                let items = sink.map(|sink| {
                    let calls = Arc::downgrade(self);
                    sink.on_taken(move |items| {
                        if let Some(calls) = calls.upgrade() {
                            calls.grant(id, items);
                        }
                    });
                    Streaming {
                        allowed: u64::from(sink.window()),
                        received: 0,
                        sink,
                    }
                });
                state.in_flight.insert(id, Pending { answer, items });
            }
        }
    }

    /// The caller took `items` more items of streaming call `id`: the child may yield that
    /// many more.
    fn grant(&self, id: u64, items: u32) {
        let mut state = self.lock();
        let Some(session) = state.session.clone() else {
            return;
        };
        let Some(streaming) = state
            .in_flight
            .get_mut(&id)
            .and_then(|pending| pending.items.as_mut())
        else {
            return;
        };
        streaming.allowed += u64::from(items);
        drop(state);
        // A child that lets its queue fill is not reading: without this credit its stream
        // would wait forever. (Closed: the child is gone, and its calls fail with that.)
        if let Err(LinkError::Send(SendError::Full { queued, .. })) =
            session.link().send(ToChild::Credit { id, items })
        {
            session.kill(ExitCause::Protocol(format!(
                "stopped reading: {} MiB wait for it",
                queued >> 20
            )));
        }
    }

    /// The child yielded `value` for streaming call `id`. An item for a call no longer in
    /// flight (cancelled meanwhile) is dropped.
    ///
    /// # Errors
    /// [`BadItem`] when the call does not stream or the child yielded past its credit: the
    /// child broke the protocol.
    pub(crate) fn item(&self, id: u64, value: Value) -> Result<(), BadItem> {
        let mut state = self.lock();
        let Some(pending) = state.in_flight.get_mut(&id) else {
            return Ok(());
        };
        let Some(streaming) = &mut pending.items else {
            return Err(BadItem(format!(
                "an item for call {id}, which does not stream"
            )));
        };
        streaming.received += 1;
        if streaming.received > streaming.allowed {
            return Err(BadItem(format!(
                "call {id}: {} items yielded with credit for {}",
                streaming.received, streaming.allowed
            )));
        }
        streaming
            .sink
            .push(value)
            .map_err(|e| BadItem(format!("call {id}: {e}")))
    }

    /// Sends waiting calls while the window has room.
    fn pump(self: &Arc<Self>, state: &mut State) {
        while self.may_send(state) {
            let Some((call, answer)) = state.waiting.pop_front() else {
                break;
            };
            if answer.is_closed() {
                continue;
            }
            self.send(state, call, answer);
        }
        self.regulate(state);
    }

    /// The child answered call `id`: its caller gets the answer, or, for a call cancelled
    /// meanwhile, the answer is dropped and the call no longer outstanding (an id in
    /// neither table is a child's garbage, ignored).
    pub(crate) fn complete(self: &Arc<Self>, id: u64, result: CallResult) {
        let mut state = self.lock();
        if let Some(pending) = state.in_flight.remove(&id) {
            // The items went first; dropping the sink tells the caller they are all there.
            drop(pending.items);
            let _ = pending.answer.send(result);
        } else if !state.outstanding.remove(&id) {
            return;
        }
        self.pump(&mut state);
    }

    /// The caller of call `id` stopped waiting: a waiting call is dropped; one in flight is
    /// forgotten, the child told to cancel it, and the call outstanding until the child
    /// answers it, or until the cancel grace ends and the child is killed.
    pub(crate) fn cancel(self: &Arc<Self>, id: u64) {
        self.stop(id, None);
    }

    /// Call `id`, in flight, fails with `err` before the child answered it (an item of it
    /// cannot be used here): its caller gets `err`, and the call is cancelled in the child
    /// as [`Calls::cancel`] does.
    pub(crate) fn fail(self: &Arc<Self>, id: u64, err: CallError) {
        self.stop(id, Some(err));
    }

    fn stop(self: &Arc<Self>, id: u64, err: Option<CallError>) {
        let mut state = self.lock();
        if let Some(at) = state.waiting.iter().position(|(call, _)| call.id == id) {
            state.waiting.remove(at);
            self.regulate(&state);
            return;
        }
        let Some(pending) = state.in_flight.remove(&id) else {
            return;
        };
        if let Some(err) = err {
            let _ = pending.answer.send(Err(err));
        }
        let Some(session) = state.session.clone() else {
            return self.pump(&mut state);
        };
        // Only fails when the child is gone, and then nothing runs any more.
        let _ = session.link().send(ToChild::Cancel { id });
        state.outstanding.insert(id);
        drop(state);
        if let (Some(grace), Ok(runtime)) =
            (self.cancel_grace, tokio::runtime::Handle::try_current())
        {
            let calls = Arc::downgrade(self);
            let generation = session.generation();
            // A timer on the caller's runtime (the extension's arbiter), no thread.
            runtime.spawn(async move {
                tokio::time::sleep(grace).await;
                if let Some(calls) = calls.upgrade() {
                    calls.check_cancelled(id, generation, grace);
                }
            });
        }
    }

    /// The cancel grace of call `id` (sent to child `generation`) is over: a child still
    /// running it is killed.
    fn check_cancelled(&self, id: u64, generation: u64, grace: Duration) {
        let session = {
            let state = self.lock();
            match &state.session {
                Some(session)
                    if session.generation() == generation && state.outstanding.contains(&id) =>
                {
                    session.clone()
                }
                _ => return,
            }
        };
        tracing::warn!(
            call_id = id,
            ?grace,
            "a cancelled call is still running: restarting the extension"
        );
        session.kill(ExitCause::CancelIgnored(grace));
    }

    /// `session`'s child finished its start-up: calls go to it, the waiting ones first.
    pub(crate) fn open(self: &Arc<Self>, session: Arc<Session>) {
        let mut state = self.lock();
        if state.closed.is_some() {
            return;
        }
        state.session = Some(session);
        self.pump(&mut state);
    }

    /// The child of session `generation` is gone: every call in flight fails with `err`;
    /// calls waiting stay for the next child. Returns how many failed.
    pub(crate) fn child_gone(&self, generation: u64, err: CallError) -> usize {
        let in_flight = {
            let mut state = self.lock();
            if state
                .session
                .as_ref()
                .is_some_and(|s| s.generation() == generation)
            {
                state.session = None;
                state.outstanding.clear();
            }
            std::mem::take(&mut state.in_flight)
        };
        let failed = in_flight.len();
        for (_, pending) in in_flight {
            let _ = pending.answer.send(Err(err.clone()));
        }
        failed
    }

    /// Done for good: every call, waiting, in flight or later, fails with `err`.
    pub(crate) fn close(&self, err: CallError) {
        let (waiting, in_flight) = {
            let mut state = self.lock();
            state.closed = Some(err.clone());
            state.session = None;
            state.outstanding.clear();
            let taken = (
                std::mem::take(&mut state.waiting),
                std::mem::take(&mut state.in_flight),
            );
            self.regulate(&state);
            taken
        };
        for (_, answer) in waiting {
            let _ = answer.send(Err(err.clone()));
        }
        for (_, pending) in in_flight {
            let _ = pending.answer.send(Err(err.clone()));
        }
    }
}
