//! A CUDA device as this crate uses it: its primary context and one stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use cudarc::driver::{CudaContext, CudaStream, sys};

use crate::driver::{device_count, ensure};
use crate::error::{CudaError, check};
use crate::teardown;

/// A device to allocate on and import into, with the stream on which this crate orders its
/// copies, exports and imports. Cheap to clone: clones share the context and the stream.
#[derive(Debug, Clone)]
pub struct CudaDevice {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
}

impl CudaDevice {
    /// Opens device `ordinal` (its primary context, shared with every other user of the
    /// device in this process) with a new non-blocking stream.
    ///
    /// # Errors
    /// [`CudaError::NoDriver`] without a driver (never a panic), [`CudaError::InvalidDevice`]
    /// for an ordinal this process does not see, [`CudaError::Driver`] otherwise.
    pub fn open(ordinal: usize) -> Result<CudaDevice, CudaError> {
        ensure()?;
        let count = device_count()?;
        if ordinal >= count {
            return Err(CudaError::InvalidDevice { ordinal, count });
        }
        // cudarc makes the context current: the caller's comes back after.
        let _restore = Restore::save()?;
        let ctx = CudaContext::new(ordinal).map_err(|e| CudaError::Driver {
            call: "cuDevicePrimaryCtxRetain",
            code: e.0,
        })?;
        let stream = ctx.new_stream().map_err(|e| CudaError::Driver {
            call: "cuStreamCreate",
            code: e.0,
        })?;
        Ok(CudaDevice { ctx, stream })
    }

    /// Device `ordinal` as troupe's connections share it in this process: opened once (one
    /// stream for every connection's imports and exports), then the same clone each time.
    ///
    /// # Errors
    /// As [`CudaDevice::open`].
    pub fn shared(ordinal: usize) -> Result<CudaDevice, CudaError> {
        static SHARED: Mutex<Option<HashMap<usize, CudaDevice>>> = Mutex::new(None);
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        let devices = shared.get_or_insert_with(HashMap::new);
        if let Some(device) = devices.get(&ordinal) {
            return Ok(device.clone());
        }
        let device = CudaDevice::open(ordinal)?;
        devices.insert(ordinal, device.clone());
        Ok(device)
    }

    /// Device `uuid` as this process numbers it, opened as [`CudaDevice::shared`] does.
    ///
    /// # Errors
    /// [`CudaError::UnknownDevice`] when this process does not see it (its
    /// `CUDA_VISIBLE_DEVICES` hides it); as [`CudaDevice::open`] otherwise.
    pub fn shared_by_uuid(uuid: [u8; 16]) -> Result<CudaDevice, CudaError> {
        CudaDevice::shared(ordinal_with_uuid(uuid, device_count()?, uuid_of)?)
    }

    /// The device's UUID, the same in every process.
    ///
    /// # Errors
    /// [`CudaError::Driver`] when the driver cannot say.
    pub fn uuid(&self) -> Result<[u8; 16], CudaError> {
        uuid_of(self.ordinal())
    }

    /// The device's ordinal in this process.
    pub fn ordinal(&self) -> usize {
        self.ctx.ordinal()
    }

    /// The cudarc context, for work this crate does not do (kernels, libraries).
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// The stream on which this crate orders its work on the device. Work of your own on
    /// buffers of this crate must be on it, or ordered with it, for exports and drops to wait
    /// for it.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Waits until all work queued on [`CudaDevice::stream`] is done.
    ///
    /// # Errors
    /// [`CudaError::Driver`] when the stream or an earlier operation on it failed.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        let _bound = self.bind()?;
        // SAFETY: the context is current and the stream belongs to it.
        check("cuStreamSynchronize", unsafe {
            sys::cuStreamSynchronize(self.cu_stream())
        })
    }

    /// Waits until all work queued in the device's primary context is done, on every stream
    /// of every library that uses it (the producer of borrowed memory may have written on any
    /// of them).
    ///
    /// # Errors
    /// [`CudaError::Driver`] when some earlier work failed.
    pub fn synchronize_context(&self) -> Result<(), CudaError> {
        let _bound = self.bind()?;
        // SAFETY: the context is current.
        check("cuCtxSynchronize", unsafe { sys::cuCtxSynchronize() })
    }

    /// The raw handle of [`CudaDevice::stream`] as an integer: what a DLPack producer is given
    /// as its consumer's stream (`__dlpack__(stream=...)`), so that the producer orders its
    /// writes before this stream's work.
    pub fn stream_handle(&self) -> u64 {
        self.cu_stream() as u64
    }

    /// Waits until the work queued on a stream of another library is done, the stream named
    /// as the CUDA array interface (v3) and DLPack name streams: 1 the legacy default stream,
    /// 2 the per-thread default stream, anything else a `CUstream` of this device's context.
    ///
    /// # Safety
    /// `stream` must be 1, 2, or a live stream of this device's context: a producer's stream,
    /// as its `__cuda_array_interface__` gives it.
    ///
    /// # Errors
    /// [`CudaError::Driver`] when the stream or earlier work on it failed.
    pub unsafe fn synchronize_foreign_stream(&self, stream: u64) -> Result<(), CudaError> {
        let _bound = self.bind()?;
        // CU_STREAM_LEGACY and CU_STREAM_PER_THREAD are the handles 1 and 2.
        let handle = stream as usize as sys::CUstream;
        // SAFETY: the context is current; the caller vouches for the stream.
        check("cuStreamSynchronize", unsafe {
            sys::cuStreamSynchronize(handle)
        })
    }

    /// Makes the context current on this thread, as every raw driver call needs, until the
    /// returned guard drops: then the thread's context is the one it had before (the
    /// caller's own, e.g. torch's after `torch.cuda.set_device(1)`, is never changed).
    pub(crate) fn bind(&self) -> Result<Restore, CudaError> {
        let restore = Restore::save()?;
        self.ctx.bind_to_thread().map_err(|e| CudaError::Driver {
            call: "cuCtxSetCurrent",
            code: e.0,
        })?;
        Ok(restore)
    }

    /// The raw stream handle.
    pub(crate) fn cu_stream(&self) -> sys::CUstream {
        self.stream.cu_stream()
    }
}

