//! A Python buffer over troupe bytes, so numpy can view them without a copy: read-only for
//! bytes received from the host, writable for a fresh slot of the child's pool
//! (`troupe.empty`).

use std::ffi::{c_char, c_int, c_void};

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use std::ptr;
use troupe_value::Buffer;

/// Exposes a [`Buffer`] through the buffer protocol (bytes, format `B`).
///
/// The object owns its buffer, so whatever views it (a numpy array made with
/// `numpy.frombuffer`) keeps the shared memory alive for as long as it lives: a slot of the
/// host's pool is released to the host only when the last such view is collected.
#[pyclass(frozen, module = "troupe._native", name = "BufferView")]
pub struct BufferView {
    buffer: Buffer,
    /// Where Python may write: a fresh slot of this child's pool, never bytes received.
    writable: Option<*mut u8>,
}

// SAFETY: the pointer is into a shared mapping the buffer keeps alive; writes through it are
// Python's (under its rules), and it is never dereferenced here.
unsafe impl Send for BufferView {}
// SAFETY: as above; the object is frozen.
unsafe impl Sync for BufferView {}

impl BufferView {
    /// A read-only view.
    pub fn new(buffer: Buffer) -> BufferView {
        BufferView {
            buffer,
            writable: None,
        }
    }

    /// A writable view of a slot of this process's pool (read-only for any other buffer).
    pub fn writable(buffer: Buffer) -> BufferView {
        let writable = buffer.writable_ptr();
        BufferView { buffer, writable }
    }

    /// The buffer viewed.
    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }

    /// Whether Python may write through this view.
    pub fn is_writable(&self) -> bool {
        self.writable.is_some()
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
        let this = slf.get();
        let writable = this.writable;
        if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE && writable.is_none() {
            return Err(PyBufferError::new_err(
                "buffers received from the troupe host are read-only",
            ));
        }
        let bytes = this.buffer.as_slice();
        let len = bytes.len();
        let data = writable.unwrap_or(bytes.as_ptr() as *mut u8);
        // A buffer never moves or changes while the object lives (it is immutable and owned
        // here), and `view.obj` holds a reference to the object.
        // SAFETY: `view` is non-null and Python hands it to us to fill; every pointer stored
        // points into `*view` itself, at the bytes, or at a static C string.
        unsafe {
            (*view).obj = slf.into_any().into_ptr();
            (*view).buf = data as *mut c_void;
            (*view).len = len as isize;
            (*view).readonly = c_int::from(writable.is_none());
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
            Some((region, offset)) => format!("shared memory region {}+{offset}", region.id()),
            None => "process memory".to_owned(),
        };
        format!(
            "<troupe BufferView of {} bytes in {place}>",
            self.buffer.len()
        )
    }
}

/// The [`BufferView`] whose memory `obj` (a numpy array, a memoryview) views, following
/// `.base` and `.obj` links; `None` when it views anything else.
pub fn find_view<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, BufferView>> {
    let py = obj.py();
    let mut current = obj.clone();
    // numpy collapses base chains; a few links cover frombuffer + reshape + slicing.
    for _ in 0..8 {
        if let Ok(view) = current.cast::<BufferView>() {
            return Some(view.clone());
        }
        let next = match current.getattr(pyo3::intern!(py, "base")) {
            Ok(base) => base,
            Err(_) => current.getattr(pyo3::intern!(py, "obj")).ok()?,
        };
        if next.is_none() {
            return None;
        }
        current = next;
    }
    None
}
