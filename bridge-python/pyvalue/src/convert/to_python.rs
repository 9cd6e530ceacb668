//! Wire values into Python objects.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString};
use troupe_value::Value;

use super::Path;
use super::media::{audio_to_python, video_to_python};
use super::numpy::array_to_python;
#[cfg(feature = "cuda")]
use crate::cuda::CudaArray;
use crate::errors::{ConvertError, ConvertErrorKind};

/// `value` as a Python object: arrays become read-only numpy views of the received bytes,
/// bytes become `bytes`, lists `list`, maps `dict`, device arrays `troupe.CudaArray` (refused
/// in a build without the `cuda` feature, whose connection carries none).
pub fn to_python<'py>(
    py: Python<'py>,
    value: &Value,
    path: &Path<'_>,
) -> Result<Bound<'py, PyAny>, ConvertError> {
    let python = |e: PyErr| ConvertError::new(path, ConvertErrorKind::Python(e));
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => PyInt::new(py, *i).into_any(),
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::Bytes(bytes) => PyBytes::new(py, bytes.as_slice()).into_any(),
        Value::List(items) => {
            let list = PyList::empty(py);
            for (i, item) in items.iter().enumerate() {
                list.append(to_python(py, item, &path.index(i))?)
                    .map_err(python)?;
            }
            list.into_any()
        }
        Value::Map(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, to_python(py, item, &path.key(key))?)
                    .map_err(python)?;
            }
            dict.into_any()
        }
        Value::Array(array) => array_to_python(py, array, path)?,
        Value::Audio(audio) => audio_to_python(py, audio, path)?,
        Value::Video(frame) => video_to_python(py, frame, path)?,
        #[cfg(feature = "cuda")]
        Value::DeviceArray(array) => {
            let array = CudaArray::new(array.clone())
                .map_err(|e| ConvertError::new(path, ConvertErrorKind::Device(e)))?;
            Bound::new(py, array).map_err(python)?.into_any()
        }
        #[cfg(not(feature = "cuda"))]
        Value::DeviceArray(_) => {
            let refused = troupe_value::device::DeviceError::NoPlane;
            return Err(ConvertError::new(path, ConvertErrorKind::Device(refused)));
        }
    })
}
