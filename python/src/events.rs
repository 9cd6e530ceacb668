//! `troupe._host.Events`: an extension's supervision events (started, exited, restarting,
//! stopped, gave up) as a Python host reads them, blocking or awaited.
//!
//! A subscription sees the events from the moment it was made. It is a bounded broadcast
//! receiver (the supervisor keeps 256 events): a reader that falls further behind is told
//! how many it missed (a `missed` event) instead of losing them silently.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use tokio::sync::Mutex;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use troupe_pyvalue::convert::{Path, to_python};
use troupe_runtime::supervision::{EventKind, ExitReason, SupervisionEvent};
use troupe_value::{ExitCause, Map, Value};

use crate::completion::LoopQueue;
use crate::runtime::runtime;

/// What one read gives: an event (as a map), or nothing because the deadline passed, or
/// nothing because no event can come any more.
enum Read {
    Event(Value),
    TimedOut,
    Closed,
}

impl Read {
    /// `("event", map)`, `("timeout", None)` or `("closed", None)`.
    fn into_value(self) -> Value {
        let (tag, payload) = match self {
            Read::Event(event) => ("event", event),
            Read::TimedOut => ("timeout", Value::Null),
            Read::Closed => ("closed", Value::Null),
        };
        Value::List(vec![Value::Str(tag.into()), payload])
    }
}

/// An extension's supervision events from the subscription on (see the module).
#[pyclass(frozen, module = "troupe._host", name = "Events")]
pub(crate) struct Events {
    receiver: Arc<Mutex<Receiver<SupervisionEvent>>>,
    /// The extension was done for good when subscribed: no event will come beyond those
    /// already queued (the sender lives on in every handle, so the channel never closes).
    done: bool,
}

impl Events {
    /// Reads from `receiver`, subscribed when the extension was `done` for good or not.
    pub(crate) fn new(receiver: Receiver<SupervisionEvent>, done: bool) -> Events {
        Events {
            receiver: Arc::new(Mutex::new(receiver)),
            done,
        }
    }
}

/// The next event of `receiver`, waiting at most `timeout` (the wait for other readers
/// included); `done`: only what is queued.
async fn read(
    receiver: Arc<Mutex<Receiver<SupervisionEvent>>>,
    timeout: Option<Duration>,
    done: bool,
) -> Read {
    let next = async {
        let mut receiver = receiver.lock().await;
        let received = if done {
            receiver.try_recv().map_err(|e| match e {
                TryRecvError::Lagged(missed) => RecvError::Lagged(missed),
                TryRecvError::Empty | TryRecvError::Closed => RecvError::Closed,
            })
        } else {
            receiver.recv().await
        };
        match received {
            Ok(event) => Read::Event(event_value(&event)),
            Err(RecvError::Lagged(missed)) => Read::Event(missed_value(missed)),
            Err(RecvError::Closed) => Read::Closed,
        }
    };
    match timeout {
        Some(timeout) => tokio::time::timeout(timeout, next)
            .await
            .unwrap_or(Read::TimedOut),
        None => next.await,
    }
}

/// A wait of `timeout` seconds: `None` forever, 0 not at all (a poll).
fn wait_for(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        Some(0.0) => Ok(Some(Duration::ZERO)),
        other => crate::target::deadline(other),
    }
}

#[pymethods]
impl Events {
    /// The next event, waiting at most `timeout` seconds (forever with `None`, not at all
    /// with 0; Ctrl-C stops the wait): `("event", dict)`, `("timeout", None)` or `("closed", None)`.
    #[pyo3(signature = (timeout=None))]
    fn next<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let timeout = wait_for(timeout)?;
        let (receiver, done) = (self.receiver.clone(), self.done);
        let read = runtime()?.run(py, move || read(receiver, timeout, done))?;
        Ok(to_python(py, &read.into_value(), &Path::Root("event"))?)
    }

    /// Settles `future` (of the loop `queue` serves) with what [`Events::next`] returns.
    #[pyo3(signature = (queue, future, timeout=None))]
    fn next_async(
        &self,
        queue: &LoopQueue,
        future: Py<PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let timeout = wait_for(timeout)?;
        let (receiver, done) = (self.receiver.clone(), self.done);
        let settle = queue.settle();
        runtime()?.spawn(move || async move {
            let read = read(receiver, timeout, done).await;
            settle.complete(future, Ok(Some(read.into_value())));
        })?;
        Ok(())
    }
}

/// `{"actor", "kind", ...}`: the fields `troupe.ExtensionEvent` takes.
fn event_value(event: &SupervisionEvent) -> Value {
    let mut map = Map::new();
    map.insert("extension".into(), Value::Str(event.actor.to_string()));
    let kind = match &event.kind {
        EventKind::Started { instance } => {
            map.insert("instance".into(), count(*instance));
            "started"
        }
        EventKind::Exited { reason } => {
            exit_fields(&mut map, reason);
            "exited"
        }
        EventKind::Restarting { attempt, delay } => {
            map.insert("attempt".into(), Value::Int(i64::from(*attempt)));
            map.insert("delay_s".into(), Value::Float(delay.as_secs_f64()));
            "restarting"
        }
        EventKind::Stopped => "stopped",
        EventKind::GaveUp(give_up) => {
            map.insert("attempt".into(), Value::Int(i64::from(give_up.restarts)));
            exit_fields(&mut map, &give_up.last_exit);
            "gave_up"
        }
    };
    map.insert("kind".into(), Value::Str(kind.into()));
    Value::Map(map)
}

/// A `missed` event: the reader fell `missed` events behind.
fn missed_value(missed: u64) -> Value {
    let mut map = Map::new();
    map.insert("kind".into(), Value::Str("missed".into()));
    map.insert("missed".into(), count(missed));
    Value::Map(map)
}

fn count(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `reason` (text), and `exit_code` or `signal` where the process said.
fn exit_fields(map: &mut Map, reason: &ExitReason) {
    map.insert("reason".into(), Value::Str(reason.to_string()));
    if let ExitReason::Crashed(info) = reason {
        match info.cause {
            ExitCause::Exited(code) => {
                map.insert("exit_code".into(), Value::Int(i64::from(code)));
            }
            ExitCause::Signaled(signal) => {
                map.insert("signal".into(), Value::Int(i64::from(signal)));
            }
            _ => {}
        }
    }
}
