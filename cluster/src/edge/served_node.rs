//! The serving side of a cross-host edge: one actor per node a host runs for others, holding
//! one instance of the node per session (a run of a pipeline somewhere), each fed its
//! batches in sequence.
//!
//! A batch numbered as the one before is a resend: it is answered with the answer kept, not
//! run again. A session's node runs on a blocking thread (never on the actor's), one batch
//! at a time; an interrupt reaches it between two inputs. A node that panics is gone: its
//! session answers a `NodeCrashed` error from then on and the caller starts over. Sessions
//! are bounded ([`MAX_SESSIONS`]); one left idle for [`SESSION_IDLE`] (its caller went away without
//! closing it) makes room for a new one.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler, ResponseFuture};
use troupe_manifest::ServedNode;
use troupe_nodes::{Emitter, Node};
use troupe_runtime::{ActorBuilder, Call, CallResult, Caller};
use troupe_value::{CallError, RemoteException, Value};

use super::{BATCH, CLOSE, INTERRUPT, NODE_ERROR, Outcome, outcomes_to_value};

/// The most sessions one served node holds at once; past them a new one is refused with
/// [`CallError::MailboxFull`] (after those idle for [`SESSION_IDLE`] are dropped).
pub const MAX_SESSIONS: usize = 64;

/// How long a session may go without a batch before a new session may take its place.
pub const SESSION_IDLE: Duration = Duration::from_secs(600);

/// Starts the actor serving `node` and gives its caller (call from within an actix system).
pub(crate) fn serve(node: ServedNode) -> Caller {
    let name = format!("node {}/{}", node.pipeline, node.node);
    let actor = ServedNodeActor {
        node,
        sessions: HashMap::new(),
    };
    ActorBuilder::new(name).spawn(actor).caller()
}

struct ServedNodeActor {
    node: ServedNode,
    /// The sessions by id (only the actor's handler touches the map).
    sessions: HashMap<i64, Held>,
}

/// A session, and when its last batch came.
struct Held {
    session: Arc<Session>,
    touched: Instant,
}

/// One run's instance of the node.
struct Session {
    /// Set by an interrupt, taken by the node's thread before its next input.
    interrupted: AtomicBool,
    state: tokio::sync::Mutex<State>,
}

struct State {
    /// `None` while a batch runs on the node's thread, after a panic, and after the end.
    node: Option<Box<dyn Node>>,
    initialized: bool,
    /// The number the next new batch must carry.
    next_seq: i64,
    /// The last batch's number and answer, for a resend of it.
    last: Option<(i64, CallResult)>,
    crashed: Option<String>,
}

impl Actor for ServedNodeActor {
    type Context = Context<Self>;
}

impl Handler<Call> for ServedNodeActor {
    type Result = ResponseFuture<CallResult>;

    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> Self::Result {
        let answer = self.take(call);
        Box::pin(async move {
            match answer? {
                Taken::Batch(session, batch) => session.run(batch).await,
                Taken::Done => Ok(Value::Null),
            }
        })
    }
}

/// What a call asks, once read.
enum Taken {
    Batch(Arc<Session>, Batch),
    Done,
}

struct Batch {
    seq: i64,
    items: Vec<Value>,
    end: bool,
}

impl ServedNodeActor {
    /// Reads `call` and finds (or makes, for a first batch) its session; an interrupt or a
    /// close is done here.
    fn take(&mut self, mut call: Call) -> Result<Taken, CallError> {
        let session_id: i64 = call.arg(0)?;
        match call.method() {
            INTERRUPT => {
                if let Some(held) = self.sessions.get(&session_id) {
                    held.session.interrupted.store(true, Ordering::SeqCst);
                }
                Ok(Taken::Done)
            }
            CLOSE => {
                self.sessions.remove(&session_id);
                Ok(Taken::Done)
            }
            BATCH => {
                let seq: i64 = call.arg(1)?;
                let end: bool = call.arg(3)?;
                let items = match call.args.get_mut(2) {
                    Some(Value::List(items)) => std::mem::take(items),
                    _ => {
                        return Err(CallError::BadArguments {
                            path: "args[2]".into(),
                            reason: "a batch's items are a list".into(),
                        });
                    }
                };
                let now = Instant::now();
                let session = match self.sessions.get_mut(&session_id) {
                    Some(held) => {
                        held.touched = now;
                        held.session.clone()
                    }
                    None if seq == 0 => {
                        self.make_room()?;
                        let node = self.node.build();
                        let session = Arc::new(Session::new(
                            node.map_err(|error| node_failed(&error.to_string()))?,
                        ));
                        let held = Held {
                            session: session.clone(),
                            touched: now,
                        };
                        self.sessions.insert(session_id, held);
                        session
                    }
                    None => {
                        return Err(CallError::NotFound {
                            target: format!(
                                "session {session_id} of node {}/{} (the host restarted or \
                                 dropped it)",
                                self.node.pipeline, self.node.node
                            ),
                        });
                    }
                };
                Ok(Taken::Batch(session, Batch { seq, items, end }))
            }
            _ => Err(call.unknown_method()),
        }
    }

    /// Drops sessions idle past [`SESSION_IDLE`] when the sessions are full; busy if still full.
    fn make_room(&mut self) -> Result<(), CallError> {
        if self.sessions.len() < MAX_SESSIONS {
            return Ok(());
        }
        self.sessions
            .retain(|_, held| held.touched.elapsed() < SESSION_IDLE);
        if self.sessions.len() < MAX_SESSIONS {
            Ok(())
        } else {
            Err(CallError::MailboxFull)
        }
    }
}

