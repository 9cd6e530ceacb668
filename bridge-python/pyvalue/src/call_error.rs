//! A call's error as the `troupe.CallError` hierarchy takes it: `(variant, fields)` for
//! `troupe.errors.from_wire`, in the child (errors of its calls out) and in a Python host
//! (errors of its calls in) alike.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use troupe_value::{CallError, ExitCause};

/// `(variant, fields)` for `troupe.errors.from_wire`.
pub fn call_error<'py>(
    py: Python<'py>,
    error: &CallError,
) -> PyResult<(&'static str, Bound<'py, PyDict>)> {
    let fields = PyDict::new(py);
    let variant = match error {
        CallError::UnknownMethod { method } => {
            fields.set_item("method", method)?;
            "UnknownMethod"
        }
        CallError::BadArguments { path, reason } => {
            fields.set_item("path", path)?;
            fields.set_item("reason", reason)?;
            "BadArguments"
        }
        CallError::Remote(e) => {
            fields.set_item("type_name", &e.type_name)?;
            fields.set_item("message", &e.message)?;
            fields.set_item("traceback", &e.traceback)?;
            "Remote"
        }
        CallError::Timeout(after) => {
            fields.set_item("seconds", after.as_secs_f64())?;
            "Timeout"
        }
        CallError::Cancelled => "Cancelled",
        CallError::ActorStopped => "ActorStopped",
        CallError::MailboxFull => "MailboxFull",
        CallError::Crashed(info) => {
            let (cause, exit_code, signal) = match &info.cause {
                ExitCause::Exited(code) => ("Exited", Some(*code), None),
                ExitCause::Signaled(signal) => ("Signaled", None, Some(*signal)),
                ExitCause::MemoryLimit { .. } => ("MemoryLimit", None, None),
                ExitCause::StartFailed(_) => ("StartFailed", None, None),
                ExitCause::StartTimeout(_) => ("StartTimeout", None, None),
                ExitCause::CancelIgnored(_) => ("CancelIgnored", None, None),
                ExitCause::ConnectTimeout(_) => ("ConnectTimeout", None, None),
                ExitCause::Handshake(_) => ("Handshake", None, None),
                ExitCause::Protocol(_) => ("Protocol", None, None),
                ExitCause::Spawn(_) => ("Spawn", None, None),
                ExitCause::Sandbox(_) => ("Sandbox", None, None),
                ExitCause::Unknown => ("Unknown", None, None),
            };
            fields.set_item("cause", cause)?;
            fields.set_item("exit_code", exit_code)?;
            fields.set_item("signal", signal)?;
            fields.set_item("reason", info.cause.to_string())?;
            fields.set_item("stderr_tail", &info.stderr_tail)?;
            fields.set_item("gave_up_after", info.gave_up_after)?;
            "Crashed"
        }
        CallError::PermissionDenied { caller, target } => {
            fields.set_item("caller", caller)?;
            fields.set_item("target", target)?;
            "PermissionDenied"
        }
        CallError::NotFound { target } => {
            fields.set_item("target", target)?;
            "NotFound"
        }
        CallError::HostLost { host } => {
            fields.set_item("host", host)?;
            "HostLost"
        }
    };
    Ok((variant, fields))
}
