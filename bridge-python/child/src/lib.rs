//! `troupe._native`: the child side of troupe's Python bridge, a PyO3 extension module built
//! for the stable ABI of Python 3.11+ (one `.abi3.so` serves every venv).
//!
//! It owns the connection to the host (inherited at spawn) and the conversion of values between Python and
//! troupe's wire model; the `troupe` Python package drives it (dispatch, threads, asyncio).
//! Every blocking step (receiving, sending, large copies) runs without the GIL, and any
//! thread may send. The functions, as Python sees them:
//!
//! ```text
//! connect()                                   take over the inherited connection, Hello
//! recv(timeout=None) -> tuple | None          next frame (see `frames`); None on timeout
//! turn_take(done) -> bool / turn_give()        the receive turn (see `serve`)
//! serve(runtime, plain_methods)               the main loop (see `serve`)
//! stop_serving()                               the host asked to shut down
//! started(methods) / start_failed(type_name, message, traceback)
//! reply(id, value) / reply_error(id, type_name, message, traceback) / reply_cancelled(id)
//! send_item(id, value)                        one item of the host's streaming call `id`
//! call(target_kind, target_name, method, args, kwargs) -> id ; cancel(id)
//! shutdown_done()
//! pool_alloc(nbytes, zero=False) -> BufferView  a writable slot of the child's pool
//! pool_stats() -> dict                          live slots, regions, lent to / owed the host
//! slot_of(obj) -> (region, offset, local) | None  the pool slot an array views
//! cuda_stats() -> dict                          CUDA arrays exported to the host, driver
//! CudaArray                                     a CUDA array from the host (`troupe.CudaArray`)
//! HostArray                                     a CPU array from the host, without numpy
//! ```
//!
//! Built without the `cuda` feature there is no `CudaArray`, `cuda_stats` says no export and
//! no driver, and the connection carries no device arrays: one from the host, or a CUDA
//! tensor sent to it, fails its call with a typed error.
//!
//! Bad input from the host never panics the child: a frame that does not decode is skipped
//! with a line on stderr, a call whose arguments cannot become Python objects is answered
//! with `CallError::BadArguments`.

#![warn(missing_docs, unreachable_pub)]

mod connection;
mod errors;
mod frames;
mod serve;

use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use troupe_protocol::{CallFrame, PROTOCOL_VERSION, Target, ToHost};
use troupe_value::{CallError, Map, RemoteException};

use connection::{Connection, Incoming, connection};
use errors::ConnectionError;
use frames::Surfaced;
use troupe_pyvalue::convert::{self, Path, from_python};

/// Takes over the connection the host passed at spawn (`TROUPE_FDS`) and says hello.
#[pyfunction]
fn connect(py: Python<'_>) -> PyResult<()> {
    let version: String = py.import("sys")?.getattr("version")?.extract()?;
    py.detach(|| Connection::connect(version))?;
    Ok(())
}

/// The next frame from the host as a tuple; `None` when `timeout` seconds passed first.
#[pyfunction]
#[pyo3(signature = (timeout=None))]
fn recv(py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Bound<'_, PyTuple>>> {
    let connection = connection()?;
    let timeout = timeout
        .map(|t| Duration::try_from_secs_f64(t.max(0.0)))
        .transpose()
        .map_err(|e| PyValueError::new_err(format!("timeout: {e}")))?;
    loop {
        match py.detach(|| connection.next_frame(timeout)) {
            Incoming::Frame(frame) => match frames::surface(py, connection, frame)? {
                Surfaced::Tuple(tuple) => return Ok(Some(tuple)),
                Surfaced::Answered => {}
            },
            Incoming::Closed => return frames::closed(py).map(Some),
            Incoming::TimedOut => return Ok(None),
        }
    }
}

fn send(py: Python<'_>, frame: ToHost) -> PyResult<()> {
    let connection = connection()?;
    py.detach(|| connection.send(frame))?;
    Ok(())
}

/// The extension is ready; `methods` are the names the host may call.
#[pyfunction]
fn started(py: Python<'_>, methods: Vec<String>) -> PyResult<()> {
    connection()?.set_methods(methods.iter().cloned());
    send(py, ToHost::Started { methods })
}

/// Loading or a start-up hook failed; the child exits after this.
#[pyfunction]
fn start_failed(
    py: Python<'_>,
    type_name: String,
    message: String,
    traceback: String,
) -> PyResult<()> {
    send(
        py,
        ToHost::StartFailed(RemoteException {
            type_name,
            message,
            traceback,
        }),
    )
}

/// Answers the host's call `id` with `value`; raises (and sends nothing) when `value` cannot
/// be converted.
#[pyfunction]
fn reply(py: Python<'_>, id: u64, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let value = from_python(value, &Path::Root("result"), 0)?;
    send(
        py,
        ToHost::Reply {
            id,
            result: Ok(value),
        },
    )
}

/// Sends one item of the host's streaming call `id` (the runtime holds credit for it);
/// raises (and sends nothing) when `value` cannot be converted.
#[pyfunction]
fn send_item(py: Python<'_>, id: u64, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let value = from_python(value, &Path::Root("item"), 0)?;
    send(py, ToHost::Yield { id, value })
}

/// Answers the host's call `id` with the exception a method raised.
#[pyfunction]
fn reply_error(
    py: Python<'_>,
    id: u64,
    type_name: String,
    message: String,
    traceback: String,
) -> PyResult<()> {
    let error = CallError::Remote(RemoteException {
        type_name,
        message,
        traceback,
    });
    send(
        py,
        ToHost::Reply {
            id,
            result: Err(error),
        },
    )
}

