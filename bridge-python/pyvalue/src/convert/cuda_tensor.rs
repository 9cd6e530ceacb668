//! CUDA tensors of other libraries (torch, cupy), through `__cuda_array_interface__` or
//! DLPack: device arrays this child exports to the host, keeping the tensor alive until the
//! host releases it. Only in a build with the `cuda` feature.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use troupe_cuda::{CudaBuffer, CudaDevice, device_of, driver_available};
use troupe_value::device::DeviceError;
use troupe_value::{DType, Value};

use super::Path;
use super::foreign::{dlpack_error, type_name};
use crate::dlpack::{KDL_CUDA, is_c_contiguous, read_capsule};
use crate::errors::{ConvertError, ConvertErrorKind};

fn interface_error(obj: &Bound<'_, PyAny>, path: &Path<'_>, reason: String) -> ConvertError {
    ConvertError::new(
        path,
        ConvertErrorKind::CudaInterface {
            type_name: type_name(obj),
            reason,
        },
    )
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
pub(super) fn cuda_interface(
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
    // Version 3 names the stream the data is ordered on (none: nothing to wait for); before,
    // nothing is said, and all of the device's work is waited for.
    let version: u32 = item("version")?.and_then(|v| v.extract().ok()).unwrap_or(0);
    let ready = match (version, item("stream")?) {
        (0..=2, _) => Ready::Unknown,
        (_, None) => Ready::Now,
        (_, Some(stream)) => {
            Ready::Stream(stream.extract().map_err(|e| bad(format!("stream: {e}")))?)
        }
    };
    if shape.contains(&0) {
        // An empty tensor has no memory (the interface gives pointer 0): send an empty
        // array on its device.
        return empty(obj, dtype, &shape, path);
    }
    borrow(
        obj.py(),
        obj.clone().unbind(),
        ptr,
        dtype,
        &shape,
        ready,
        path,
    )
}

/// A CUDA tensor through DLPack (a library without the CUDA array interface).
pub(super) fn cuda_dlpack(obj: &Bound<'_, PyAny>, path: &Path<'_>) -> Result<Value, ConvertError> {
    let py = obj.py();
    need_driver(path)?;
    // Given our stream, the producer makes it wait for its writes (DLPack's stream
    // protocol): then nothing is waited for here. A producer that takes no stream gets
    // none, and all of the device's work is waited for.
    let ours = obj
        .call_method0(intern!(py, "__dlpack_device__"))
        .and_then(|device| device.extract::<(i32, usize)>())
        .ok()
        .and_then(|(_, ordinal)| CudaDevice::shared(ordinal).ok());
    let with_stream = ours.as_ref().and_then(|device| {
        let kwargs = PyDict::new(py);
        kwargs.set_item("stream", device.stream_handle()).ok()?;
        obj.call_method(intern!(py, "__dlpack__"), (), Some(&kwargs))
            .ok()
            .map(|capsule| (capsule, Ready::Ours))
    });
    let (capsule, ready) = match with_stream {
        Some(given) => given,
        None => (
            obj.call_method0(intern!(py, "__dlpack__"))
                .map_err(|e| dlpack_error(obj, path, e.value(py).to_string()))?,
            Ready::Unknown,
        ),
    };
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
    if tensor.shape.contains(&0) {
        return empty(obj, dtype, &tensor.shape, path);
    }
    // The capsule owns the tensor (it was not consumed): keeping it keeps the memory.
    borrow(
        capsule.py(),
        capsule.unbind(),
        tensor.ptr,
        dtype,
        &tensor.shape,
        ready,
        path,
    )
}

/// How a producer's writes are ordered before troupe's export of its memory.
#[derive(Debug, Clone, Copy)]
enum Ready {
    /// Nothing said (CUDA array interface v2, a DLPack producer that takes no stream): wait
    /// for all work in the device's context.
    Unknown,
    /// The data is ready (CUDA array interface v3 without a stream).
    Now,
    /// Ready once this stream's work is done (CUDA array interface v3's `stream`).
    Stream(u64),
    /// The producer made troupe's stream wait for its writes (DLPack `stream=`).
    Ours,
}

/// An empty device array on the device `obj` names with `__dlpack_device__()` (device 0 if
/// it names none).
fn empty(
    obj: &Bound<'_, PyAny>,
    dtype: DType,
    shape: &[u64],
    path: &Path<'_>,
) -> Result<Value, ConvertError> {
    let cuda = |e| ConvertError::new(path, ConvertErrorKind::Cuda(e));
    let ordinal = obj
        .call_method0(intern!(obj.py(), "__dlpack_device__"))
        .and_then(|device| device.extract::<(i32, usize)>())
        .map_or(0, |(_, ordinal)| ordinal);
    let device = CudaDevice::shared(ordinal).map_err(cuda)?;
    CudaBuffer::alloc(&device, dtype, shape)
        .and_then(|buffer| buffer.to_device_array())
        .map(Value::DeviceArray)
        .map_err(cuda)
}

/// A device array over memory of another library, kept alive by `keeper` (the Python object)
/// until the host releases it. Waits first for the producer's writes as `ready` says (all of
/// the device's work when nothing is said), without the GIL: other Python threads run
/// meanwhile.
fn borrow(
    py: Python<'_>,
    keeper: Py<PyAny>,
    ptr: u64,
    dtype: DType,
    shape: &[u64],
    ready: Ready,
    path: &Path<'_>,
) -> Result<Value, ConvertError> {
    let cuda = |e| ConvertError::new(path, ConvertErrorKind::Cuda(e));
    if crate::cuda::plane().imported(ptr) {
        // CUDA cannot export memory it mapped from another process.
        return Err(ConvertError::new(
            path,
            ConvertErrorKind::CudaInterface {
                type_name: type_name(keeper.bind(py)),
                reason: "it views a troupe.CudaArray the host sent, whose memory cannot be \
                         exported again: return the troupe.CudaArray itself, or a copy \
                         (tensor.clone())"
                    .to_owned(),
            },
        ));
    }
    let device = device_of(ptr).and_then(CudaDevice::shared).map_err(cuda)?;
    match ready {
        Ready::Now | Ready::Ours => {}
        Ready::Unknown => py.detach(|| device.synchronize_context()).map_err(cuda)?,
        // SAFETY: the producer named this stream for its data, which it keeps alive.
        Ready::Stream(stream) => py
            .detach(|| unsafe { device.synchronize_foreign_stream(stream) })
            .map_err(cuda)?,
    }
    // SAFETY: `ptr` is device memory of `device` (the driver said so) that the Python object
    // (a tensor, or its DLPack capsule) keeps alive for as long as `keeper` lives.
    let buffer = unsafe { CudaBuffer::borrowed(&device, ptr, dtype, shape, Box::new(keeper)) }
        .map_err(cuda)?;
    buffer
        .to_device_array()
        .map(Value::DeviceArray)
        .map_err(cuda)
}
