//! `troupe._host.Target`: what a Python host calls, an extension or a singleton, behind the
//! runtime's one call path ([`Caller`]): the caller's deadline, cancellation when the caller
//! stops waiting, typed errors.

use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tokio::sync::oneshot;
use troupe_bridge_python::extension::ExtensionRef;
use troupe_pyvalue::convert::{Path, dict_from_python, from_python, to_python};
use troupe_runtime::supervision::SupervisorStatus;
use troupe_runtime::{Call, CallResult, Caller};
use troupe_value::Map;

use crate::completion::LoopQueue;
use crate::errors::call_error;
use crate::events::Events;
use crate::runtime::runtime;
use crate::served::JobQueue;
use crate::streamed::CallItems;

/// An extension or singleton a Python host calls. Holding it keeps the target alive.
#[pyclass(frozen, module = "troupe._host", name = "Target")]
pub(crate) struct Target {
    name: String,
    kind: &'static str,
    caller: Caller,
    extension: Option<ExtensionRef>,
}

impl Target {
    /// The handle of a running extension.
    pub(crate) fn extension(extension: ExtensionRef) -> Target {
        Target {
            name: extension.name().to_owned(),
            kind: "extension",
            caller: extension.caller(),
            extension: Some(extension),
        }
    }

    /// The handle of an extension served by another host (no supervision of it here).
    pub(crate) fn remote(name: &str, caller: Caller) -> Target {
        Target {
            name: name.to_owned(),
            kind: "remote extension",
            caller,
            extension: None,
        }
    }

    /// The handle of a singleton.
    pub(crate) fn singleton(name: &str, caller: Caller) -> Target {
        Target {
            name: name.to_owned(),
            kind: "singleton",
            caller,
            extension: None,
        }
    }
}

/// A [`Call`] of `method` with arguments converted from Python (a value that cannot cross
/// raises here, naming where it sits).
fn make_call(
    method: String,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Call> {
    let root = Path::Root("args");
    let args = args
        .iter()
        .enumerate()
        .map(|(i, item)| from_python(&item, &root.index(i), 0))
        .collect::<Result<Vec<_>, _>>()?;
    let mut call = Call::new(method, args);
    if let Some(kwargs) = kwargs {
        call.kwargs = dict_from_python(kwargs, &Path::Root("kwargs"), 0)?;
    } else {
        call.kwargs = Map::new();
    }
    Ok(call)
}

/// The longest deadline a call may be given: a year.
const MAX_TIMEOUT_S: f64 = 365.0 * 24.0 * 3600.0;

/// A deadline given in seconds (positive, at most [`MAX_TIMEOUT_S`]).
pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    timeout
        .map(|seconds| {
            if !(seconds > 0.0 && seconds <= MAX_TIMEOUT_S) {
                return Err(PyValueError::new_err(format!(
                    "timeout={seconds}: a number of seconds above 0 and at most {MAX_TIMEOUT_S} (a year), or None"
                )));
            }
            Duration::try_from_secs_f64(seconds)
                .map_err(|e| PyValueError::new_err(format!("timeout={seconds}: {e}")))
        })
        .transpose()
}

/// `call` through `caller` with deadline `timeout` (`None`: the target's default).
async fn send(caller: Caller, call: Call, timeout: Option<Duration>) -> CallResult {
    match timeout {
        Some(timeout) => caller.call_timeout(call, timeout).await,
        None => caller.call(call).await,
    }
}

/// An awaited call (or output): [`cancel`](Pending::cancel) (or dropping it) abandons it.
#[pyclass(frozen, module = "troupe._host", name = "Pending")]
pub(crate) struct Pending {
    cancel: Mutex<Option<oneshot::Sender<()>>>,
}

impl Pending {
    /// A handle, and what resolves when it is cancelled or dropped.
    pub(crate) fn new() -> (Pending, oneshot::Receiver<()>) {
        let (cancel, cancelled) = oneshot::channel();
        (
            Pending {
                cancel: Mutex::new(Some(cancel)),
            },
            cancelled,
        )
    }
}

#[pymethods]
impl Pending {
    /// Abandons the call: the target is told (an extension cancels it in its child).
    fn cancel(&self) {
        self.cancel
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }
}

#[pymethods]
impl Target {
    /// The target's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// `extension` or `singleton`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// Calls `method` and blocks (without the GIL) for its answer; `timeout` in seconds
    /// (`None`: the target's default). Ctrl-C abandons the call.
    #[pyo3(signature = (method, args, kwargs=None, timeout=None))]
    fn call(
        &self,
        py: Python<'_>,
        method: String,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
        timeout: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let call = make_call(method, args, kwargs)?;
        let timeout = deadline(timeout)?;
        let caller = self.caller.clone();
        let result = runtime()?.run(py, move || send(caller, call, timeout))?;
        match result {
            Ok(value) => Ok(to_python(py, &value, &Path::Root("result"))?.unbind()),
            Err(error) => Err(call_error(py, &error)),
        }
    }

