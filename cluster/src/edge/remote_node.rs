//! The calling side of a cross-host edge: the [`Node`] that stands in a pipeline for a node
//! another host runs.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use troupe_nodes::{Emitter, Node, NodeError};
use troupe_runtime::{Call, CallResult, Caller};
use troupe_value::{CallError, Value};

use super::{BATCH, CLOSE, INTERRUPT, MAX_BATCH, RESEND_FOR, WINDOW, outcomes_from_value};

/// The first pause before a batch is sent again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

type Outputs = Result<Vec<Value>, NodeError>;

/// A node another host runs, as this pipeline runs it: inputs go there in numbered batches
/// and their outputs come back in input order (see [`crate::edge`]).
pub struct RemoteNode {
    link: Arc<Link>,
    type_name: &'static str,
}

impl std::fmt::Debug for RemoteNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteNode")
            .field("node", &self.link.node)
            .field("host", &self.link.host)
            .finish_non_exhaustive()
    }
}

/// What the node and its sending task share.
struct Link {
    caller: Caller,
    /// `PIPELINE/NODE`.
    node: String,
    host: String,
    queue: Mutex<Queue>,
}

struct Queue {
    /// The session the node there keeps its state under (a new one after a failed batch).
    session: i64,
    /// The number of the session's next batch.
    next_seq: i64,
    waiting: VecDeque<Entry>,
    /// Whether the sending task runs (it stops once nothing waits).
    sending: bool,
    /// Whether the stream's end was answered (the session there is closed).
    ended: bool,
}

/// One thing for the node there: an input, or the end of the stream (its flush).
enum Entry {
    Item(Value, oneshot::Sender<Outputs>),
    End(oneshot::Sender<Outputs>),
}

impl RemoteNode {
    /// The node `pipeline/node` of type `type_name`, run by host `host` behind `caller` (the
    /// node's queryable, [`RemoteHost::node`](crate::RemoteHost::node)). Each instance is
    /// a session of its own there: a fresh node.
    pub fn new(caller: Caller, node: String, host: String, type_name: &'static str) -> RemoteNode {
        RemoteNode {
            link: Arc::new(Link {
                caller,
                node,
                host,
                queue: Mutex::new(Queue {
                    session: new_session(),
                    next_seq: 0,
                    waiting: VecDeque::new(),
                    sending: false,
                    ended: false,
                }),
            }),
            type_name,
        }
    }

    /// Queues `entry` and makes sure a task sends it.
    fn queue(&self, entry: Entry) {
        let start = {
            let mut queue = self.link.lock();
            queue.waiting.push_back(entry);
            !std::mem::replace(&mut queue.sending, true)
        };
        if start {
            actix::spawn(self.link.clone().send_all());
        }
    }
}

impl Node for RemoteNode {
    fn type_name(&self) -> &'static str {
        self.type_name
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let (answer, outputs) = oneshot::channel();
        self.queue(Entry::Item(input, answer));
        out.defer(self.link.clone().outputs(outputs));
        Ok(())
    }

    fn concurrency(&self) -> usize {
        WINDOW
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        let (answer, outputs) = oneshot::channel();
        self.queue(Entry::End(answer));
        out.defer(self.link.clone().outputs(outputs));
        Ok(())
    }

    /// Goes at once, ahead of the inputs waiting here; the node there takes it before its
    /// next input.
    fn interrupt(&mut self) {
        let session = self.link.lock().session;
        self.link.tell(session, INTERRUPT);
    }

    fn shutdown(&mut self) {
        let (session, ended) = {
            let queue = self.link.lock();
            (queue.session, queue.ended)
        };
        if !ended {
            self.link.tell(session, CLOSE);
        }
    }
}

impl Link {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One input's outputs, once its batch is answered.
    async fn outputs(self: Arc<Link>, outputs: oneshot::Receiver<Outputs>) -> Outputs {
        outputs
            .await
            .unwrap_or_else(|_| Err(self.failed(CallError::ActorStopped)))
    }

