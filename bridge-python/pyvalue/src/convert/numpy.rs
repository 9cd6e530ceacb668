//! numpy arrays both ways. numpy is imported only when an array is met, so extensions
//! without numpy never pay for it.

use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule, PyTuple, PyType};
use troupe_protocol::SHM_THRESHOLD;

use crate::host_array::HostArray;
use troupe_shm::pool::{Pool, PoolError};
use troupe_value::{Array, Buffer, DType};

use super::Path;
use crate::errors::{ConvertError, ConvertErrorKind};
use crate::view::{BufferView, find_view};

static NUMPY: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static SYS_MODULES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static NDARRAY: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static GENERIC: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// numpy, imported on first use.
pub(super) fn numpy(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    NUMPY
        .get_or_try_init(py, || py.import("numpy").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// numpy when this process already imported it: only then can an object be a numpy one.
fn numpy_if_loaded(py: Python<'_>) -> Option<&Bound<'_, PyModule>> {
    if let Some(numpy) = NUMPY.get(py) {
        return Some(numpy.bind(py));
    }
    let modules = SYS_MODULES
        .get_or_try_init(py, || {
            py.import("sys")?
                .getattr("modules")?
                .cast_into::<PyDict>()
                .map(Bound::unbind)
                .map_err(PyErr::from)
        })
        .ok()?
        .bind(py);
    modules.get_item("numpy").ok()??;
    numpy(py).ok()
}

/// What a Python object is, as far as numpy goes.
pub(super) enum NumpyKind {
    /// A `numpy.ndarray`.
    Array,
    /// A numpy scalar (`numpy.generic`).
    Scalar,
}

/// Whether `obj` is a numpy array or scalar; `None` also when numpy is not loaded.
pub(super) fn numpy_kind(obj: &Bound<'_, PyAny>) -> Option<NumpyKind> {
    let py = obj.py();
    let numpy = numpy_if_loaded(py)?;
    let class = |cell: &'static PyOnceLock<Py<PyType>>, name: &str| {
        cell.get_or_try_init(py, || {
            numpy
                .getattr(name)?
                .cast_into::<PyType>()
                .map(Bound::unbind)
                .map_err(PyErr::from)
        })
        .ok()
        .map(|t| t.bind(py).clone())
    };
    if obj
        .is_instance(class(&NDARRAY, "ndarray")?.as_any())
        .unwrap_or(false)
    {
        Some(NumpyKind::Array)
    } else if obj
        .is_instance(class(&GENERIC, "generic")?.as_any())
        .unwrap_or(false)
    {
        Some(NumpyKind::Scalar)
    } else {
        None
    }
}

/// numpy's dtype object for `dtype`, made once per process (parsing a name each time costs
/// more than the rest of a conversion).
fn numpy_dtype(py: Python<'_>, dtype: DType) -> PyResult<&Bound<'_, PyAny>> {
    static DTYPES: PyOnceLock<Vec<Py<PyAny>>> = PyOnceLock::new();
    let all = DTYPES.get_or_try_init(py, || {
        let make = numpy(py)?.getattr(intern!(py, "dtype"))?;
        DType::ALL
            .into_iter()
            .map(|d| make.call1((d.numpy_name(),)).map(Bound::unbind))
            .collect::<PyResult<Vec<_>>>()
    })?;
    // `DType::ALL` lists the dtypes in declaration order.
    Ok(all[dtype as usize].bind(py))
}

/// A read-only numpy array viewing `array`'s bytes (no copy); the view keeps them alive.
pub(super) fn array_to_python<'py>(
    py: Python<'py>,
    array: &Array,
    path: &Path<'_>,
) -> Result<Bound<'py, PyAny>, ConvertError> {
    let dtype = array.dtype().numpy_name();
    let Ok(numpy) = numpy(py) else {
        // No numpy in this venv (torch alone, say): an object that speaks DLPack.
        return Bound::new(py, HostArray::new(array.clone()))
            .map(Bound::into_any)
            .map_err(|e| ConvertError::new(path, ConvertErrorKind::Python(e)));
    };
    let build = || -> PyResult<Bound<'py, PyAny>> {
        let shape = PyTuple::new(py, array.shape())?;
        if array.data().is_empty() {
            let empty = numpy.call_method1(intern!(py, "empty"), (shape, dtype))?;
            empty
                .getattr(intern!(py, "flags"))?
                .setattr(intern!(py, "writeable"), false)?;
            return Ok(empty);
        }
        let view = Bound::new(py, BufferView::new(array.data().clone()))?;
        let flat = numpy.call_method1(
            intern!(py, "frombuffer"),
            (view, numpy_dtype(py, array.dtype())?),
        )?;
        if array.shape().len() == 1 {
            return Ok(flat);
        }
        flat.call_method1(intern!(py, "reshape"), (shape,))
    };
    build().map_err(|e| ConvertError::new(path, ConvertErrorKind::Python(e)))
}