/// Answers the host's call `id`: it was cancelled.
#[pyfunction]
fn reply_cancelled(py: Python<'_>, id: u64) -> PyResult<()> {
    send(
        py,
        ToHost::Reply {
            id,
            result: Err(CallError::Cancelled),
        },
    )
}

/// Calls `method` of a target (`"host"`, `"singleton"`, `"extension"`) and returns the call
/// id its reply will carry. Raises, sending nothing, when an argument cannot be converted.
#[pyfunction]
#[pyo3(signature = (target_kind, target_name, method, args, kwargs=None))]
fn call(
    py: Python<'_>,
    target_kind: &str,
    target_name: Option<String>,
    method: String,
    args: &Bound<'_, PyAny>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<u64> {
    let connection = connection()?;
    let target = match (target_kind, target_name) {
        ("host", _) => Target::Host,
        ("singleton", Some(name)) => Target::Singleton(name),
        ("extension", Some(name)) => Target::Extension(name),
        (kind, name) => {
            return Err(PyValueError::new_err(format!(
                "unknown call target {kind:?} (name {name:?}): host, singleton or extension"
            )));
        }
    };
    let root = Path::Root("args");
    let items = if let Ok(tuple) = args.cast::<PyTuple>() {
        tuple.iter().collect::<Vec<_>>()
    } else if let Ok(list) = args.cast::<PyList>() {
        list.iter().collect()
    } else {
        return Err(PyTypeError::new_err("args must be a tuple or a list"));
    };
    let args = items
        .iter()
        .enumerate()
        .map(|(i, item)| from_python(item, &root.index(i), 0))
        .collect::<Result<Vec<_>, _>>()?;
    let kwargs = match kwargs {
        Some(dict) => convert::dict_from_python(dict, &Path::Root("kwargs"), 0)?,
        None => Map::new(),
    };
    let id = connection.next_call_id();
    let call = CallFrame {
        id,
        method,
        args,
        kwargs,
    };
    send(py, ToHost::Call { target, call })?;
    Ok(id)
}

/// Gives up waiting for this child's call `id`.
#[pyfunction]
fn cancel(py: Python<'_>, id: u64) -> PyResult<()> {
    send(py, ToHost::Cancel { id })
}

/// `prepare_shutdown` ran; the child exits next.
#[pyfunction]
fn shutdown_done(py: Python<'_>) -> PyResult<()> {
    send(py, ToHost::ShutdownDone)
}

/// The child's pool: `live_slots`, `live_bytes`, `regions`, `region_bytes`, and on the
/// connection `lent` (slots of this pool the host holds), `owed` (releases of the host's
/// slots not yet sent) and `queued_frames` / `queued_bytes` (what waits for the host to
/// make room).
#[pyfunction]
fn pool_stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let dict = troupe_pyvalue::pool::pool_counters(py)?;
    if let Ok(connection) = connection() {
        dict.set_item("lent", connection.lent())?;
        dict.set_item("owed", connection.owed())?;
        let (frames, bytes) = connection.queued();
        dict.set_item("queued_frames", frames)?;
        dict.set_item("queued_bytes", bytes)?;
    }
    Ok(dict)
}

/// This child's CUDA exports: `exported` (arrays sent to the host and not yet released by
/// it), `driver` (whether a CUDA driver is here that this build can use) and
/// `teardown_errors` (driver calls that failed while freeing or releasing CUDA memory, only
/// logged where they happen: `troupe_cuda::teardown_errors`).
#[pyfunction]
fn cuda_stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    #[cfg(feature = "cuda")]
    let (exported, driver, teardown_errors) = {
        use troupe_value::device::DevicePlane;
        (
            troupe_pyvalue::cuda::plane().exported(),
            troupe_cuda::driver_available(),
            troupe_cuda::teardown_errors(),
        )
    };
    #[cfg(not(feature = "cuda"))]
    let (exported, driver, teardown_errors) = (0, false, 0);
    let dict = PyDict::new(py);
    dict.set_item("exported", exported)?;
    dict.set_item("driver", driver)?;
    dict.set_item("teardown_errors", teardown_errors)?;
    Ok(dict)
}

/// The `troupe._native` module.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(connect, m)?)?;
    m.add_function(wrap_pyfunction!(recv, m)?)?;
    m.add_function(wrap_pyfunction!(started, m)?)?;
    m.add_function(wrap_pyfunction!(start_failed, m)?)?;
    m.add_function(wrap_pyfunction!(reply, m)?)?;
    m.add_function(wrap_pyfunction!(reply_error, m)?)?;
    m.add_function(wrap_pyfunction!(reply_cancelled, m)?)?;
    m.add_function(wrap_pyfunction!(send_item, m)?)?;
    m.add_function(wrap_pyfunction!(call, m)?)?;
    m.add_function(wrap_pyfunction!(cancel, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown_done, m)?)?;
    m.add_function(wrap_pyfunction!(pool_stats, m)?)?;
    m.add_function(wrap_pyfunction!(cuda_stats, m)?)?;
    m.add_function(wrap_pyfunction!(serve::serve, m)?)?;
    m.add_function(wrap_pyfunction!(serve::turn_take, m)?)?;
    m.add_function(wrap_pyfunction!(serve::turn_give, m)?)?;
    m.add_function(wrap_pyfunction!(serve::stop_serving, m)?)?;
    troupe_pyvalue::register(m)?;
    m.add("PROTOCOL_VERSION", PROTOCOL_VERSION)?;
    Ok(())
}

impl From<ConnectionError> for CallError {
    fn from(_: ConnectionError) -> CallError {
        CallError::ActorStopped
    }
}
