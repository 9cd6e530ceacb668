//! Results bound for asyncio: the runtime hands each finished call to one thread of its own,
//! which takes the GIL, converts the result and resolves the caller's future on its event
//! loop (`loop.call_soon_threadsafe`). Actor threads never take the GIL.

use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use troupe_pyvalue::convert::{Path, to_python};
use troupe_value::{CallError, Value};

use crate::errors::call_error;

/// A finished call and the asyncio future waiting for it.
pub(crate) struct Completion {
    /// The loop the future belongs to.
    pub(crate) event_loop: Py<PyAny>,
    /// The future to resolve.
    pub(crate) future: Py<PyAny>,
    /// What the call gave: a value, the end of a stream (`Ok(None)`), or an error.
    pub(crate) result: Result<Option<Value>, CallError>,
}

/// Hands `completion` to the completion thread (started on first use). Dropped, with its
/// future left pending, only when the thread cannot run.
pub(crate) fn complete(completion: Completion) {
    static SENDER: OnceLock<Option<Mutex<Sender<Completion>>>> = OnceLock::new();
    let sender = SENDER.get_or_init(|| {
        let (tx, rx) = channel::<Completion>();
        std::thread::Builder::new()
            .name("troupe-asyncio".into())
            .spawn(move || {
                while let Ok(completion) = rx.recv() {
                    Python::attach(|py| resolve(py, completion));
                }
            })
            .ok()
            .map(|_| Mutex::new(tx))
    });
    if let Some(sender) = sender {
        let sender = sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = sender.send(completion);
    }
}

/// `troupe._hosting._resolve(future, ok, payload)` scheduled on the future's loop. A closed
/// loop (the caller's program ended) takes nothing: the result is dropped.
fn resolve(py: Python<'_>, completion: Completion) {
    static RESOLVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let Ok(resolve_fn) = RESOLVE.get_or_try_init(py, || {
        py.import("troupe._hosting")?
            .getattr("_resolve")
            .map(Bound::unbind)
    }) else {
        return;
    };
    let (ok, payload): (bool, Py<PyAny>) = match completion.result {
        Ok(Some(value)) => match to_python(py, &value, &Path::Root("result")) {
            Ok(object) => (true, object.unbind()),
            Err(e) => (false, PyErr::from(e).into_value(py).into_any()),
        },
        Ok(None) => match end_of_stream(py) {
            Ok(end) => (true, end),
            Err(e) => (false, e.into_value(py).into_any()),
        },
        Err(error) => (false, call_error(py, &error).into_value(py).into_any()),
    };
    let _ = completion.event_loop.bind(py).call_method1(
        "call_soon_threadsafe",
        (resolve_fn.bind(py), completion.future, ok, payload),
    );
}

/// `troupe._hosting._END`: what a stream's future resolves to at its end.
fn end_of_stream(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(py.import("troupe._hosting")?.getattr("_END")?.unbind())
}
