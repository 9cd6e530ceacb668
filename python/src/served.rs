//! Python objects that answer calls: a singleton extensions call (`troupe.singleton("db")`)
//! or the host program's own service (`troupe.host`).
//!
//! An actor takes each call and queues it (at most [`QUEUE`]; past that its callers wait,
//! as for any full mailbox) for the object's worker, a Python thread of `troupe._hosting`
//! that takes jobs with [`JobQueue::next`]: it runs `def` methods one at a time in order and
//! `async def` methods on the host's asyncio loop, and answers through [`Reply`]. A `def`
//! method that makes a blocking call serves the calls that arrive meanwhile
//! ([`JobQueue::next_while`]), so a call chain that comes back to the object does not
//! deadlock. The actor never takes the GIL, and a call abandoned by its caller (deadline,
//! cancel) before the worker takes it is skipped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

use actix::prelude::*;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use troupe_pyvalue::convert::{Path, from_python, to_python};
use troupe_runtime::{ActorBuilder, Call, CallResult, Caller};
use troupe_value::{CallError, RemoteException};

use crate::errors::call_error;
use crate::runtime::SIGNAL_CHECK;

/// Calls that may wait for an object's worker.
pub(crate) const QUEUE: usize = 256;

/// A call and where its answer goes.
struct Job {
    call: Call,
    reply: oneshot::Sender<CallResult>,
    /// Its place among the [`QUEUE`] calls that may wait.
    _room: OwnedSemaphorePermit,
}

/// What a worker thread wakes for: a call to serve, or the answer of a call it made.
enum Event {
    Job(Job),
    Done(u64, CallResult),
}

/// A worker's events, and whether its object is still served.
#[derive(Default)]
struct Inbox {
    events: Mutex<(VecDeque<Event>, bool)>,
    ready: Condvar,
}

impl Inbox {
    /// Queues `event`; `false` (the event dropped) when the object is no longer served.
    fn push(&self, event: Event) -> bool {
        let mut events = lock(&self.events);
        if events.1 {
            return false;
        }
        events.0.push_back(event);
        drop(events);
        self.ready.notify_one();
        true
    }

