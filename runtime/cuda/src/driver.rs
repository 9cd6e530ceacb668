//! Whether a CUDA driver is here, and the one-time set-up before any driver call.
//!
//! cudarc loads `libcuda` on first use and panics when it is missing, so every path into the
//! driver goes through [`ensure`] first.

use std::sync::OnceLock;

use cudarc::driver::sys;

use crate::error::{CudaError, check};

/// Every driver entry point this crate or the parts of cudarc it uses may call. Checked once,
/// so an old driver is a [`CudaError::MissingSymbol`], not a panic inside cudarc.
const SYMBOLS: &[&str] = &[
    "cuInit",
    "cuDeviceGetCount",
    "cuDeviceGet",
    "cuDeviceGetUuid",
    "cuDeviceGetAttribute",
    "cuDevicePrimaryCtxRetain",
    "cuDevicePrimaryCtxRelease_v2",
    "cuCtxSetCurrent",
    "cuCtxGetCurrent",
    "cuCtxSynchronize",
    "cuStreamCreate",
    "cuStreamDestroy_v2",
    "cuStreamSynchronize",
    "cuStreamWaitEvent",
    "cuMemAlloc_v2",
    "cuMemFree_v2",
    "cuMemcpyHtoDAsync_v2",
    "cuMemcpyDtoHAsync_v2",
    "cuMemsetD8Async",
    "cuMemGetAddressRange_v2",
    "cuPointerGetAttribute",
    "cuIpcGetMemHandle",
    "cuIpcOpenMemHandle_v2",
    "cuIpcCloseMemHandle",
    "cuIpcGetEventHandle",
    "cuIpcOpenEventHandle",
    "cuEventCreate",
    "cuEventRecord",
    "cuEventDestroy_v2",
    "cuGetErrorName",
    "cuGetErrorString",
];

/// Whether a usable CUDA driver library is on this machine (it says nothing about devices:
/// see [`device_count`]). Cheap after the first call.
pub fn driver_available() -> bool {
    library().is_ok()
}

/// How many CUDA devices this process sees (`CUDA_VISIBLE_DEVICES` applies).
///
/// # Errors
/// [`CudaError::NoDriver`] without a driver, [`CudaError::Driver`] when it fails to start.
pub fn device_count() -> Result<usize, CudaError> {
    ensure()?;
    let mut count = 0;
    // SAFETY: the driver is loaded and initialised (`ensure`); `count` outlives the call.
    check("cuDeviceGetCount", unsafe {
        sys::cuDeviceGetCount(&mut count)
    })?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// The ordinal of the device that holds device memory at `ptr` (memory of any library of
/// this process: a tensor's data pointer).
///
/// # Errors
/// [`CudaError::NoDriver`] without a driver, [`CudaError::Driver`] for a pointer the driver
/// does not know (`CUDA_ERROR_INVALID_VALUE`: host memory, freed memory).
pub fn device_of(ptr: sys::CUdeviceptr) -> Result<usize, CudaError> {
    ensure()?;
    match ordinal_of(ptr) {
        // No context on this thread: any device's answers for every pointer (unified
        // addressing); the thread's own (none) comes back after.
        Err(CudaError::Driver {
            code: sys::CUresult::CUDA_ERROR_INVALID_CONTEXT,
            ..
        }) => {
            let _bound = crate::CudaDevice::shared(0)?.bind()?;
            ordinal_of(ptr)
        }
        answer => answer,
    }
}

/// The ordinal `cuPointerGetAttribute` gives for `ptr`.
fn ordinal_of(ptr: sys::CUdeviceptr) -> Result<usize, CudaError> {
    let mut ordinal: std::ffi::c_int = -1;
    // SAFETY: the driver is initialised; `ordinal` is an int, the attribute's type, and
    // outlives the call.
    check("cuPointerGetAttribute", unsafe {
        sys::cuPointerGetAttribute(
            (&raw mut ordinal).cast(),
            sys::CUpointer_attribute::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
            ptr,
        )
    })?;
    usize::try_from(ordinal).map_err(|_| CudaError::Driver {
        call: "cuPointerGetAttribute",
        code: sys::CUresult::CUDA_ERROR_INVALID_VALUE,
    })
}

/// Loads the driver and initialises it, once per process; afterwards any driver call is safe
/// from cudarc's load panics.
pub(crate) fn ensure() -> Result<(), CudaError> {
    static INIT: OnceLock<Result<(), CudaError>> = OnceLock::new();
    INIT.get_or_init(|| {
        library()?;
        // SAFETY: the library and all of SYMBOLS are present.
        check("cuInit", unsafe { sys::cuInit(0) })
    })
    .clone()
}

/// Whether `libcuda` loads and has every entry point in [`SYMBOLS`]; checked once.
fn library() -> Result<(), CudaError> {
    static LIBRARY: OnceLock<Result<(), CudaError>> = OnceLock::new();
    LIBRARY
        .get_or_init(|| {
            // SAFETY: loading `libcuda` runs its initialisers, which is what every CUDA
            // program does; nothing of ours runs concurrently with them.
            if !unsafe { sys::is_culib_present() } {
                return Err(CudaError::NoDriver);
            }
            // SAFETY: just checked that a library loads, so `culib` does not panic.
            let lib = unsafe { sys::culib() };
            for &name in SYMBOLS {
                // SAFETY: only the symbol's presence is checked; the pointer is not called.
                if unsafe { lib.get::<*const ()>(name.as_bytes()) }.is_err() {
                    return Err(CudaError::MissingSymbol(name));
                }
            }
            Ok(())
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_driver_is_an_error_not_a_panic() {
        if driver_available() {
            println!("skipped: a CUDA driver is present");
            return;
        }
        assert_eq!(ensure(), Err(CudaError::NoDriver));
        assert_eq!(device_count(), Err(CudaError::NoDriver));
    }
}
