//! `troupe.Audio` and `troupe.VideoFrame` (Python classes in `troupe.media`) both ways.

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};
use troupe_value::{Audio, PixelFormat, Value, VideoFrame};

use super::Path;
use super::numpy::{array_from_python, array_to_python};
use crate::errors::{ConvertError, ConvertErrorKind};

static AUDIO: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static VIDEO: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const MODULE: &str = "troupe.media";

/// A `troupe.Audio` over a read-only view of the samples.
pub(super) fn audio_to_python<'py>(
    py: Python<'py>,
    audio: &Audio,
    path: &Path<'_>,
) -> Result<Bound<'py, PyAny>, ConvertError> {
    let samples = array_to_python(py, audio.samples(), &path.attr("samples"))?;
    let build = || -> PyResult<Bound<'py, PyAny>> {
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "samples"), samples)?;
        kwargs.set_item(intern!(py, "sample_rate"), audio.sample_rate())?;
        kwargs.set_item(intern!(py, "channels"), audio.channels())?;
        kwargs.set_item(intern!(py, "timestamp_ns"), audio.timestamp_ns())?;
        AUDIO.import(py, MODULE, "Audio")?.call((), Some(&kwargs))
    };
    build().map_err(|e| ConvertError::new(path, ConvertErrorKind::Python(e)))
}

/// A `troupe.VideoFrame` over a read-only view of the pixels.
pub(super) fn video_to_python<'py>(
    py: Python<'py>,
    frame: &VideoFrame,
    path: &Path<'_>,
) -> Result<Bound<'py, PyAny>, ConvertError> {
    let pixels = array_to_python(py, frame.pixels(), &path.attr("pixels"))?;
    let build = || -> PyResult<Bound<'py, PyAny>> {
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "pixels"), pixels)?;
        kwargs.set_item(intern!(py, "width"), frame.width())?;
        kwargs.set_item(intern!(py, "height"), frame.height())?;
        kwargs.set_item(intern!(py, "format"), frame.format().name())?;
        kwargs.set_item(intern!(py, "timestamp_ns"), frame.timestamp_ns())?;
        VIDEO
            .import(py, MODULE, "VideoFrame")?
            .call((), Some(&kwargs))
    };
    build().map_err(|e| ConvertError::new(path, ConvertErrorKind::Python(e)))
}

/// The audio or video value `obj` holds, `None` when it is neither.
pub(super) fn media_from_python(
    obj: &Bound<'_, PyAny>,
    path: &Path<'_>,
) -> Result<Option<Value>, ConvertError> {
    let py = obj.py();
    let is = |cell: &'static PyOnceLock<Py<PyType>>, name: &str| {
        cell.import(py, MODULE, name)
            .is_ok_and(|class| obj.is_instance(class).unwrap_or(false))
    };
    if is(&AUDIO, "Audio") {
        audio_from_python(obj, path).map(Some)
    } else if is(&VIDEO, "VideoFrame") {
        video_from_python(obj, path).map(Some)
    } else {
        Ok(None)
    }
}

/// Reads attribute `name` of `obj` as a `T`, naming the attribute when that fails.
fn field<'py, T: for<'a> FromPyObject<'a, 'py>>(
    obj: &Bound<'py, PyAny>,
    path: &Path<'_>,
    name: &'static str,
) -> Result<T, ConvertError> {
    obj.getattr(name)
        .and_then(|v| v.extract::<T>().map_err(Into::into))
        .map_err(|e| ConvertError::new(path.attr(name), ConvertErrorKind::Python(e)))
}

fn audio_from_python(obj: &Bound<'_, PyAny>, path: &Path<'_>) -> Result<Value, ConvertError> {
    let samples = obj
        .getattr(intern!(obj.py(), "samples"))
        .map_err(|e| ConvertError::new(path.attr("samples"), ConvertErrorKind::Python(e)))?;
    let samples = array_from_python(&samples, &path.attr("samples"))?;
    let audio = Audio::new(
        samples,
        field(obj, path, "sample_rate")?,
        field(obj, path, "channels")?,
        field(obj, path, "timestamp_ns")?,
    )
    .map_err(|e| ConvertError::new(path, e.into()))?;
    Ok(Value::Audio(audio))
}

fn video_from_python(obj: &Bound<'_, PyAny>, path: &Path<'_>) -> Result<Value, ConvertError> {
    let pixels = obj
        .getattr(intern!(obj.py(), "pixels"))
        .map_err(|e| ConvertError::new(path.attr("pixels"), ConvertErrorKind::Python(e)))?;
    let pixels = array_from_python(&pixels, &path.attr("pixels"))?;
    let format: String = field(obj, path, "format")?;
    let format = PixelFormat::from_name(&format).ok_or_else(|| {
        let reason = format!("unknown pixel format {format:?} (gray8, rgb24, rgba32, yuv420p)");
        ConvertError::new(
            path.attr("format"),
            ConvertErrorKind::Python(PyValueError::new_err(reason)),
        )
    })?;
    let frame = VideoFrame::new(
        pixels,
        field(obj, path, "width")?,
        field(obj, path, "height")?,
        format,
        field(obj, path, "timestamp_ns")?,
    )
    .map_err(|e| ConvertError::new(path, e.into()))?;
    Ok(Value::Video(frame))
}