    fn close(&self) {
        lock(&self.events).1 = true;
        self.ready.notify_all();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The actor in front of a Python object.
struct Served {
    inbox: Arc<Inbox>,
    room: Arc<Semaphore>,
}

impl Actor for Served {
    type Context = Context<Self>;
}

impl Drop for Served {
    fn drop(&mut self) {
        self.inbox.close();
    }
}

impl Handler<Call> for Served {
    type Result = ResponseFuture<CallResult>;

    fn handle(&mut self, mut call: Call, _: &mut Context<Self>) -> Self::Result {
        let inbox = self.inbox.clone();
        let room = self.room.clone();
        Box::pin(async move {
            let mut abandoned = call.take_abandoned();
            let room = tokio::select! {
                room = room.acquire_owned() => room,
                () = &mut abandoned => return Err(CallError::Cancelled),
            };
            let Ok(room) = room else {
                return Err(CallError::ActorStopped);
            };
            let (reply, answer) = oneshot::channel();
            let job = Event::Job(Job {
                call,
                reply,
                _room: room,
            });
            if !inbox.push(job) {
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
    let inbox = Arc::new(Inbox::default());
    let served = Served {
        inbox: inbox.clone(),
        room: Arc::new(Semaphore::new(QUEUE)),
    };
    let address = ActorBuilder::new(name).spawn(served);
    (
        address.caller(),
        JobQueue {
            inbox,
            answers: Mutex::new(HashMap::new()),
        },
    )
}

/// The calls waiting for a Python object's worker, and the answers of the calls the
/// worker makes: a `def` method that calls out (an extension, which may call this object
/// back) serves the calls that arrive meanwhile, as an extension's child does, so
/// host -> extension -> host chains do not deadlock.
#[pyclass(frozen, module = "troupe._host", name = "JobQueue")]
pub(crate) struct JobQueue {
    inbox: Arc<Inbox>,
    answers: Mutex<HashMap<u64, CallResult>>,
}

impl JobQueue {
    /// Where the answer of call `id`, made by this queue's worker, goes.
    pub(crate) fn answer_to(&self, id: u64) -> impl FnOnce(CallResult) + Send + 'static {
        let inbox = self.inbox.clone();
        move |result| {
            // A worker no longer served takes no answer.
            inbox.push(Event::Done(id, result));
        }
    }

    /// Waits (without the GIL) for a job to serve, or, with `call`, for that call's answer
    /// (kept for [`JobQueue::answer`]); `None` when the answer came, or the object is no
    /// longer served.
    fn wait(&self, py: Python<'_>, call: Option<u64>) -> PyResult<Option<Job>> {
        loop {
            // A call served inline meanwhile may have taken this answer in.
            if call.is_some_and(|id| lock(&self.answers).contains_key(&id)) {
                return Ok(None);
            }
            let event = py.detach(|| {
                let mut events = lock(&self.inbox.events);
                loop {
                    if let Some(event) = events.0.pop_front() {
                        return Some(event);
                    }
                    if events.1 {
                        return None;
                    }
                    events = self
                        .inbox
                        .ready
                        .wait_timeout(events, SIGNAL_CHECK)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
            });
            match event {
                None => return Ok(None),
                Some(Event::Done(id, result)) => {
                    lock(&self.answers).insert(id, result);
                    if call == Some(id) {
                        return Ok(None);
                    }
                }
                Some(Event::Job(job)) if job.reply.is_closed() => {}
                Some(Event::Job(job)) => return Ok(Some(job)),
            }
            py.check_signals()?;
        }
    }
}

/// A job as the worker takes it.
type Taken = (String, Py<PyTuple>, Py<PyDict>, Reply);

/// A job's call as Python objects; arguments that cannot become Python objects are answered
/// `BadArguments` (and `None` returned).
fn taken(py: Python<'_>, job: Job) -> Option<Taken> {
    let Job { call, reply, .. } = job;
    match arguments(py, &call) {
        Ok((args, kwargs)) => Some((
            call.method.into_owned(),
            args,
            kwargs,
            Reply {
                tx: Mutex::new(Some(reply)),
            },
        )),
        Err(error) => {
            let _ = reply.send(Err(error));
            None
        }
    }
}

/// The answer of one call, given once.
#[pyclass(frozen, module = "troupe._host", name = "Reply")]
pub(crate) struct Reply {
    tx: Mutex<Option<oneshot::Sender<CallResult>>>,
}

impl Reply {
    fn send(&self, result: CallResult) {
        if let Some(tx) = lock(&self.tx).take() {
            let _ = tx.send(result);
        }
    }
}

#[pymethods]
impl JobQueue {
    /// The next call as `(method, args, kwargs, reply)`, waiting without the GIL; `None`
    /// once the object is no longer served. Calls whose caller stopped waiting are skipped.
    fn next(&self, py: Python<'_>) -> PyResult<Option<Taken>> {
        loop {
            match self.wait(py, None)? {
                None => return Ok(None),
                Some(job) => {
                    if let Some(taken) = taken(py, job) {
                        return Ok(Some(taken));
                    }
                }
            }
        }
    }

    /// While call `id` (made by this worker) is pending: the next call to serve meanwhile,
    /// or `None` once its answer is here (take it with [`JobQueue::answer`]).
    fn next_while(&self, py: Python<'_>, id: u64) -> PyResult<Option<Taken>> {
        loop {
            match self.wait(py, Some(id))? {
                None => return Ok(None),
                Some(job) => {
                    if let Some(taken) = taken(py, job) {
                        return Ok(Some(taken));
                    }
                }
            }
        }
    }

    /// The answer of call `id`: its value, or its error raised.
    fn answer(&self, py: Python<'_>, id: u64) -> PyResult<Py<PyAny>> {
        match lock(&self.answers).remove(&id) {
            Some(Ok(value)) => Ok(to_python(py, &value, &Path::Root("result"))?.unbind()),
            Some(Err(error)) => Err(call_error(py, &error)),
            // The object is no longer served: the runtime is going away.
            None => Err(call_error(py, &CallError::ActorStopped)),
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
