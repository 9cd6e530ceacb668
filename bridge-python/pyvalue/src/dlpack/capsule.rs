//! DLPack capsules: the structs, a capsule that hands a troupe array (CUDA, or a host array
//! in a venv without numpy) to a consumer (`torch.from_dlpack`), and reading a producer's
//! capsule (a tensor of a library without `__cuda_array_interface__`).
//!
//! Layout from `dlpack.h` (v0.8+, unversioned `DLManagedTensor` in a `"dltensor"` capsule,
//! which every consumer accepts).

use std::ffi::{CStr, c_void};

use pyo3::ffi;
use pyo3::prelude::*;
use troupe_value::DType;

/// The name of an unconsumed capsule.
const DLTENSOR: &CStr = c"dltensor";

#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct DLDevice {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct DLDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

#[repr(C)]
struct DLTensor {
    data: *mut c_void,
    device: DLDevice,
    ndim: i32,
    dtype: DLDataType,
    shape: *mut i64,
    strides: *mut i64,
    byte_offset: u64,
}

#[repr(C)]
struct DLManagedTensor {
    dl_tensor: DLTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

// The C layout of dlpack.h on 64-bit targets.
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(std::mem::size_of::<DLTensor>() == 48);
    assert!(std::mem::size_of::<DLManagedTensor>() == 64);
    assert!(std::mem::offset_of!(DLTensor, shape) == 24);
    assert!(std::mem::offset_of!(DLTensor, byte_offset) == 40);
};

const KDL_INT: u8 = 0;
const KDL_UINT: u8 = 1;
const KDL_FLOAT: u8 = 2;
const KDL_BOOL: u8 = 6;

/// DLPack's name for a dtype.
fn data_type(dtype: DType) -> DLDataType {
    let code = match dtype {
        DType::Bool => KDL_BOOL,
        DType::U8 | DType::U16 | DType::U32 | DType::U64 => KDL_UINT,
        DType::I8 | DType::I16 | DType::I32 | DType::I64 => KDL_INT,
        DType::F16 | DType::F32 | DType::F64 => KDL_FLOAT,
    };
    DLDataType {
        code,
        bits: (dtype.itemsize() * 8) as u8,
        lanes: 1,
    }
}

/// The dtype DLPack names, if troupe has it.
fn dtype_of(data: DLDataType) -> Option<DType> {
    if data.lanes != 1 {
        return None;
    }
    DType::ALL.into_iter().find(|&d| {
        let ours = data_type(d);
        ours.code == data.code && ours.bits == data.bits
    })
}

/// What the capsule's tensor owns: the shape it points at and what keeps the memory alive.
struct Context {
    shape: Vec<i64>,
    _keep: Box<dyn Send>,
}

unsafe extern "C" fn delete_managed(managed: *mut DLManagedTensor) {
    if managed.is_null() {
        return;
    }
    // SAFETY: made by `export_capsule` with `Box::into_raw`, deleted once (by the consumer
    // through this deleter, or by the capsule's destructor when nobody consumed it).
    let managed = unsafe { Box::from_raw(managed) };
    // SAFETY: `manager_ctx` is the `Box<Context>` made with the tensor.
    drop(unsafe { Box::from_raw(managed.manager_ctx.cast::<Context>()) });
}

unsafe extern "C" fn capsule_destructor(capsule: *mut ffi::PyObject) {
    // A consumer renames the capsule ("used_dltensor") and calls the deleter itself.
    // SAFETY: called by Python with the capsule being destroyed.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, DLTENSOR.as_ptr()) == 1 {
            let managed = ffi::PyCapsule_GetPointer(capsule, DLTENSOR.as_ptr());
            delete_managed(managed.cast());
        }
    }
}

