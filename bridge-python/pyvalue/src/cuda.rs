//! CUDA arrays in the child: the connection's plane, and `troupe.CudaArray`, the Python
//! object a CUDA array from the host becomes.

use std::sync::{Arc, OnceLock};

use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use troupe_cuda::{CudaPlane, DeviceMemory, PeerId};
use troupe_value::DeviceArray;
use troupe_value::device::{DeviceError, DevicePlane};

use crate::dlpack::{KDL_CUDA, export_capsule};

/// The CUDA plane of this child's one connection (the host is its only peer).
pub fn plane() -> Arc<CudaPlane> {
    static PLANE: OnceLock<Arc<CudaPlane>> = OnceLock::new();
    PLANE
        .get_or_init(|| Arc::new(CudaPlane::new(PeerId(0))))
        .clone()
}

/// The plane, as the connection's ledger takes it.
pub fn devices() -> Arc<dyn DevicePlane> {
    plane()
}

/// A CUDA array the host sent, mapped into this process: `__cuda_array_interface__` (v3)
/// and DLPack (`__dlpack__`, `__dlpack_device__`) let torch, cupy or numba use it in place.
/// The mapping lives as long as this object and every tensor made from it; then its release
/// goes back to the host.
#[pyclass(frozen, module = "troupe", name = "CudaArray")]
pub struct CudaArray {
    array: DeviceArray,
    ptr: u64,
}

impl CudaArray {
    /// The Python object of a CUDA array of this process.
    ///
    /// # Errors
    /// Why this process cannot use it (no driver, the import failed).
    pub fn new(array: DeviceArray) -> Result<CudaArray, DeviceError> {
        let ptr = DeviceMemory::of(&array)?.device_ptr();
        Ok(CudaArray { array, ptr })
    }

    /// The array, to send back as a value.
    pub fn array(&self) -> &DeviceArray {
        &self.array
    }
}

#[pymethods]
impl CudaArray {
    /// The CUDA array interface, version 3: the data is ready when this object exists (the
    /// import waited for the host's writes), so no stream is named.
    #[getter]
    fn __cuda_array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        dict.set_item("shape", PyTuple::new(py, self.array.shape())?)?;
        dict.set_item("typestr", self.array.dtype().typestr())?;
        dict.set_item("data", (self.ptr, false))?;
        dict.set_item("version", 3)?;
        dict.set_item("strides", py.None())?;
        dict.set_item("stream", py.None())?;
        Ok(dict)
    }

    /// A DLPack capsule of the array (no copy); the tensor a consumer makes from it keeps the
    /// mapping alive. `stream` needs no wait: the data is ready (see
    /// `__cuda_array_interface__`).
    #[pyo3(signature = (stream=None, **options))]
    fn __dlpack__<'py>(
        &self,
        py: Python<'py>,
        stream: Option<Bound<'py, PyAny>>,
        options: Option<Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = stream;
        let copy = match &options {
            Some(options) => options.get_item("copy")?,
            None => None,
        };
        if copy.is_some_and(|c| c.is_truthy().unwrap_or(false)) {
            return Err(PyBufferError::new_err(
                "troupe.CudaArray.__dlpack__: copy=True is not supported (the array is shared memory of the host)",
            ));
        }
        // A consumer may ask for the tensor on a device of its choosing: only this one.
        let wanted = match &options {
            Some(options) => options.get_item("dl_device")?,
            None => None,
        };
        if let Some(wanted) = wanted.filter(|w| !w.is_none()) {
            let here = (KDL_CUDA, self.array.device());
            if wanted.extract::<(i32, u32)>().ok() != Some(here) {
                return Err(PyBufferError::new_err(format!(
                    "troupe.CudaArray.__dlpack__: dl_device={wanted} is not where the array is \
                     (cuda:{}), and it cannot be copied there",
                    self.array.device()
                )));
            }
        }
        export_capsule(
            py,
            self.ptr,
            KDL_CUDA,
            self.array.device(),
            self.array.dtype(),
            self.array.shape(),
            Box::new(self.array.clone()),
        )
    }

    /// `(kDLCUDA, device)`.
    fn __dlpack_device__(&self) -> (i32, u32) {
        (KDL_CUDA, self.array.device())
    }

    /// Shape in elements.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.array.shape())
    }

    /// The numpy name of the element type (`"float32"`).
    #[getter]
    fn dtype(&self) -> &'static str {
        self.array.dtype().numpy_name()
    }

    /// The CUDA device ordinal.
    #[getter]
    fn device(&self) -> u32 {
        self.array.device()
    }

    /// Size in bytes.
    #[getter]
    fn nbytes(&self) -> u64 {
        self.array.len_bytes()
    }

    /// The device address of the first byte.
    #[getter]
    fn ptr(&self) -> u64 {
        self.ptr
    }

    fn __repr__(&self) -> String {
        format!(
            "troupe.CudaArray(shape={:?}, dtype={}, device=cuda:{})",
            self.array.shape(),
            self.array.dtype().numpy_name(),
            self.array.device()
        )
    }
}