impl Session {
    fn new(node: Box<dyn Node>) -> Session {
        Session {
            interrupted: AtomicBool::new(false),
            state: tokio::sync::Mutex::new(State {
                node: Some(node),
                initialized: false,
                next_seq: 0,
                last: None,
                crashed: None,
            }),
        }
    }

    /// Runs `batch` once (a resend of the last one gets its kept answer).
    async fn run(self: Arc<Session>, batch: Batch) -> CallResult {
        let mut state = self.state.lock().await;
        if let Some((seq, answer)) = &state.last
            && *seq == batch.seq
        {
            return answer.clone();
        }
        if batch.seq != state.next_seq {
            return Err(CallError::BadArguments {
                path: "args[1]".into(),
                reason: format!(
                    "batch {} out of sequence: {} next",
                    batch.seq, state.next_seq
                ),
            });
        }
        if let Some(crash) = &state.crashed {
            return Err(crashed(crash));
        }
        let Some(node) = state.node.take() else {
            return Err(CallError::BadArguments {
                path: "args[1]".into(),
                reason: "batch after the end of the stream".into(),
            });
        };
        let initialized = state.initialized;
        let session = self.clone();
        let ran = tokio::task::spawn_blocking(move || session.feed(node, initialized, batch))
            .await
            .map_err(|error| CallError::Remote(exception("JoinError", &error.to_string())));
        let answer = match ran {
            Ok(Fed {
                node,
                outcomes,
                end,
            }) => {
                state.initialized = true;
                match node {
                    Some(node) if !end => state.node = Some(node),
                    Some(_) => {}
                    None => state.crashed = Some(crash_reason(&outcomes)),
                }
                Ok(outcomes_to_value(outcomes))
            }
            Err(error) => {
                state.crashed = Some(error.to_string());
                Err(error)
            }
        };
        state.last = Some((state.next_seq, answer.clone()));
        state.next_seq += 1;
        answer
    }

    /// On the node's thread: initializes it the first time, then each input (taking an
    /// interrupt before each), then the flush when the batch ends the stream. A panic
    /// leaves no node behind.
    fn feed(&self, mut node: Box<dyn Node>, initialized: bool, batch: Batch) -> Fed {
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(batch.items.len() + 1);
        let count = batch.items.len() + usize::from(batch.end);
        if !initialized && let Err(error) = node.initialize() {
            let failed = exception(NODE_ERROR, &format!("initialize: {error}"));
            return Fed {
                node: None,
                outcomes: vec![Err(failed); count],
                end: true,
            };
        }
        let mut items = batch.items.into_iter();
        for item in items.by_ref() {
            if self.interrupted.swap(false, Ordering::SeqCst) {
                node.interrupt();
            }
            match step(|out| node.process(item, out)) {
                Step::Done(outcome) => outcomes.push(outcome),
                Step::Panicked(outcome) => {
                    outcomes.push(outcome.clone());
                    outcomes.resize(count, outcome);
                    return Fed {
                        node: None,
                        outcomes,
                        end: batch.end,
                    };
                }
            }
        }
        if batch.end {
            match step(|out| node.flush(out)) {
                Step::Done(outcome) => outcomes.push(outcome),
                Step::Panicked(outcome) => {
                    outcomes.push(outcome);
                    return Fed {
                        node: None,
                        outcomes,
                        end: true,
                    };
                }
            }
            node.shutdown();
        }
        Fed {
            node: Some(node),
            outcomes,
            end: batch.end,
        }
    }
}

/// What a batch left: the node (none after a panic), each input's outcome.
struct Fed {
    node: Option<Box<dyn Node>>,
    outcomes: Vec<Outcome>,
    end: bool,
}

enum Step {
    Done(Outcome),
    Panicked(Outcome),
}

/// Runs one input (or the flush) through the node, its panic caught.
fn step(run: impl FnOnce(&mut Emitter) -> Result<(), troupe_nodes::NodeError>) -> Step {
    let mut out = Emitter::new();
    match std::panic::catch_unwind(AssertUnwindSafe(|| run(&mut out))) {
        Ok(Ok(())) if out.take_deferred().is_some() => Step::Done(Err(exception(
            NODE_ERROR,
            "the node deferred its outputs: a served node must emit them at once",
        ))),
        Ok(Ok(())) => Step::Done(Ok(out.drain().collect())),
        Ok(Err(error)) => Step::Done(Err(exception(NODE_ERROR, &error.to_string()))),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            Step::Panicked(Err(exception("Panic", &message)))
        }
    }
}

fn exception(type_name: &str, message: &str) -> RemoteException {
    RemoteException {
        type_name: type_name.to_owned(),
        message: message.to_owned(),
        traceback: String::new(),
    }
}

fn node_failed(message: &str) -> CallError {
    CallError::Remote(exception(NODE_ERROR, message))
}

/// Why the session's node is gone, from the outcome of the input that panicked.
fn crash_reason(outcomes: &[Outcome]) -> String {
    outcomes
        .iter()
        .rev()
        .find_map(|outcome| outcome.as_ref().err())
        .map_or_else(|| "the node is gone".to_owned(), |e| e.message.clone())
}

fn crashed(reason: &str) -> CallError {
    CallError::Remote(exception(
        "NodeCrashed",
        &format!("the node panicked earlier: {reason}"),
    ))
}
