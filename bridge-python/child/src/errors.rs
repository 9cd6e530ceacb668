//! What can go wrong in the native module, and how each failure reaches Python.

use std::io;

use pyo3::PyErr;
use pyo3::exceptions::{PyConnectionError, PyRuntimeError, PyValueError};
use thiserror::Error;
use troupe_protocol::transport::SendError;
use troupe_protocol::{FDS_ENV, FrameError};

/// Why the connection to the host could not be made or used.
#[derive(Debug, Error)]
pub(crate) enum ConnectionError {
    /// `connect()` was not called yet (or failed).
    #[error("troupe._native is not connected to a host")]
    NotConnected,
    /// `connect()` was called a second time.
    #[error("troupe._native is already connected to a host")]
    AlreadyConnected,
    /// The process was not started by a troupe host.
    #[error(
        "{FDS_ENV} is not set (or not three descriptors): this process was not started by a troupe host"
    )]
    NoConnection,
    /// The inherited connection could not be taken over.
    #[error("cannot take over the connection to the troupe host: {0}")]
    Bootstrap(#[source] io::Error),
    /// Sending a frame failed: the host is gone.
    #[error("the troupe host is gone: {0}")]
    Send(#[from] SendError),
    /// A frame could not be sealed (encoding or shared memory).
    #[error("cannot send a frame to the host: {0}")]
    Frame(#[from] FrameError),
}

impl From<ConnectionError> for PyErr {
    fn from(e: ConnectionError) -> PyErr {
        match e {
            ConnectionError::NotConnected | ConnectionError::AlreadyConnected => {
                PyRuntimeError::new_err(e.to_string())
            }
            ConnectionError::NoConnection
            | ConnectionError::Bootstrap(_)
            | ConnectionError::Send(_) => PyConnectionError::new_err(e.to_string()),
            ConnectionError::Frame(_) => PyValueError::new_err(e.to_string()),
        }
    }
}