/// The array's bytes: the very slot when the array is a whole-slot view of troupe memory (an
/// array made with `troupe.empty`/`troupe.zeros`, or one received), else copied once (into
/// the pool when large). A writable pool array sent this way is made read-only: the slot now
/// belongs to the value, which must not change.
pub(super) fn array_from_python(
    obj: &Bound<'_, PyAny>,
    path: &Path<'_>,
) -> Result<Array, ConvertError> {
    let py = obj.py();
    let python = |e: PyErr| ConvertError::new(path, ConvertErrorKind::Python(e));
    let numpy = numpy(py).map_err(python)?;
    let dtype_obj = obj.getattr(intern!(py, "dtype")).map_err(python)?;
    // `kind` and `itemsize` are plain attributes; `dtype.name` is computed in Python (~2 us).
    let kind: char = dtype_obj
        .getattr(intern!(py, "kind"))
        .and_then(|k| k.extract())
        .map_err(python)?;
    let itemsize: usize = dtype_obj
        .getattr(intern!(py, "itemsize"))
        .and_then(|n| n.extract())
        .map_err(python)?;
    let Some(dtype) = DType::from_numpy_kind(kind, itemsize) else {
        let name = dtype_obj
            .getattr(intern!(py, "name"))
            .and_then(|n| n.extract())
            .unwrap_or_else(|_| format!("{kind}{itemsize}"));
        return Err(ConvertError::new(path, ConvertErrorKind::Dtype(name)));
    };
    let mut obj = obj.clone();
    let native: bool = dtype_obj
        .getattr(intern!(py, "isnative"))
        .and_then(|n| n.extract())
        .map_err(python)?;
    if !native {
        obj = obj
            .call_method1(intern!(py, "astype"), (dtype.numpy_name(),))
            .map_err(python)?;
    }
    let shape: Vec<usize> = obj
        .getattr(intern!(py, "shape"))
        .and_then(|s| s.extract())
        .map_err(python)?;
    let mut buffer = PyUntypedBuffer::get(&obj).map_err(python)?;
    if !buffer.is_c_contiguous() {
        buffer.release(py);
        obj = numpy
            .call_method1(intern!(py, "ascontiguousarray"), (obj,))
            .map_err(python)?;
        buffer = PyUntypedBuffer::get(&obj).map_err(python)?;
    }
    let in_place = (native && buffer.len_bytes() > 0)
        .then(|| find_view(&obj))
        .flatten()
        .filter(|view| {
            let viewed = view.get().buffer();
            viewed.as_slice().as_ptr() == buffer.buf_ptr() as *const u8
                && buffer.len_bytes() <= viewed.len()
        });
    let data = if let Some(view) = in_place {
        if view.get().is_writable() {
            obj.getattr(intern!(py, "flags"))
                .and_then(|flags| flags.setattr(intern!(py, "writeable"), false))
                .map_err(python)?;
        }
        view.get().buffer().truncated(buffer.len_bytes())
    } else if buffer.len_bytes() == 0 {
        Buffer::new()
    } else {
        // SAFETY: the exporter keeps `len_bytes` bytes at `buf_ptr` valid while `buffer` is
        // held, and it is held until after the copy.
        let bytes = unsafe {
            std::slice::from_raw_parts(buffer.buf_ptr() as *const u8, buffer.len_bytes())
        };
        copy_bytes(py, bytes).map_err(|e| ConvertError::new(path, e.into()))?
    };
    buffer.release(py);
    Array::new(dtype, shape, data).map_err(|e| python(PyValueError::new_err(e.to_string())))
}

/// `bytes` as a buffer of its own: one copy, straight into a slot of the child's pool when it
/// is large enough to travel through shared memory (the connection then sends it without
/// copying again).
pub(super) fn copy_bytes(py: Python<'_>, bytes: &[u8]) -> Result<Buffer, PoolError> {
    if bytes.len() < SHM_THRESHOLD {
        return Ok(Buffer::copy_from_slice(bytes));
    }
    // Large copies run without the GIL so other Python threads go on meanwhile.
    let slot = Pool::global().alloc_with(bytes.len(), |target| {
        py.detach(|| target.copy_from_slice(bytes))
    })?;
    Ok(Buffer::from(slot))
}

/// A writable view of a fresh slot of `len` bytes of the child's pool, zero-filled when
/// `zero` (else its bytes are whatever the slot held before).
pub fn pool_view(py: Python<'_>, len: usize, zero: bool) -> Result<BufferView, PoolError> {
    let slot = if zero {
        Pool::global().alloc_with(len, |target| py.detach(|| target.fill(0)))?
    } else {
        Pool::global().alloc(len)?
    };
    Ok(BufferView::writable(Buffer::from(slot)))
}
