//! `troupe.HostArray`: what a CPU array from the host becomes in a venv without numpy (torch
//! alone, say). It speaks DLPack, so `torch.from_dlpack(arr)` makes a tensor of it.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use troupe_value::Array;

use crate::dlpack::{KDL_CPU, export_capsule};

/// A CPU array the host sent, in a venv without numpy. `__dlpack__` hands the consumer a
/// private copy, C-contiguous and writable (the host's shared memory is read-only here, and
/// DLPack cannot say so), so `torch.from_dlpack(arr)` gives an ordinary tensor without a
/// warning. Sent back (returned or passed on), it travels as the array it is, without a
/// copy.
#[pyclass(frozen, module = "troupe", name = "HostArray")]
pub struct HostArray {
    array: Array,
}

impl HostArray {
    /// The Python object of a host array.
    pub fn new(array: Array) -> HostArray {
        HostArray { array }
    }

    /// The array, to send back as a value.
    pub fn array(&self) -> &Array {
        &self.array
    }
}

#[pymethods]
impl HostArray {
    /// A DLPack capsule of a private copy of the array.
    #[pyo3(signature = (stream=None, **options))]
    fn __dlpack__<'py>(
        &self,
        py: Python<'py>,
        stream: Option<Bound<'py, PyAny>>,
        options: Option<Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = (stream, options);
        let copy: Vec<u8> = self.array.data().as_slice().to_vec();
        let shape: Vec<u64> = self.array.shape().iter().map(|&d| d as u64).collect();
        export_capsule(
            py,
            copy.as_ptr() as u64,
            KDL_CPU,
            0,
            self.array.dtype(),
            &shape,
            Box::new(copy),
        )
    }

    /// `(kDLCPU, 0)`.
    fn __dlpack_device__(&self) -> (i32, u32) {
        (KDL_CPU, 0)
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

    /// Size in bytes.
    #[getter]
    fn nbytes(&self) -> usize {
        self.array.data().len()
    }

    /// The elements' bytes, C order, little-endian.
    fn tobytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.array.data().as_slice())
    }

    fn __repr__(&self) -> String {
        format!(
            "troupe.HostArray(shape={:?}, dtype={})",
            self.array.shape(),
            self.array.dtype().numpy_name()
        )
    }
}
