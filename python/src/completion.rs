//! Results bound for asyncio, delivered on the event loop's own thread.
//!
//! Each event loop that awaits troupe calls has a [`LoopQueue`]: finished calls are pushed
//! there by the runtime (no GIL) and an eventfd is signalled once per batch; the loop
//! watches the eventfd (`loop.add_reader`) and, on its own thread, holding the GIL it
//! already has, drains the queue: converts each result and settles its future through
//! `troupe._hosting._resolve`. No thread but the loop's ever takes the GIL for a result,
//! and a busy loop takes a whole batch per wake-up.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use rustix::event::{EventfdFlags, eventfd};
use troupe_pyvalue::convert::{Path, to_python};
use troupe_value::{CallError, Value};

use crate::errors::{HostError, call_error};

/// A finished call and the asyncio future waiting for it.
struct Completion {
    future: Py<PyAny>,
    result: Result<Option<Value>, CallError>,
}

struct Shared {
    done: Mutex<Vec<Completion>>,
    bell: OwnedFd,
}

/// The finished calls of one event loop (see the module).
#[pyclass(frozen, module = "troupe._host", name = "LoopQueue")]
pub(crate) struct LoopQueue {
    shared: Arc<Shared>,
}

/// Where a call settles its future: cheap to clone, usable from any thread.
#[derive(Clone)]
pub(crate) struct Settle {
    shared: Arc<Shared>,
}

impl Settle {
    /// Queues `result` (a value, the end of a stream as `Ok(None)`, or an error) for
    /// `future` and rings the loop's bell if the queue was empty.
    pub(crate) fn complete(&self, future: Py<PyAny>, result: Result<Option<Value>, CallError>) {
        let was_empty = {
            let mut done = self
                .shared
                .done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            done.push(Completion { future, result });
            done.len() == 1
        };
        if was_empty {
            let _ = rustix::io::write(&self.shared.bell, &1u64.to_ne_bytes());
        }
    }
}

impl LoopQueue {
    /// Where calls settle this loop's futures.
    pub(crate) fn settle(&self) -> Settle {
        Settle {
            shared: self.shared.clone(),
        }
    }
}

#[pymethods]
impl LoopQueue {
    /// A new queue (and its eventfd).
    #[new]
    fn new() -> PyResult<LoopQueue> {
        let bell = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(|e| HostError::Runtime(format!("eventfd: {e}")))?;
        Ok(LoopQueue {
            shared: Arc::new(Shared {
                done: Mutex::new(Vec::new()),
                bell,
            }),
        })
    }

    /// The eventfd the loop watches.
    fn fileno(&self) -> i32 {
        self.shared.bell.as_raw_fd()
    }

    /// Settles every finished call's future (on the loop's thread).
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&self.shared.bell, &mut count);
        let done = std::mem::take(
            &mut *self
                .shared
                .done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if done.is_empty() {
            return Ok(());
        }
        let resolve = resolver(py)?;
        // Every future is settled; the first failure to settle one is raised after.
        let mut first_error = None;
        for completion in done {
            let payload = match completion.result {
                Ok(Some(value)) => match to_python(py, &value, &Path::Root("result")) {
                    Ok(object) => Ok((true, object.unbind())),
                    Err(e) => Ok((false, PyErr::from(e).into_value(py).into_any())),
                },
                Ok(None) => end_of_stream(py).map(|end| (true, end)),
                Err(error) => Ok((false, call_error(py, &error).into_value(py).into_any())),
            };
            let settled = payload.and_then(|(ok, payload)| {
                resolve.call1((completion.future, ok, payload)).map(drop)
            });
            if let Err(e) = settled {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// `troupe._hosting._resolve`.
fn resolver(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static RESOLVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    Ok(RESOLVE
        .get_or_try_init(py, || {
            py.import("troupe._hosting")?
                .getattr("_resolve")
                .map(Bound::unbind)
        })?
        .bind(py))
}

/// `troupe._hosting._END`: what a stream's future resolves to at its end.
fn end_of_stream(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(py.import("troupe._hosting")?.getattr("_END")?.unbind())
}
