//! Python objects into wire values.

use pyo3::buffer::PyUntypedBuffer;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
    PyTypeMethods,
};
use troupe_value::{MAX_DEPTH, Map, Value};

use super::Path;
use super::foreign::foreign_from_python;
use super::media::media_from_python;
use super::numpy::{NumpyKind, array_from_python, copy_bytes, numpy_kind};
#[cfg(feature = "cuda")]
use crate::cuda::CudaArray;
use crate::errors::{ConvertError, ConvertErrorKind};

/// `obj` as a wire value; `depth` counts the lists and dicts around it.
///
/// Fails with an error naming `obj`'s type and `path` for anything outside the value model
/// (see the module docs), for an int outside 64 bits and for nesting deeper than
/// [`MAX_DEPTH`].
pub fn from_python(
    obj: &Bound<'_, PyAny>,
    path: &Path<'_>,
    depth: usize,
) -> Result<Value, ConvertError> {
    let py = obj.py();
    let python = |e: PyErr| ConvertError::new(path, ConvertErrorKind::Python(e));
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast_exact::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return match i.extract::<i64>() {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => {
                let text = obj.str().map(|s| s.to_string()).unwrap_or_default();
                Err(ConvertError::new(path, ConvertErrorKind::IntTooLarge(text)))
            }
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(s.to_str().map_err(python)?.to_owned()));
    }
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        let buffer =
            copy_bytes(py, bytes.as_bytes()).map_err(|e| ConvertError::new(path, e.into()))?;
        return Ok(Value::Bytes(buffer));
    }
    if obj.cast::<PyByteArray>().is_ok() || obj.cast::<PyMemoryView>().is_ok() {
        return buffer_bytes(obj, path);
    }
    if let Ok(list) = obj.cast::<PyList>() {
        let depth = nest(depth, path)?;
        let items = list
            .iter()
            .enumerate()
            .map(|(i, item)| from_python(&item, &path.index(i), depth));
        return items.collect::<Result<_, _>>().map(Value::List);
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        let depth = nest(depth, path)?;
        let items = tuple
            .iter()
            .enumerate()
            .map(|(i, item)| from_python(&item, &path.index(i), depth));
        return items.collect::<Result<_, _>>().map(Value::List);
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let depth = nest(depth, path)?;
        return dict_from_python(dict, path, depth).map(Value::Map);
    }
    match numpy_kind(obj) {
        Some(NumpyKind::Array) => return array_from_python(obj, path).map(Value::Array),
        Some(NumpyKind::Scalar) => {
            let item = obj.call_method0(intern!(py, "item")).map_err(python)?;
            return from_python(&item, path, nest(depth, path)?);
        }
        None => {}
    }
    if let Some(media) = media_from_python(obj, path)? {
        return Ok(media);
    }
    if let Ok(array) = obj.cast::<crate::host_array::HostArray>() {
        return Ok(Value::Array(array.get().array().clone()));
    }
    #[cfg(feature = "cuda")]
    if let Ok(array) = obj.cast::<CudaArray>() {
        return Ok(Value::DeviceArray(array.get().array().clone()));
    }
    if let Some(foreign) = foreign_from_python(obj, path)? {
        return Ok(foreign);
    }
    let name = obj
        .get_type()
        .fully_qualified_name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "<unnamed type>".to_owned());
    Err(ConvertError::new(path, ConvertErrorKind::Unsupported(name)))
}

/// Keyword arguments or a dict: str keys only.
pub fn dict_from_python(
    dict: &Bound<'_, PyDict>,
    path: &Path<'_>,
    depth: usize,
) -> Result<Map, ConvertError> {
    let mut map = Map::with_capacity(dict.len());
    for (key, item) in dict.iter() {
        let Ok(key) = key.cast::<PyString>() else {
            let ty = key
                .get_type()
                .fully_qualified_name()
                .map(|n| n.to_string())
                .unwrap_or_default();
            return Err(ConvertError::new(path, ConvertErrorKind::DictKey(ty)));
        };
        let key = key
            .to_str()
            .map_err(|e| ConvertError::new(path, ConvertErrorKind::Python(e)))?;
        let value = from_python(&item, &path.key(key), depth)?;
        map.insert(key.to_owned(), value);
    }
    Ok(map)
}

/// One level deeper, or an error past [`MAX_DEPTH`] (what the wire decoder accepts).
fn nest(depth: usize, path: &Path<'_>) -> Result<usize, ConvertError> {
    let depth = depth + 1;
    if depth > MAX_DEPTH {
        return Err(ConvertError::new(
            path,
            ConvertErrorKind::TooDeep(MAX_DEPTH),
        ));
    }
    Ok(depth)
}

/// The bytes of a `bytearray` or `memoryview`, copied once.
fn buffer_bytes(obj: &Bound<'_, PyAny>, path: &Path<'_>) -> Result<Value, ConvertError> {
    let py = obj.py();
    let python = |e: PyErr| ConvertError::new(path, ConvertErrorKind::Python(e));
    let buffer = PyUntypedBuffer::get(obj).map_err(python)?;
    let data = if buffer.is_c_contiguous() {
        let len = buffer.len_bytes();
        if len == 0 {
            troupe_value::Buffer::new()
        } else {
            // SAFETY: the exporter keeps `len` bytes at `buf_ptr` valid while `buffer` is held.
            let bytes = unsafe { std::slice::from_raw_parts(buffer.buf_ptr() as *const u8, len) };
            copy_bytes(py, bytes).map_err(|e| ConvertError::new(path, e.into()))?
        }
    } else {
        let flat = obj.call_method0(intern!(py, "tobytes")).map_err(python)?;
        let flat = flat.cast::<PyBytes>().map_err(|e| python(e.into()))?;
        copy_bytes(py, flat.as_bytes()).map_err(|e| ConvertError::new(path, e.into()))?
    };
    buffer.release(py);
    Ok(Value::Bytes(data))
}
