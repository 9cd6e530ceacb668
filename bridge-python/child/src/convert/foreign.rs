//! Arrays of other libraries, seen through the protocols they expose: DLPack
//! (`__dlpack__`, `__dlpack_device__`) and the CUDA array interface
//! (`__cuda_array_interface__`). A CPU tensor (torch) becomes a numpy view and takes the
//! numpy path; a CUDA tensor (torch, cupy) becomes a device array this child exports to the
//! host, keeping the tensor alive until the host releases it.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTypeMethods};
use troupe_cuda::{CudaBuffer, CudaDevice, device_of, driver_available};
use troupe_value::device::DeviceError;
use troupe_value::{DType, Value};

use super::Path;
use super::numpy::{array_from_python, numpy};
use crate::dlpack::{KDL_CPU, KDL_CUDA, is_c_contiguous, read_capsule};
use crate::errors::{ConvertError, ConvertErrorKind};

/// `obj` as a value when it is a foreign array (see the module docs); `None` when it exposes
/// none of the protocols.
pub(super) fn foreign_from_python(
    obj: &Bound<'_, PyAny>,
    path: &Path<'_>,
) -> Result<Option<Value>, ConvertError> {
    let py = obj.py();
    if let Ok(interface) = obj.getattr(intern!(py, "__cuda_array_interface__")) {
        return cuda_interface(obj, &interface, path).map(Some);
    }
    if !obj.hasattr(intern!(py, "__dlpack__")).unwrap_or(false) {
        return Ok(None);
    }
    let Ok(device) = obj.call_method0(intern!(py, "__dlpack_device__")) else {
        return Ok(None);
    };
    let (device_type, _): (i32, i32) = device
        .extract()
        .map_err(|e: PyErr| dlpack_error(obj, path, e.to_string()))?;
    match device_type {
        KDL_CPU => cpu_dlpack(obj, path).map(Some),
        KDL_CUDA => cuda_dlpack(obj, path).map(Some),
        other => Err(dlpack_error(
            obj,
            path,
            format!("device type {other} is neither CPU (1) nor CUDA (2)"),
        )),
    }
}

/// The fully qualified name of `obj`'s type.
fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .fully_qualified_name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "<unnamed type>".to_owned())
}

fn dlpack_error(obj: &Bound<'_, PyAny>, path: &Path<'_>, reason: String) -> ConvertError {
    ConvertError::new(
        path,
        ConvertErrorKind::Dlpack {
            type_name: type_name(obj),
            reason,
        },
    )
}

fn interface_error(obj: &Bound<'_, PyAny>, path: &Path<'_>, reason: String) -> ConvertError {
    ConvertError::new(
        path,
        ConvertErrorKind::CudaInterface {
            type_name: type_name(obj),
            reason,
        },
    )
}

/// A CPU tensor: a numpy view of it (`numpy.from_dlpack`, no copy), then the numpy path.
fn cpu_dlpack(obj: &Bound<'_, PyAny>, path: &Path<'_>) -> Result<Value, ConvertError> {
    let py = obj.py();
    let numpy = numpy(py).map_err(|e| dlpack_error(obj, path, e.to_string()))?;
    let view = numpy
        .call_method1(intern!(py, "from_dlpack"), (obj,))
        .map_err(|e| dlpack_error(obj, path, e.value(py).to_string()))?;
    array_from_python(&view, path).map(Value::Array)
}

/// Fails unless this process can make device arrays.
fn need_driver(path: &Path<'_>) -> Result<(), ConvertError> {
    if driver_available() {
        Ok(())
    } else {
        Err(ConvertError::new(
            path,
            ConvertErrorKind::Device(DeviceError::NoDriver),
        ))
    }
}

