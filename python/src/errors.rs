//! What can go wrong in a Python host, and the Python exception each becomes.
//!
//! Call errors become the `troupe.CallError` hierarchy through `troupe.errors.from_wire`,
//! the same classes an extension's own calls raise; the others are `troupe.ManifestError`,
//! `troupe.StartError`, `troupe.PipelineError` or a built-in exception.

use pyo3::exceptions::{PyKeyError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyList;
use thiserror::Error;
use troupe_host::extension_host::{AddError, NotStarted};
use troupe_host::singleton::SingletonError;
use troupe_manifest::ManifestError;
use troupe_pipeline::PipelineError;
use troupe_value::CallError;

/// Why a host operation failed.
#[derive(Debug, Error)]
pub(crate) enum HostError {
    /// The runtime's thread could not be started.
    #[error("troupe's runtime could not start: {0}")]
    Runtime(String),
    /// The runtime has stopped (the interpreter is exiting).
    #[error("troupe's runtime has stopped")]
    Stopped,
    /// This process was forked from one whose runtime had started: the child has none
    /// (threads do not survive `fork()`) and cannot start another over the parent's state.
    #[error(
        "troupe's runtime does not survive fork(): this process was forked after troupe started in its parent. Use troupe in the parent, or start child processes with multiprocessing's 'spawn' or 'forkserver' method"
    )]
    Forked,
    /// The manifest (a file, or what was added from Python) is not valid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// What was added from Python cannot be written as a manifest.
    #[error("{0}")]
    Options(String),
    /// An extension, singleton or pipeline of that name was already added.
    #[error("{kind} {name:?} is defined twice")]
    Duplicate {
        /// `extension`, `singleton` or `pipeline`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The host was started already: nothing more can be added.
    #[error("the host has started: add extensions and singletons before start()")]
    Started,
    /// A `start()` is under way (on another thread).
    #[error("the host is starting: add to it after start() returns")]
    Starting,
    /// An extension of the manifest file cannot be added again from Python.
    #[error(
        "extension {name:?} is declared in {}: it cannot be added from Python as well (stopped, it stays stopped; change the file to change it)", file.display()
    )]
    InFile {
        /// The extension.
        name: String,
        /// The manifest file.
        file: std::path::PathBuf,
    },
    /// The host is not running (not started yet, or shut down).
    #[error("the host is not running: call start() first (or use it as a context manager)")]
    NotRunning,
    /// A singleton of kind `python` in the manifest has no object serving it.
    #[error(
        "singleton {0:?} is served by the host program (kind = \"python\"): give it an object: troupe.Host(singletons={{{0:?}: obj}}) or host.add_singleton({0:?}, obj)"
    )]
    Unserved(String),
    /// A singleton could not be started.
    #[error(transparent)]
    Singleton(#[from] SingletonError),
    /// Extensions did not come up.
    #[error("{}", not_started_text(.0))]
    NotStarted(Vec<NotStarted>),
    /// No extension (or singleton) of that name runs here.
    #[error("no {kind} named {name:?} here (known: {known})")]
    Unknown {
        /// `extension` or `singleton`.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },
    /// A pipeline could not be built or run.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A remote host could not be reached at start (nothing listening, refused
    /// credentials, an extension it does not serve...).
    #[error(transparent)]
    Remote(#[from] troupe_cluster::ClusterError),
}

impl From<AddError> for HostError {
    fn from(e: AddError) -> HostError {
        match e {
            AddError::Duplicate(name) => HostError::Duplicate {
                kind: "extension",
                name,
            },
            AddError::Prepare { extension, source } => HostError::NotStarted(vec![NotStarted {
                extension,
                reason: source.to_string(),
                traceback: String::new(),
            }]),
            AddError::NotStarted(not_started) => HostError::NotStarted(vec![not_started]),
            AddError::ShutDown => HostError::NotRunning,
        }
    }
}

fn not_started_text(failures: &[NotStarted]) -> String {
    let names: Vec<String> = failures.iter().map(ToString::to_string).collect();
    format!("not started: {}", names.join("; "))
}

/// A class of `troupe.errors`.
fn troupe_error<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    ERRORS
        .get_or_try_init(py, || py.import("troupe.errors").map(Bound::unbind))?
        .bind(py)
        .getattr(name)
}

/// The exception `class(args)` of `troupe.errors`; a `RuntimeError` saying so if it cannot be
/// made.
fn raise<'py>(py: Python<'py>, class: &str, args: impl pyo3::call::PyCallArgs<'py>) -> PyErr {
    match troupe_error(py, class).and_then(|c| c.call1(args)) {
        Ok(exception) => PyErr::from_value(exception),
        Err(e) => e,
    }
}

impl From<HostError> for PyErr {
    fn from(e: HostError) -> PyErr {
        Python::attach(|py| match e {
            HostError::Manifest(error) => raise(py, "ManifestError", (error.to_string(),)),
            HostError::Options(_)
            | HostError::Duplicate { .. }
            | HostError::InFile { .. }
            | HostError::Unserved(_) => raise(py, "ManifestError", (e.to_string(),)),
            HostError::Singleton(_) | HostError::Remote(_) => {
                raise(py, "StartError", (e.to_string(), Vec::<()>::new()))
            }
            HostError::NotStarted(ref failures) => {
                let list = failures
                    .iter()
                    .map(|f| {
                        (
                            f.extension.as_str(),
                            f.reason.as_str(),
                            f.traceback.as_str(),
                        )
                    })
                    .collect::<Vec<_>>();
                match PyList::new(py, list) {
                    Ok(list) => raise(py, "StartError", (e.to_string(), list)),
                    Err(err) => err,
                }
            }
            HostError::Pipeline(_) => raise(py, "PipelineError", (e.to_string(),)),
            HostError::Unknown { .. } => PyKeyError::new_err(e.to_string()),
            HostError::Runtime(_)
            | HostError::Stopped
            | HostError::Forked
            | HostError::Started
            | HostError::Starting
            | HostError::NotRunning => PyRuntimeError::new_err(e.to_string()),
        })
    }
}

/// The `troupe.CallError` subclass for `error`, as an exception to raise.
pub(crate) fn call_error(py: Python<'_>, error: &CallError) -> PyErr {
    let made = troupe_pyvalue::call_error::call_error(py, error)
        .and_then(|(variant, fields)| troupe_error(py, "from_wire")?.call1((variant, fields)));
    match made {
        Ok(exception) => PyErr::from_value(exception),
        Err(e) => e,
    }
}
