//! Python objects that answer calls: a singleton extensions call (`troupe.singleton("db")`)
//! or the host program's own service (`troupe.host`).
//!
//! An actor takes each call and queues it (at most [`QUEUE`]; past that its callers wait,
//! as for any full mailbox) for the object's worker, a Python thread of `troupe._hosting`
//! that takes jobs with [`JobQueue::next`]: it runs `def` methods one at a time in order and
//! `async def` methods on the host's asyncio loop, and answers through [`Reply`]. The actor
//! never takes the GIL, and a call abandoned by its caller (deadline, cancel) before the
//! worker takes it is skipped.

use std::sync::Mutex;

use actix::prelude::*;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tokio::sync::{mpsc, oneshot};
use troupe_pyvalue::convert::{Path, from_python, to_python};
use troupe_runtime::{ActorBuilder, Call, CallResult, Caller};
use troupe_value::{CallError, RemoteException};

/// Calls that may wait for an object's worker.
pub(crate) const QUEUE: usize = 256;

/// A call and where its answer goes.
struct Job {
    call: Call,
    reply: oneshot::Sender<CallResult>,
}

/// The actor in front of a Python object.
struct Served {
    jobs: mpsc::Sender<Job>,
}

impl Actor for Served {
    type Context = Context<Self>;
}

impl Handler<Call> for Served {
    type Result = ResponseFuture<CallResult>;

    fn handle(&mut self, mut call: Call, _: &mut Context<Self>) -> Self::Result {
        let jobs = self.jobs.clone();
        Box::pin(async move {
            let abandoned = call.take_abandoned();
            let (reply, answer) = oneshot::channel();
            if jobs.send(Job { call, reply }).await.is_err() {
                return Err(CallError::ActorStopped);
            }
            tokio::select! {
                answer = answer => answer.unwrap_or(Err(CallError::ActorStopped)),
                // The caller stopped waiting: dropping `answer` tells the worker.
                () = abandoned => Err(CallError::Cancelled),
            }
        })
    }
}

/// Starts the actor for an object called `name` (on the current arbiter); returns its
/// caller and the queue its worker reads.
pub(crate) fn serve(name: &str) -> (Caller, JobQueue) {
    let (jobs, queue) = mpsc::channel(QUEUE);
    let address = ActorBuilder::new(name).spawn(Served { jobs });
    (
        address.caller(),
        JobQueue {
            jobs: Mutex::new(queue),
        },
    )
}

/// The calls waiting for a Python object's worker.
#[pyclass(frozen, module = "troupe._host", name = "JobQueue")]
pub(crate) struct JobQueue {
    jobs: Mutex<mpsc::Receiver<Job>>,
}

/// The answer of one call, given once.
#[pyclass(frozen, module = "troupe._host", name = "Reply")]
pub(crate) struct Reply {
    tx: Mutex<Option<oneshot::Sender<CallResult>>>,
}

impl Reply {
    fn send(&self, result: CallResult) {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(tx) = tx {
            let _ = tx.send(result);
        }
    }
}

/// A job as the worker takes it.
type Taken = (String, Py<PyTuple>, Py<PyDict>, Reply);

#[pymethods]
impl JobQueue {
    /// The next call as `(method, args, kwargs, reply)`, waiting without the GIL; `None`
    /// once the object is no longer served. Calls whose caller stopped waiting are skipped;
    /// arguments that cannot become Python objects are answered `BadArguments` here.
    fn next(&self, py: Python<'_>) -> PyResult<Option<Taken>> {
        loop {
            let job = py.detach(|| {
                self.jobs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .blocking_recv()
            });
            let Some(Job { call, reply }) = job else {
                return Ok(None);
            };
            if reply.is_closed() {
                continue;
            }
            match arguments(py, &call) {
                Ok((args, kwargs)) => {
                    let reply = Reply {
                        tx: Mutex::new(Some(reply)),
                    };
                    return Ok(Some((call.method.into_owned(), args, kwargs, reply)));
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            }
        }
    }
}

/// A call's arguments as Python objects.
fn arguments(py: Python<'_>, call: &Call) -> Result<(Py<PyTuple>, Py<PyDict>), CallError> {
    let bad = |e: troupe_pyvalue::errors::ConvertError| {
        CallError::bad_argument(e.path, e.kind.to_string())
    };
    let root = Path::Root("args");
    let args = call
        .args
        .iter()
        .enumerate()
        .map(|(i, value)| to_python(py, value, &root.index(i)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let args =
        PyTuple::new(py, args).map_err(|e| CallError::bad_argument("args", e.to_string()))?;
    let kwargs = PyDict::new(py);
    let root = Path::Root("kwargs");
    for (key, value) in &call.kwargs {
        let value = to_python(py, value, &root.key(key)).map_err(bad)?;
        kwargs
            .set_item(key, value)
            .map_err(|e| CallError::bad_argument("kwargs", e.to_string()))?;
    }
    Ok((args.unbind(), kwargs.unbind()))
}

#[pymethods]
impl Reply {
    /// Answers with `value`. A value that cannot cross answers the caller with a `TypeError`
    /// naming where it sits (and raises it here too).
    fn ok(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        match from_python(value, &Path::Root("result"), 0) {
            Ok(value) => {
                self.send(Ok(value));
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                self.send(Err(CallError::Remote(RemoteException {
                    type_name: "TypeError".into(),
                    message,
                    traceback: String::new(),
                })));
                Err(e.into())
            }
        }
    }

    /// Answers with the exception the method raised.
    fn error(&self, type_name: String, message: String, traceback: String) {
        self.send(Err(CallError::Remote(RemoteException {
            type_name,
            message,
            traceback,
        })));
    }

    /// Answers: the object has no public method `method`.
    fn unknown_method(&self, method: String) {
        self.send(Err(CallError::UnknownMethod { method }));
    }

    /// Whether the caller stopped waiting (its deadline passed, or it cancelled).
    #[getter]
    fn abandoned(&self) -> bool {
        self.tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_none_or(oneshot::Sender::is_closed)
    }
}
