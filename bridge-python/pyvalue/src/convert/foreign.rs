//! Arrays of other libraries, seen through the protocols they expose: DLPack
//! (`__dlpack__`, `__dlpack_device__`) and the CUDA array interface
//! (`__cuda_array_interface__`). A CPU tensor (torch) is copied once from its own capsule
//! (no numpy needed); a CUDA tensor (torch, cupy) becomes a device array this child exports to the
//! host ([`cuda_tensor`](super::cuda_tensor)), or is refused in a build without the `cuda`
//! feature.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTypeMethods;
use troupe_value::device::byte_len;
use troupe_value::{Array, Value};

use super::Path;
#[cfg(feature = "cuda")]
use super::cuda_tensor::{cuda_dlpack, cuda_interface};
use super::numpy::copy_bytes;
use crate::dlpack::{KDL_CPU, KDL_CUDA, read_capsule};
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

/// A CPU tensor (of a dtype troupe has), read through its own DLPack capsule and copied once
/// (into a slot of the pool when large; a strided one gathered into C order): numpy is not
/// needed, so a venv with torch alone sends tensors.
fn cpu_dlpack(obj: &Bound<'_, PyAny>, path: &Path<'_>) -> Result<Value, ConvertError> {
    let py = obj.py();
    let capsule = obj
        .call_method0(intern!(py, "__dlpack__"))
        .map_err(|e| dlpack_error(obj, path, e.value(py).to_string()))?;
    let tensor = read_capsule(&capsule).map_err(|e| dlpack_error(obj, path, e.to_string()))?;
    let dtype = tensor
        .dtype
        .ok_or_else(|| dlpack_error(obj, path, "unsupported DLPack dtype".to_owned()))?;
    if tensor.device_type != KDL_CPU {
        return Err(dlpack_error(obj, path, "not a CPU tensor".to_owned()));
    }
    let len = byte_len(dtype, &tensor.shape)
        .ok()
        .and_then(|len| usize::try_from(len).ok())
        .ok_or_else(|| dlpack_error(obj, path, "the tensor is too large".to_owned()))?;
    let gathered;
    let bytes: &[u8] = match (&tensor.strides, tensor.contiguous) {
        _ if len == 0 => &[],
        (Some(strides), false) => {
            // SAFETY: the capsule (alive until the end of this function) owns a CPU tensor
            // whose elements lie at `ptr + strides . index` for every index of `shape`, by
            // the DLPack contract.
            gathered = unsafe { gather(tensor.ptr, &tensor.shape, strides, dtype.itemsize()) };
            &gathered
        }
        // SAFETY: as above, the tensor is C-contiguous: `len` bytes at `ptr`.
        _ => unsafe { std::slice::from_raw_parts(tensor.ptr as *const u8, len) },
    };
    let data = copy_bytes(py, bytes).map_err(|e| ConvertError::new(path, e.into()))?;
    drop(capsule);
    // Each dimension fits: their product (the length) does.
    let shape = tensor.shape.iter().map(|&d| d as usize).collect();
    Array::new(dtype, shape, data)
        .map(Value::Array)
        .map_err(|e| dlpack_error(obj, path, e.to_string()))
}

/// The elements of a strided tensor at `ptr`, in C order.
///
/// # Safety
/// Every element `ptr + itemsize * sum(index[d] * strides[d])`, for every index within
/// `shape`, must be readable for `itemsize` bytes.
unsafe fn gather(ptr: u64, shape: &[u64], strides: &[i64], itemsize: usize) -> Vec<u8> {
    let count: u64 = shape.iter().product();
    let mut out = Vec::with_capacity(count as usize * itemsize);
    let mut index = vec![0u64; shape.len()];
    for _ in 0..count {
        let offset: i64 = index
            .iter()
            .zip(strides)
            .map(|(&i, &s)| i as i64 * s)
            .sum::<i64>()
            * itemsize as i64;
        let at = ptr.wrapping_add_signed(offset) as *const u8;
        // SAFETY: the caller's contract.
        out.extend_from_slice(unsafe { std::slice::from_raw_parts(at, itemsize) });
        // The next index in C order.
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
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
