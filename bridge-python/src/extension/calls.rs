//! The calls of one extension: those waiting to be sent, and those in flight to its child.
//!
//! One table per extension, shared by its actor (which submits calls), the callers' futures
//! (which cancel theirs) and the running child's session (which completes them). A call is
//! sent at once while the child runs and fewer than `max_in_flight` calls are in it;
//! otherwise it waits here, in order. Once `capacity` calls wait, the actor's [`Intake`] is
//! paused: the actor takes no more calls from its mailbox, which fills up in turn, so callers
//! wait for room (or `try_call` is refused) until answers let waiting calls go. Each answer
//! that comes back lets the next waiting call go.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;
use troupe_protocol::transport::SendError;
use troupe_protocol::{CallFrame, ToChild};
use troupe_runtime::{Call, CallResult, Intake};
use troupe_value::CallError;

use super::session::Session;
use crate::process::LinkError;

/// Where one call's answer goes.
type Answer = oneshot::Sender<CallResult>;

/// The calls of one extension (see the module docs).
#[derive(Debug)]
pub(crate) struct Calls {
    state: Mutex<State>,
    max_in_flight: usize,
    capacity: usize,
    /// The actor's data lane: paused while `capacity` calls wait.
    intake: Intake,
}

#[derive(Debug, Default)]
struct State {
    /// Not sent yet: no child runs, or the window is full. Oldest first.
    waiting: VecDeque<(Call, Answer)>,
    /// Sent to the running child and not answered, by call id.
    in_flight: HashMap<u64, Answer>,
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
    /// pausing `intake` while they do.
    pub(crate) fn new(max_in_flight: usize, capacity: usize, intake: Intake) -> Calls {
        Calls {
            state: Mutex::default(),
            max_in_flight: max_in_flight.max(1),
            capacity: capacity.max(1),
            intake,
        }
    }

    /// Pauses or resumes the actor's intake as the waiting calls reach or leave `capacity`.
    fn regulate(&self, state: &State) {
        if state.waiting.len() >= self.capacity && state.closed.is_none() {
            self.intake.pause();
        } else {
            self.intake.resume();
        }
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
    pub(crate) fn submit(&self, call: Call, answer: Answer) {
        let mut state = self.lock();
        if let Some(err) = &state.closed {
            let _ = answer.send(Err(err.clone()));
            return;
        }
        if state.waiting.is_empty()
            && state.session.is_some()
            && state.in_flight.len() < self.max_in_flight
        {
            self.send(&mut state, call, answer);
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
    fn send(&self, state: &mut State, call: Call, answer: Answer) {
        let Some(session) = state.session.clone() else {
            state.waiting.push_front((call, answer));
            return;
        };
        let id = call.id;
        let frame = ToChild::Call(CallFrame {
            id,
            method: call.method.into_owned(),
            args: call.args,
            kwargs: call.kwargs,
        });
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
                state.in_flight.insert(id, answer);
            }
        }
    }

    /// Sends waiting calls while the window has room.
    fn pump(&self, state: &mut State) {
        while state.session.is_some() && state.in_flight.len() < self.max_in_flight {
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

    /// The child answered call `id` (ignored when it is not in flight: cancelled, or a
    /// child's garbage).
    pub(crate) fn complete(&self, id: u64, result: CallResult) {
        let mut state = self.lock();
        if let Some(answer) = state.in_flight.remove(&id) {
            let _ = answer.send(result);
            self.pump(&mut state);
        }
    }

    /// The caller of call `id` stopped waiting: a waiting call is dropped, one in flight is
    /// forgotten and the child told to cancel it.
    pub(crate) fn cancel(&self, id: u64) {
        let mut state = self.lock();
        if let Some(at) = state.waiting.iter().position(|(call, _)| call.id == id) {
            state.waiting.remove(at);
            self.regulate(&state);
            return;
        }
        if state.in_flight.remove(&id).is_some() {
            if let Some(session) = &state.session {
                // Only fails when the child is gone, and then nothing runs any more.
                let _ = session.link().send(ToChild::Cancel { id });
            }
            self.pump(&mut state);
        }
    }

    /// `session`'s child finished its start-up: calls go to it, the waiting ones first.
    pub(crate) fn open(&self, session: Arc<Session>) {
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
            }
            std::mem::take(&mut state.in_flight)
        };
        let failed = in_flight.len();
        for (_, answer) in in_flight {
            let _ = answer.send(Err(err.clone()));
        }
        failed
    }

    /// Done for good: every call, waiting, in flight or later, fails with `err`.
    pub(crate) fn close(&self, err: CallError) {
        let (waiting, in_flight) = {
            let mut state = self.lock();
            state.closed = Some(err.clone());
            state.session = None;
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
        for (_, answer) in in_flight {
            let _ = answer.send(Err(err.clone()));
        }
    }
}
