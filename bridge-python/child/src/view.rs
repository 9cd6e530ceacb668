//! A read-only Python buffer over bytes received from the host, so numpy can view them
//! without a copy.

use std::ffi::{c_char, c_int, c_void};

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use std::ptr;
use troupe_wire::Buffer;

/// Exposes a [`Buffer`] through the buffer protocol (bytes, format `B`, read-only).
///
/// The object owns its buffer, so whatever views it (a numpy array made with
/// `numpy.frombuffer`) keeps the shared-memory mapping alive for as long as it lives.
#[pyclass(frozen, module = "troupe._native", name = "BufferView")]
pub(crate) struct BufferView {
    buffer: Buffer,
}

impl BufferView {
    pub(crate) fn new(buffer: Buffer) -> BufferView {
        BufferView { buffer }
    }
}

#[pymethods]
impl BufferView {
    /// # Safety
    /// Called by Python with a valid `view` to fill (the buffer protocol's contract).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("null view"));
        }
        if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err(
                "buffers received from the troupe host are read-only",
            ));
        }
        let bytes = slf.get().buffer.as_slice();
        let (data, len) = (bytes.as_ptr(), bytes.len());
        // A buffer never moves or changes while the object lives (it is immutable and owned
        // here), and `view.obj` holds a reference to the object.
        // SAFETY: `view` is non-null and Python hands it to us to fill; every pointer stored
        // points into `*view` itself, at the bytes, or at a static C string.
        unsafe {
            (*view).obj = slf.into_any().into_ptr();
            (*view).buf = data as *mut c_void;
            (*view).len = len as isize;
            (*view).readonly = 1;
            (*view).itemsize = 1;
            (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
                c"B".as_ptr() as *mut c_char
            } else {
                ptr::null_mut()
            };
            (*view).ndim = 1;
            (*view).shape = if flags & ffi::PyBUF_ND == ffi::PyBUF_ND {
                &raw mut (*view).len
            } else {
                ptr::null_mut()
            };
            (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
                &raw mut (*view).itemsize
            } else {
                ptr::null_mut()
            };
            (*view).suboffsets = ptr::null_mut();
            (*view).internal = ptr::null_mut();
        }
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.buffer.len()
    }

    fn __repr__(&self) -> String {
        let place = match self.buffer.shared_region() {
            Some((region, offset)) => format!("shared memory {}+{offset}", region.name()),
            None => "process memory".to_owned(),
        };
        format!(
            "<troupe BufferView of {} bytes in {place}>",
            self.buffer.len()
        )
    }
}
