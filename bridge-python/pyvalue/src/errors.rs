//! Why a value could not cross between Python and troupe's wire model, and how that
//! reaches Python.

use pyo3::PyErr;
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use thiserror::Error;
use troupe_shm::pool::PoolError;
use troupe_value::MediaError;

/// Why a value could not cross between Python and the wire model; `path` says where it sits
/// (`args[1]['x'][0]`).
#[derive(Debug, Error)]
#[error("{path}: {kind}")]
pub struct ConvertError {
    /// Where the value sits.
    pub path: String,
    /// What is wrong with it.
    pub kind: ConvertErrorKind,
}

/// What is wrong with a value that cannot be converted.
#[derive(Debug, Error)]
pub enum ConvertErrorKind {
    /// A Python type troupe has no wire form for.
    #[error("unsupported type {0}")]
    Unsupported(String),
    /// A Python int outside the 64-bit signed range.
    #[error("int {0} does not fit in 64 bits")]
    IntTooLarge(String),
    /// Nesting deeper than the wire model allows.
    #[error("nested deeper than {0} levels")]
    TooDeep(usize),
    /// A dict key that is not a str.
    #[error("dict keys must be str, got {0}")]
    DictKey(String),
    /// A numpy array of a dtype troupe has no wire form for.
    #[error("unsupported numpy dtype {0}")]
    Dtype(String),
    /// An audio or video value that does not hold together.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// A large buffer could not be put into shared memory.
    #[error(transparent)]
    SharedMemory(#[from] PoolError),
    /// A foreign array's DLPack export failed or is unusable (a torch tensor that requires
    /// grad needs `.detach()` first).
    #[error("cannot take a {type_name} through DLPack: {reason}")]
    Dlpack {
        /// The object's type.
        type_name: String,
        /// What went wrong.
        reason: String,
    },
    /// A `__cuda_array_interface__` troupe cannot use.
    #[cfg(feature = "cuda")]
    #[error("cannot take a {type_name} through __cuda_array_interface__: {reason}")]
    CudaInterface {
        /// The object's type.
        type_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A device array cannot be used in this process (no CUDA driver, a failed import, a
    /// build without CUDA).
    #[error(transparent)]
    Device(#[from] troupe_value::device::DeviceError),
    /// The CUDA driver refused (the pointer of a CUDA tensor, waiting for its device).
    #[cfg(feature = "cuda")]
    #[error(transparent)]
    Cuda(#[from] troupe_cuda::CudaError),
    /// Python raised while the value was read or built.
    #[error("{0}")]
    Python(PyErr),
}

impl ConvertError {
    /// An error at `path`.
    pub fn new(path: impl std::fmt::Display, kind: ConvertErrorKind) -> ConvertError {
        ConvertError {
            path: path.to_string(),
            kind,
        }
    }
}

impl From<ConvertError> for PyErr {
    fn from(e: ConvertError) -> PyErr {
        let message = e.to_string();
        match e.kind {
            ConvertErrorKind::IntTooLarge(_) => PyOverflowError::new_err(message),
            ConvertErrorKind::TooDeep(_)
            | ConvertErrorKind::Media(_)
            | ConvertErrorKind::SharedMemory(_)
            | ConvertErrorKind::Dlpack { .. }
            | ConvertErrorKind::Device(_) => PyValueError::new_err(message),
            #[cfg(feature = "cuda")]
            ConvertErrorKind::CudaInterface { .. } | ConvertErrorKind::Cuda(_) => {
                PyValueError::new_err(message)
            }
            ConvertErrorKind::Python(err) => with_path(err, &e.path),
            _ => PyTypeError::new_err(message),
        }
    }
}

/// The same exception type with the path in front of the message, the original as its cause;
/// the original itself when its type cannot be built from a message.
fn with_path(err: PyErr, path: &str) -> PyErr {
    use pyo3::types::PyAnyMethods;
    pyo3::Python::attach(|py| {
        let message = format!("{path}: {}", err.value(py));
        match err.get_type(py).as_any().call1((message,)) {
            Ok(new) => {
                let new = PyErr::from_value(new);
                new.set_cause(py, Some(err));
                new
            }
            Err(_) => err,
        }
    })
}