    /// Tells the node there about `session`, not waiting for the answer.
    fn tell(&self, session: i64, method: &'static str) {
        let caller = self.caller.clone();
        actix::spawn(async move {
            let _ = caller
                .call(Call::new(method, vec![Value::Int(session)]))
                .await;
        });
    }

    fn failed(&self, source: CallError) -> NodeError {
        NodeError::Remote {
            node: self.node.clone(),
            host: self.host.clone(),
            source: Box::new(source),
        }
    }

    /// Sends what waits, a batch at a time, until nothing does.
    async fn send_all(self: Arc<Link>) {
        loop {
            let (session, seq, batch) = {
                let mut queue = self.lock();
                let mut batch = Batch::default();
                while batch.answers.len() < MAX_BATCH && !batch.end {
                    match queue.waiting.pop_front() {
                        Some(Entry::Item(item, answer)) => {
                            batch.items.push(item);
                            batch.answers.push(answer);
                        }
                        Some(Entry::End(answer)) => {
                            batch.answers.push(answer);
                            batch.end = true;
                        }
                        None => break,
                    }
                }
                if batch.answers.is_empty() {
                    queue.sending = false;
                    return;
                }
                (queue.session, queue.next_seq, batch)
            };
            let answer = self.send(session, seq, batch.items, batch.end).await;
            self.settle(session, batch.answers, batch.end, answer);
        }
    }

    /// Sends one batch, again with the same number while it gets no answer, for up to
    /// [`RESEND_FOR`] after its first miss.
    async fn send(&self, session: i64, seq: i64, items: Vec<Value>, end: bool) -> CallResult {
        let args = vec![
            Value::Int(session),
            Value::Int(seq),
            Value::List(items),
            Value::Bool(end),
        ];
        let mut first_miss: Option<Instant> = None;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let answer = self.caller.call(Call::new(BATCH, args.clone())).await;
            let missed = first_miss.get_or_insert_with(Instant::now);
            match answer {
                Err(error) if is_missed(&error) && missed.elapsed() + backoff < RESEND_FOR => {
                    tracing::debug!(node = %self.node, host = %self.host, seq, %error, "batch resent");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                other => return other,
            }
        }
    }

    /// Hands each input (and the end, when `ended`) its outputs; after a failed batch the
    /// node there starts over on a new session (what the old one held is lost with it).
    fn settle(
        &self,
        session: i64,
        answers: Vec<oneshot::Sender<Outputs>>,
        ended: bool,
        answer: CallResult,
    ) {
        let outcomes = answer.and_then(|value| outcomes_from_value(value, answers.len()));
        {
            let mut queue = self.lock();
            match &outcomes {
                Ok(_) => {
                    queue.next_seq += 1;
                    queue.ended |= ended;
                }
                Err(_) => {
                    queue.session = new_session();
                    queue.next_seq = 0;
                }
            }
        }
        match outcomes {
            Ok(outcomes) => {
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = answer.send(outcome.map_err(|e| self.failed(CallError::Remote(e))));
                }
                if ended {
                    // The session there is done: let it go at once.
                    self.tell(session, CLOSE);
                }
            }
            Err(error) => {
                tracing::warn!(node = %self.node, host = %self.host, %error, "batch failed");
                for answer in answers {
                    let _ = answer.send(Err(self.failed(error.clone())));
                }
            }
        }
    }
}

/// One batch as it leaves: its inputs, whether it ends the stream, and where each of its
/// entries' outputs go (the end's last).
#[derive(Default)]
struct Batch {
    items: Vec<Value>,
    end: bool,
    answers: Vec<oneshot::Sender<Outputs>>,
}

/// Whether a batch got no answer, so that sending it again may get one: the host did not
/// answer in time, was lost (its link may come back), or was busy.
fn is_missed(error: &CallError) -> bool {
    matches!(
        error,
        CallError::Timeout(_) | CallError::HostLost { .. } | CallError::MailboxFull
    )
}

/// A new session id (positive, random: sessions of many runs share a node there).
fn new_session() -> i64 {
    fastrand::i64(1..i64::MAX)
}
