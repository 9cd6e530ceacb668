//! Frames from the host as the Python tuples `troupe._native.recv()` returns, and call
//! errors as `(variant, fields)` pairs for the `troupe.RemoteError` hierarchy.
//!
//! | frame | tuple |
//! |---|---|
//! | `Start` | `("start", {name, module, class, sys_path, host_calls})` |
//! | `Call` | `("call", id, method, args: tuple, kwargs: dict)` |
//! | `Stream` | `("stream", id, method, args: tuple, kwargs: dict, window)` |
//! | `Credit` | `("credit", id, items)` |
//! | `Cancel` | `("cancel", id)` |
//! | `Reply`, a value | `("reply", id, True, value)` |
//! | `Reply`, an error | `("reply", id, False, (variant, fields: dict))` |
//! | `Reply`, a value Python cannot hold | `("reply", id, None, message)` |
//! | `Shutdown` | `("shutdown",)` |
//! | the host is gone | `("closed",)` |
//!
//! A call the child cannot serve (unknown method, arguments that cannot become Python
//! objects, start-up not finished) is answered here and never reaches Python.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use troupe_protocol::{CallFrame, StartInfo, ToChild, ToHost};
use troupe_value::{CallError, Value};

use crate::connection::Connection;
use crate::errors::ConnectionError;
use troupe_pyvalue::call_error::call_error;
use troupe_pyvalue::convert::{Path, to_python};

/// What became of a frame.
pub(crate) enum Surfaced<'py> {
    /// A tuple for the Python side.
    Tuple(Bound<'py, PyTuple>),
    /// The frame was a call answered here: the caller should receive again.
    Answered,
}

/// Turns `frame` into its tuple, or answers it here.
pub(crate) fn surface<'py>(
    py: Python<'py>,
    connection: &Connection,
    frame: ToChild,
) -> PyResult<Surfaced<'py>> {
    let tuple = match frame {
        ToChild::Call(call) => return call_tuple(py, connection, call, None),
        ToChild::Stream { call, window } => return call_tuple(py, connection, call, Some(window)),
        ToChild::Credit { id, items } => (intern!(py, "credit"), id, items).into_pyobject(py)?,
        ToChild::Reply { id, result } => reply_tuple(py, id, result)?,
        ToChild::Cancel { id } => (intern!(py, "cancel"), id).into_pyobject(py)?,
        ToChild::Start(info) => (intern!(py, "start"), start_dict(py, info)?).into_pyobject(py)?,
        ToChild::Shutdown => (intern!(py, "shutdown"),).into_pyobject(py)?,
        // Handled by the connection; never surfaces.
        ToChild::ReleaseSlots { .. } => return Ok(Surfaced::Answered),
    };
    Ok(Surfaced::Tuple(tuple))
}

/// The tuple saying the host is gone.
pub(crate) fn closed(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
    (intern!(py, "closed"),).into_pyobject(py)
}

/// A call's tuple; `window`: a streaming call's.
fn call_tuple<'py>(
    py: Python<'py>,
    connection: &Connection,
    call: CallFrame,
    window: Option<u32>,
) -> PyResult<Surfaced<'py>> {
    let refusal = match connection.has_method(&call.method) {
        None => Some(CallError::ActorStopped),
        Some(false) => Some(CallError::UnknownMethod {
            method: call.method.clone(),
        }),
        Some(true) => None,
    };
    let converted = match refusal {
        Some(error) => Err(error),
        None => call_arguments(py, &call),
    };
    match converted {
        Ok((args, kwargs)) => {
            let tuple = match window {
                None => {
                    (intern!(py, "call"), call.id, call.method, args, kwargs).into_pyobject(py)?
                }
                Some(window) => {
                    let stream = intern!(py, "stream");
                    (stream, call.id, call.method, args, kwargs, window).into_pyobject(py)?
                }
            };
            Ok(Surfaced::Tuple(tuple))
        }
        Err(error) => {
            let id = call.id;
            py.detach(|| answer(connection, id, error))?;
            Ok(Surfaced::Answered)
        }
    }
}

/// Answers the host's call `id` with `error`.
pub(crate) fn answer(
    connection: &Connection,
    id: u64,
    error: CallError,
) -> Result<(), ConnectionError> {
    connection.send(ToHost::Reply {
        id,
        result: Err(error),
    })
}

/// A call's arguments as Python objects, or the error to answer it with.
pub(crate) fn call_arguments<'py>(
    py: Python<'py>,
    call: &CallFrame,
) -> Result<(Bound<'py, PyTuple>, Bound<'py, PyDict>), CallError> {
    let bad = |e: troupe_pyvalue::errors::ConvertError| {
        CallError::bad_argument(e.path, e.kind.to_string())
    };
    let python = |e: PyErr| CallError::bad_argument("args", e.to_string());
    let root = Path::Root("args");
    let args = call
        .args
        .iter()
        .enumerate()
        .map(|(i, v)| to_python(py, v, &root.index(i)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let args = PyTuple::new(py, args).map_err(python)?;
    let root = Path::Root("kwargs");
    let kwargs = PyDict::new(py);
    for (key, value) in &call.kwargs {
        let value = to_python(py, value, &root.key(key)).map_err(bad)?;
        kwargs.set_item(key, value).map_err(python)?;
    }
    Ok((args, kwargs))
}

fn reply_tuple(
    py: Python<'_>,
    id: u64,
    result: Result<Value, CallError>,
) -> PyResult<Bound<'_, PyTuple>> {
    let reply = intern!(py, "reply");
    match result {
        Ok(value) => match to_python(py, &value, &Path::Root("result")) {
            Ok(obj) => (reply, id, true, obj).into_pyobject(py),
            Err(e) => (reply, id, py.None(), e.to_string()).into_pyobject(py),
        },
        Err(error) => (reply, id, false, call_error(py, &error)?).into_pyobject(py),
    }
}

fn start_dict(py: Python<'_>, info: StartInfo) -> PyResult<Bound<'_, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("name", info.name)?;
    dict.set_item("module", info.module)?;
    dict.set_item("class", info.class)?;
    dict.set_item("sys_path", info.sys_path)?;
    dict.set_item("host_calls", info.host_calls)?;
    Ok(dict)
}
