//! Arrays of other libraries, seen through the protocols they expose: DLPack
//! (`__dlpack__`, `__dlpack_device__`) and the CUDA array interface
//! (`__cuda_array_interface__`). A CPU tensor (torch) becomes a numpy view and takes the
//! numpy path; a CUDA tensor (torch, cupy) becomes a device array this child exports to the
//! host ([`cuda_tensor`](super::cuda_tensor)), or is refused in a build without the `cuda`
//! feature.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTypeMethods;
use troupe_value::Value;

use super::Path;
#[cfg(feature = "cuda")]
use super::cuda_tensor::{cuda_dlpack, cuda_interface};
use super::numpy::{array_from_python, numpy};
use crate::dlpack::{KDL_CPU, KDL_CUDA};
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
pub(super) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .fully_qualified_name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "<unnamed type>".to_owned())
}

pub(super) fn dlpack_error(
    obj: &Bound<'_, PyAny>,
    path: &Path<'_>,
    reason: String,
) -> ConvertError {
    ConvertError::new(
        path,
        ConvertErrorKind::Dlpack {
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

/// Built without the `cuda` feature, a CUDA tensor is refused: this child's connection
/// carries no device arrays.
#[cfg(not(feature = "cuda"))]
fn cuda_interface(
    _: &Bound<'_, PyAny>,
    _: &Bound<'_, PyAny>,
    path: &Path<'_>,
) -> Result<Value, ConvertError> {
    Err(no_device_arrays(path))
}

/// See [`cuda_interface`].
#[cfg(not(feature = "cuda"))]
fn cuda_dlpack(_: &Bound<'_, PyAny>, path: &Path<'_>) -> Result<Value, ConvertError> {
    Err(no_device_arrays(path))
}

#[cfg(not(feature = "cuda"))]
fn no_device_arrays(path: &Path<'_>) -> ConvertError {
    use troupe_value::device::DeviceError;
    ConvertError::new(path, ConvertErrorKind::Device(DeviceError::NoPlane))
}
