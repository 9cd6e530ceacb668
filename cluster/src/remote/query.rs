//! One query to a serving host, as the client side makes it: started from the cluster
//! runtime, its replies read in zenoh's reply callback (sizes checked first) and handed to
//! the waiting caller (or, for a streamed call, pushed to its stream) with no task between;
//! and the control messages a caller sends about its calls.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use troupe_runtime::ItemSink;
use zenoh::qos::CongestionControl;
use zenoh::query::ConsolidationMode;

use crate::error::ClusterError;
use crate::frame::{self, Control, MAX_FRAME, RemoteReply, StreamPart};
use crate::runtime;
use crate::session::SharedSession;

/// How one query ended.
pub(super) enum Answer {
    /// The first reply's bytes.
    Reply(Vec<u8>),
    /// A streamed call's end, its items all handed to the caller's stream.
    Ended(RemoteReply),
    /// A reply over [`MAX_FRAME`].
    TooLarge(usize),
    /// The query ended with no reply: nothing serves the key (or the host just went away).
    NoReply,
    /// No reply within the timeout.
    TimedOut,
    /// zenoh refused the query, or the replier sent an error of zenoh's own.
    Failed(String),
}

/// A value handed over once, from whichever callback comes first.
struct Once<T>(Mutex<Option<T>>);

impl<T> Once<T> {
    fn new(value: T) -> Arc<Once<T>> {
        Arc::new(Once(Mutex::new(Some(value))))
    }

    fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// `f` of the value, unless it was taken.
    fn with<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(f)
    }
}

/// Issues one query of `key` with `payload` from the cluster runtime (zenoh may block or
/// panic on actix's thread): `on_reply` runs in zenoh's reply callback for every reply, and
/// `on_failure` hears why the query could not be sent.
fn issue(
    session: SharedSession,
    key: String,
    payload: Vec<u8>,
    timeout: Duration,
    on_reply: impl Fn(zenoh::query::Reply) + Send + Sync + 'static,
    on_failure: impl FnOnce(String) + Send + 'static,
) -> Result<(), ClusterError> {
    runtime::handle()?.spawn(async move {
        // Who asks (the session id's 16 bytes): the host queues calls per peer
        // (`serve/intake.rs`).
        let issued = session
            .get()
            .get(&key)
            .payload(payload)
            .attachment(session.get().zid().to_le_bytes())
            .consolidation(ConsolidationMode::None)
            .congestion_control(CongestionControl::Block)
            .timeout(timeout)
            .callback(on_reply)
            .await;
        if let Err(error) = issued {
            on_failure(error.to_string());
        }
    });
    Ok(())
}

/// Starts one query of `key` with `payload`; its first reply is read in zenoh's reply
/// callback and handed straight to the waiting caller, with no task between. No reply at
/// all (the query ended, or could not be sent) closes the channel or says why.
pub(super) fn start_query(
    session: SharedSession,
    key: String,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<oneshot::Receiver<Answer>, ClusterError> {
    let (answer, first) = oneshot::channel();
    let answer = Once::new(answer);
    let send = |answer: &Once<oneshot::Sender<Answer>>, value: Answer| {
        if let Some(answer) = answer.take() {
            let _ = answer.send(value);
        }
    };
    let on_reply = answer.clone();
    issue(
        session,
        key,
        payload,
        timeout,
        move |reply| send(&on_reply, read_reply(reply)),
        move |reason| send(&answer, Answer::Failed(reason)),
    )?;
    Ok(first)
}

/// Starts a streamed call's query (as [`start_query`] does): each item is pushed to `sink`
/// from zenoh's reply callback, never waiting; the end drops the sink, then answers. A host
/// that sends past its credit, or a part that cannot be read, ends the call with an error.
pub(super) fn start_stream(
    session: SharedSession,
    key: String,
    payload: Vec<u8>,
    timeout: Duration,
    sink: ItemSink,
) -> Result<oneshot::Receiver<Answer>, ClusterError> {
    let (answer, first) = oneshot::channel();
    let state = Once::new((sink, answer));
    let end = |state: &Once<(ItemSink, oneshot::Sender<Answer>)>, value: Answer| {
        if let Some((sink, answer)) = state.take() {
            drop(sink);
            let _ = answer.send(value);
        }
    };
    let on_reply = state.clone();
    let on_reply = move |reply| {
        let part = match read_reply(reply) {
            Answer::Reply(bytes) => frame::decode_part(&bytes),
            other => return end(&on_reply, other),
        };
        match part {
            Ok(StreamPart::Item(item)) => {
                let Some(pushed) = on_reply.with(|(sink, _)| sink.push(item)) else {
                    return;
                };
                if let Err(over) = pushed {
                    let reason = format!("the host sent items past its credit: {over}");
                    end(&on_reply, Answer::Failed(reason));
                }
            }
            Ok(StreamPart::End(reply)) => end(&on_reply, Answer::Ended(reply)),
            Err(error) => end(&on_reply, Answer::Failed(error.to_string())),
        }
    };
    issue(session, key, payload, timeout, on_reply, move |reason| {
        end(&state, Answer::Failed(reason))
    })?;
    Ok(first)
}

/// Sends `control` to the host at `key` (from any thread; on the cluster runtime).
pub(super) fn tell(session: &SharedSession, key: &str, control: &Control) {
    let Ok(bytes) = frame::encode_control(control) else {
        return;
    };
    let Ok(handle) = runtime::handle() else {
        return;
    };
    let (session, key) = (session.clone(), key.to_owned());
    handle.spawn(async move {
        let sent = session
            .get()
            .put(&key, bytes)
            .congestion_control(CongestionControl::Block)
            .await;
        if let Err(error) = sent {
            tracing::debug!(%error, %key, "control message not sent");
        }
    });
}

/// The answer a started query gives within `timeout`.
pub(super) async fn await_answer(first: oneshot::Receiver<Answer>, timeout: Duration) -> Answer {
    match tokio::time::timeout(timeout, first).await {
        Err(_) => Answer::TimedOut,
        Ok(Err(_)) => Answer::NoReply,
        Ok(Ok(answer)) => answer,
    }
}

/// What one reply says, its size checked before it is copied.
pub(super) fn read_reply(reply: zenoh::query::Reply) -> Answer {
    match reply.into_result() {
        Ok(sample) => {
            let payload = sample.payload();
            if payload.len() > MAX_FRAME {
                return Answer::TooLarge(payload.len());
            }
            Answer::Reply(payload.to_bytes().into_owned())
        }
        Err(error) => {
            let text = error.payload().try_to_string().map(|s| s.into_owned());
            match text {
                Ok(text) if text == "Timeout" => Answer::TimedOut,
                Ok(text) => Answer::Failed(text),
                Err(_) => Answer::Failed("an error reply".to_owned()),
            }
        }
    }
}