    /// Starts a call whose answer settles `future` (an asyncio future of the loop `queue`
    /// serves); returns its [`Pending`] handle.
    #[pyo3(signature = (queue, future, method, args, kwargs=None, timeout=None))]
    fn call_async(
        &self,
        queue: &LoopQueue,
        future: Py<PyAny>,
        method: String,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
        timeout: Option<f64>,
    ) -> PyResult<Pending> {
        let call = make_call(method, args, kwargs)?;
        let timeout = deadline(timeout)?;
        let caller = self.caller.clone();
        let (pending, cancelled) = Pending::new();
        let settle = queue.settle();
        runtime()?.spawn(move || async move {
            tokio::select! {
                result = send(caller, call, timeout) => settle.complete(future, result.map(Some)),
                _ = cancelled => {}
            }
        })?;
        Ok(pending)
    }

    /// Starts a streaming call of `method` (a generator method's items, each as it is
    /// yielded); `timeout` covers the whole stream.
    #[pyo3(signature = (method, args, kwargs=None, timeout=None))]
    fn stream(
        &self,
        method: String,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
        timeout: Option<f64>,
    ) -> PyResult<CallItems> {
        let call = make_call(method, args, kwargs)?;
        let timeout = deadline(timeout)?;
        runtime()?;
        Ok(CallItems::start(&self.caller, call, timeout))
    }

    /// Starts a call made by the worker of `queue` (a served object's thread): its answer
    /// comes through the queue (`next_while(id)`, then `answer(id)`), so the worker serves
    /// calls to its object while it waits. Returns the call's id.
    #[pyo3(signature = (queue, method, args, kwargs=None, timeout=None))]
    fn start_on(
        &self,
        queue: &JobQueue,
        method: String,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
        timeout: Option<f64>,
    ) -> PyResult<u64> {
        let call = make_call(method, args, kwargs)?;
        let timeout = deadline(timeout)?;
        let id = call.id;
        let answer = queue.answer_to(id);
        let caller = self.caller.clone();
        runtime()?.spawn(move || async move { answer(send(caller, call, timeout).await) })?;
        Ok(id)
    }

    /// The methods the running extension offers; `None` for a singleton or while no
    /// instance runs.
    #[getter]
    fn methods(&self) -> Option<Vec<String>> {
        let methods = self.extension.as_ref()?.methods()?;
        Some(methods.to_vec())
    }

    /// The running child's process id (an extension's), else `None`.
    #[getter]
    fn pid(&self) -> Option<u32> {
        self.extension.as_ref()?.pid()
    }

    /// Where the extension stands: `{"state": "running" | "starting" | "restarting" |
    /// "stopped" | "gave_up", "instance": n, "restarts": n, "last_exit": str | None}`.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let Some(extension) = &self.extension else {
            return Err(PyTypeError::new_err(format!(
                "{} is a {}: it has no supervision status here",
                self.name, self.kind
            )));
        };
        status_dict(py, &extension.status())
    }

    /// The extension's supervision events from now on (see [`Events`]).
    fn events(&self) -> PyResult<Events> {
        let Some(extension) = &self.extension else {
            return Err(PyTypeError::new_err(format!(
                "{} is a {}: it has no supervision events here",
                self.name, self.kind
            )));
        };
        // Subscribed first: an end that comes after the status is read is still seen.
        let receiver = extension.subscribe();
        Ok(Events::new(receiver, extension.status().is_final()))
    }

    fn __repr__(&self) -> String {
        format!("<troupe {} {:?}>", self.kind, self.name)
    }
}

/// A supervisor status as a dict (see [`Target::status`]).
pub(crate) fn status_dict<'py>(
    py: Python<'py>,
    status: &SupervisorStatus,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    let (state, instance, restarts, last) = match status {
        SupervisorStatus::Starting { instance } => ("starting", *instance, instance - 1, None),
        SupervisorStatus::Running { instance } => ("running", *instance, instance - 1, None),
        SupervisorStatus::Restarting { attempt, last } => {
            ("restarting", 0, u64::from(*attempt), Some(last.to_string()))
        }
        SupervisorStatus::Stopped(last) => ("stopped", 0, 0, Some(last.to_string())),
        SupervisorStatus::GaveUp(give_up) => (
            "gave_up",
            0,
            u64::from(give_up.restarts),
            Some(give_up.last_exit.to_string()),
        ),
    };
    dict.set_item("state", state)?;
    dict.set_item("instance", instance)?;
    dict.set_item("restarts", restarts)?;
    dict.set_item("last_exit", last)?;
    Ok(dict)
}