/// A CUDA tensor through `__cuda_array_interface__` (v2 or v3, C-contiguous, no mask).
fn cuda_interface(
    obj: &Bound<'_, PyAny>,
    interface: &Bound<'_, PyAny>,
    path: &Path<'_>,
) -> Result<Value, ConvertError> {
    let bad = |reason: String| interface_error(obj, path, reason);
    let dict = interface
        .cast::<PyDict>()
        .map_err(|_| bad("not a dict".to_owned()))?;
    let item = |key: &str| -> Result<Option<Bound<'_, PyAny>>, ConvertError> {
        Ok(dict
            .get_item(key)
            .map_err(|e| bad(e.to_string()))?
            .filter(|v| !v.is_none()))
    };
    let shape: Vec<u64> = item("shape")?
        .ok_or_else(|| bad("no shape".to_owned()))?
        .extract()
        .map_err(|e| bad(format!("shape: {e}")))?;
    let typestr: String = item("typestr")?
        .ok_or_else(|| bad("no typestr".to_owned()))?
        .extract()
        .map_err(|e| bad(format!("typestr: {e}")))?;
    let dtype = DType::from_typestr(&typestr)
        .ok_or_else(|| ConvertError::new(path, ConvertErrorKind::Dtype(typestr.clone())))?;
    let (ptr, _read_only): (u64, bool) = item("data")?
        .ok_or_else(|| bad("no data".to_owned()))?
        .extract()
        .map_err(|e| bad(format!("data: {e}")))?;
    if item("mask")?.is_some() {
        return Err(bad("masked arrays are not supported".to_owned()));
    }
    if let Some(strides) = item("strides")? {
        let strides: Vec<i64> = strides
            .extract()
            .map_err(|e| bad(format!("strides: {e}")))?;
        let itemsize = dtype.itemsize() as i64;
        let in_elements: Vec<i64> = strides.iter().map(|s| s / itemsize).collect();
        let whole = strides.iter().all(|s| s % itemsize == 0);
        if !whole || !is_c_contiguous(&shape, &in_elements) {
            return Err(bad(
                "only C-contiguous arrays can be sent (call .contiguous() or cupy.ascontiguousarray first)"
                    .to_owned(),
            ));
        }
    }
    need_driver(path)?;
    borrow(obj.clone().unbind(), ptr, dtype, &shape, path)
}

/// A CUDA tensor through DLPack (a library without the CUDA array interface).
fn cuda_dlpack(obj: &Bound<'_, PyAny>, path: &Path<'_>) -> Result<Value, ConvertError> {
    let py = obj.py();
    need_driver(path)?;
    let capsule = obj
        .call_method0(intern!(py, "__dlpack__"))
        .map_err(|e| dlpack_error(obj, path, e.value(py).to_string()))?;
    let tensor = read_capsule(&capsule).map_err(|e| dlpack_error(obj, path, e.to_string()))?;
    let dtype = tensor
        .dtype
        .ok_or_else(|| dlpack_error(obj, path, "unsupported DLPack dtype".to_owned()))?;
    if tensor.device_type != KDL_CUDA || !tensor.contiguous {
        return Err(dlpack_error(
            obj,
            path,
            "only C-contiguous CUDA tensors can be sent".to_owned(),
        ));
    }
    // The capsule owns the tensor (it was not consumed): keeping it keeps the memory.
    borrow(capsule.unbind(), tensor.ptr, dtype, &tensor.shape, path)
}

/// A device array over memory of another library, kept alive by `keeper` (the Python object)
/// until the host releases it. Waits for all work queued on the device first: the producer
/// may have written on any stream.
fn borrow(
    keeper: Py<PyAny>,
    ptr: u64,
    dtype: DType,
    shape: &[u64],
    path: &Path<'_>,
) -> Result<Value, ConvertError> {
    let cuda = |e| ConvertError::new(path, ConvertErrorKind::Cuda(e));
    let device = device_of(ptr).and_then(CudaDevice::shared).map_err(cuda)?;
    device.synchronize_context().map_err(cuda)?;
    // SAFETY: `ptr` is device memory of `device` (the driver said so) that the Python object
    // (a tensor, or its DLPack capsule) keeps alive for as long as `keeper` lives.
    let buffer = unsafe { CudaBuffer::borrowed(&device, ptr, dtype, shape, Box::new(keeper)) }
        .map_err(cuda)?;
    buffer
        .to_device_array()
        .map(Value::DeviceArray)
        .map_err(cuda)
}