/// The ordinal, among `count` devices whose UUIDs `uuid_of` gives, of the device `uuid`.
fn ordinal_with_uuid(
    uuid: [u8; 16],
    count: usize,
    uuid_of: impl Fn(usize) -> Result<[u8; 16], CudaError>,
) -> Result<usize, CudaError> {
    for ordinal in 0..count {
        if uuid_of(ordinal)? == uuid {
            return Ok(ordinal);
        }
    }
    Err(CudaError::UnknownDevice { uuid })
}

/// The UUID of device `ordinal` of this process.
fn uuid_of(ordinal: usize) -> Result<[u8; 16], CudaError> {
    ensure()?;
    let ordinal = std::ffi::c_int::try_from(ordinal).map_err(|_| CudaError::Driver {
        call: "cuDeviceGet",
        code: sys::CUresult::CUDA_ERROR_INVALID_DEVICE,
    })?;
    let mut device: sys::CUdevice = 0;
    // SAFETY: the driver is initialised; `device` outlives the call.
    check("cuDeviceGet", unsafe {
        sys::cuDeviceGet(&raw mut device, ordinal)
    })?;
    let mut uuid = sys::CUuuid { bytes: [0; 16] };
    // SAFETY: as above; `uuid` outlives the call.
    check("cuDeviceGetUuid", unsafe {
        sys::cuDeviceGetUuid(&raw mut uuid, device)
    })?;
    Ok(uuid.bytes.map(|b| b as u8))
}

/// The thread's current CUDA context when it was made, made current again when it drops.
#[derive(Debug)]
#[must_use = "the context is restored when this drops"]
pub(crate) struct Restore {
    previous: sys::CUcontext,
}

impl Restore {
    /// Remembers the thread's current context (none is a null context).
    ///
    /// # Errors
    /// [`CudaError::Driver`] when the driver cannot say.
    pub(crate) fn save() -> Result<Restore, CudaError> {
        let mut previous: sys::CUcontext = std::ptr::null_mut();
        // SAFETY: the driver is initialised (every caller went through `ensure`), and
        // `previous` outlives the call.
        check("cuCtxGetCurrent", unsafe {
            sys::cuCtxGetCurrent(&raw mut previous)
        })?;
        Ok(Restore { previous })
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: `previous` was current on this thread (or null, which unbinds); a context
        // destroyed meanwhile is refused by the driver with an error, logged.
        let code = unsafe { sys::cuCtxSetCurrent(self.previous) };
        if let Err(e) = check("cuCtxSetCurrent", code) {
            teardown::failed(&e, format_args!("cannot restore the thread's CUDA context"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process that sees three devices, UUIDs `[10; 16]`, `[11; 16]`, `[12; 16]`: what a
    /// `CUDA_VISIBLE_DEVICES` other than the exporter's leaves visible, numbered from 0.
    fn table(ordinal: usize) -> Result<[u8; 16], CudaError> {
        Ok([10 + ordinal as u8; 16])
    }

    #[test]
    fn a_device_is_found_by_uuid_whatever_its_ordinal_elsewhere() {
        assert_eq!(ordinal_with_uuid([12; 16], 3, table), Ok(2));
        assert_eq!(ordinal_with_uuid([10; 16], 3, table), Ok(0));
        assert_eq!(
            ordinal_with_uuid([12; 16], 2, table),
            Err(CudaError::UnknownDevice { uuid: [12; 16] }),
            "a device this process does not see"
        );
        let failing = |_| {
            Err(CudaError::Driver {
                call: "cuDeviceGetUuid",
                code: sys::CUresult::CUDA_ERROR_UNKNOWN,
            })
        };
        assert!(matches!(
            ordinal_with_uuid([10; 16], 1, failing),
            Err(CudaError::Driver { .. })
        ));
    }
}