/// A `"dltensor"` capsule of a C-contiguous array at `ptr` on device `device` of
/// `device_type` (`kDLCUDA`, `kDLCPU`); `keep` keeps the memory alive until the consumer
/// calls the deleter (or nobody consumed it).
pub(crate) fn export_capsule<'py>(
    py: Python<'py>,
    ptr: u64,
    device_type: i32,
    device: u32,
    dtype: DType,
    shape: &[u64],
    keep: Box<dyn Send>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut context = Box::new(Context {
        shape: shape.iter().map(|&d| d as i64).collect(),
        _keep: keep,
    });
    let managed = Box::new(DLManagedTensor {
        dl_tensor: DLTensor {
            data: ptr as *mut c_void,
            device: DLDevice {
                device_type,
                device_id: device as i32,
            },
            ndim: context.shape.len() as i32,
            dtype: data_type(dtype),
            shape: context.shape.as_mut_ptr(),
            // NULL: C-contiguous.
            strides: std::ptr::null_mut(),
            byte_offset: 0,
        },
        manager_ctx: Box::into_raw(context).cast(),
        deleter: Some(delete_managed),
    });
    let managed = Box::into_raw(managed);
    // SAFETY: `managed` is a valid tensor owned by the capsule until consumed; the name is a
    // static C string; the destructor frees the tensor unless a consumer took it.
    unsafe {
        let capsule =
            ffi::PyCapsule_New(managed.cast(), DLTENSOR.as_ptr(), Some(capsule_destructor));
        if capsule.is_null() {
            delete_managed(managed);
        }
        Bound::from_owned_ptr_or_err(py, capsule)
    }
}

/// A producer's tensor as read from its capsule.
#[derive(Debug)]
pub(crate) struct Tensor {
    /// Address of the first element (`data + byte_offset`).
    pub(crate) ptr: u64,
    /// `kDLCUDA`, `kDLCPU`, ...
    pub(crate) device_type: i32,
    /// The dtype, when troupe has it.
    pub(crate) dtype: Option<DType>,
    /// Shape in elements.
    pub(crate) shape: Vec<u64>,
    /// Whether the elements are C-contiguous.
    pub(crate) contiguous: bool,
    /// Strides in elements, when the producer gave them (none: C-contiguous).
    pub(crate) strides: Option<Vec<i64>>,
}

/// Reads the tensor of an unconsumed `"dltensor"` capsule without consuming it: the capsule
/// (kept alive by the caller) still owns it and frees it when collected.
pub(crate) fn read_capsule(capsule: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    // SAFETY: `PyCapsule_GetPointer` checks the object is a capsule of this name (setting an
    // exception otherwise); the tensor then lives as long as the capsule, which `capsule`
    // borrows for the duration of this call.
    let managed = unsafe { ffi::PyCapsule_GetPointer(capsule.as_ptr(), DLTENSOR.as_ptr()) };
    if managed.is_null() {
        return Err(PyErr::fetch(capsule.py()));
    }
    // SAFETY: as above: a valid `DLManagedTensor` by the DLPack contract.
    let t = unsafe { &(*managed.cast::<DLManagedTensor>()).dl_tensor };
    let ndim = usize::try_from(t.ndim).unwrap_or(0);
    // SAFETY: `shape` has `ndim` entries and `strides` is NULL or has `ndim` entries.
    let (shape, strides) = unsafe {
        let shape = if ndim == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(t.shape, ndim)
        };
        let strides = (!t.strides.is_null()).then(|| std::slice::from_raw_parts(t.strides, ndim));
        (shape, strides)
    };
    let shape: Vec<u64> = shape.iter().map(|&d| d.max(0) as u64).collect();
    Ok(Tensor {
        ptr: (t.data as u64).wrapping_add(t.byte_offset),
        device_type: t.device.device_type,
        dtype: dtype_of(t.dtype),
        contiguous: strides.is_none_or(|s| is_c_contiguous(&shape, s)),
        strides: strides.map(<[i64]>::to_vec),
        shape,
    })
}

/// Whether `strides` (in elements) are those of a C-contiguous array of `shape`; dimensions
/// of length 1 may have any stride.
pub(crate) fn is_c_contiguous(shape: &[u64], strides: &[i64]) -> bool {
    let mut expected: i64 = 1;
    for (&dim, &stride) in shape.iter().zip(strides).rev() {
        if dim != 1 && stride != expected {
            return false;
        }
        expected = expected.saturating_mul(dim as i64);
    }
    true
}
