//! Device allocations owned by this process.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

use cudarc::driver::sys;
use troupe_value::DType;

use crate::device::CudaDevice;
use crate::error::{CudaError, check};
use crate::teardown;
use troupe_value::device::{DescriptorError, IpcHandle, byte_len, check_range};

use crate::handle;

/// A typed array in device memory of this process. Clones are cheap and share the
/// allocation: that is how a buffer passes between actors of one process (the pointer, never
/// an IPC handle). The allocation is freed when the last clone is dropped, and an export
/// holds a clone (see the crate docs).
///
/// Copies and exports are ordered on the device's stream ([`CudaDevice::stream`]); writes of
/// your own must be on it too, or ordered before an export.
#[derive(Debug, Clone)]
pub struct CudaBuffer {
    inner: Arc<BufferInner>,
}

#[derive(Debug)]
struct BufferInner {
    allocation: Allocation,
    dtype: DType,
    shape: Vec<u64>,
    /// The IPC handle of the allocation and our offset in it, taken on first export: every
    /// export of the buffer names it by the same bytes, which importers cache by.
    ipc: OnceLock<IpcRange>,
}

/// Where a buffer lies for CUDA IPC: the handle of the allocation's base, and the offset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IpcRange {
    pub(crate) handle: IpcHandle,
    pub(crate) offset: u64,
}

/// One `cuMemAlloc` allocation, or device memory of someone else's that a keeper keeps
/// alive. Not cudarc's `CudaSlice`: that one comes from the stream ordered allocator
/// (`cuMemAllocAsync`) where the device supports it, and memory from a pool cannot be
/// exported with `cuIpcGetMemHandle`.
#[derive(Debug)]
struct Allocation {
    device: CudaDevice,
    ptr: sys::CUdeviceptr,
    len: u64,
    /// `None`: ours, freed on drop; else what keeps borrowed memory alive, dropped instead.
    keeper: Option<Keeper>,
}

/// What keeps borrowed device memory alive (a Python tensor, another library's buffer).
struct Keeper {
    _kept: Box<dyn Any + Send + Sync>,
}

impl fmt::Debug for Keeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keeper(..)")
    }
}

impl CudaBuffer {
    /// Allocates room for `shape` elements of `dtype` on `device`; the contents are
    /// unspecified until written.
    ///
    /// # Errors
    /// [`CudaError::Descriptor`] for a shape too large to address, [`CudaError::Driver`]
    /// (`CUDA_ERROR_OUT_OF_MEMORY`, ...) when the allocation fails.
    pub fn alloc(
        device: &CudaDevice,
        dtype: DType,
        shape: &[u64],
    ) -> Result<CudaBuffer, CudaError> {
        let len = byte_len(dtype, shape)?;
        let bytes = usize::try_from(len).map_err(|_| DescriptorError::ShapeOverflow {
            shape: shape.to_vec(),
            dtype,
        })?;
        let _bound = device.bind()?;
        let mut ptr = 0;
        // cuMemAlloc rejects 0 bytes; an empty array still gets an address of its own.
        // SAFETY: the context is current; `ptr` outlives the call.
        check("cuMemAlloc", unsafe {
            sys::cuMemAlloc_v2(&mut ptr, bytes.max(1))
        })?;
        Ok(CudaBuffer::over(
            Allocation {
                device: device.clone(),
                ptr,
                len,
                keeper: None,
            },
            dtype,
            shape,
        ))
    }

    fn over(allocation: Allocation, dtype: DType, shape: &[u64]) -> CudaBuffer {
        CudaBuffer {
            inner: Arc::new(BufferInner {
                allocation,
                dtype,
                shape: shape.to_vec(),
                ipc: OnceLock::new(),
            }),
        }
    }

    /// A buffer over device memory this crate did not allocate (a tensor of a Python
    /// library, another allocator's block): `shape` elements of `dtype` from `ptr`, kept
    /// alive by `keeper`, which is dropped (after the device's stream is waited for) when the
    /// last clone of the buffer goes. It can be exported like any buffer: the export finds the
    /// allocation that holds `ptr` (`cuMemGetAddressRange`: the block of a caching allocator).
    ///
    /// # Safety
    /// `ptr` must be device memory of `device`'s context, valid for the buffer's size in bytes
    /// for as long as `keeper` lives, and allocated with `cuMemAlloc` (or an allocator built
    /// on it) if the buffer is to be exported.
    ///
    /// # Errors
    /// [`CudaError::Descriptor`] for a shape too large to address.
    pub unsafe fn borrowed(
        device: &CudaDevice,
        ptr: sys::CUdeviceptr,
        dtype: DType,
        shape: &[u64],
        keeper: Box<dyn Any + Send + Sync>,
    ) -> Result<CudaBuffer, CudaError> {
        let len = byte_len(dtype, shape)?;
        Ok(CudaBuffer::over(
            Allocation {
                device: device.clone(),
                ptr,
                len,
                keeper: Some(Keeper { _kept: keeper }),
            },
            dtype,
            shape,
        ))
    }

    /// Allocates a buffer on `device` holding `bytes`, which must be exactly the size of
    /// `shape` elements of `dtype`. Returns once the copy is done.
    ///
    /// # Errors
    /// [`CudaError::LengthMismatch`] for a slice of the wrong length, else as
    /// [`CudaBuffer::alloc`] and [`CudaBuffer::copy_from_host`].
    pub fn from_host(
        device: &CudaDevice,
        dtype: DType,
        shape: &[u64],
        bytes: &[u8],
    ) -> Result<CudaBuffer, CudaError> {
        let len = byte_len(dtype, shape)?;
        if len != bytes.len() as u64 {
            return Err(CudaError::LengthMismatch {
                device: len,
                host: bytes.len() as u64,
            });
        }
        let buffer = CudaBuffer::alloc(device, dtype, shape)?;
        buffer.copy_from_host(bytes)?;
        Ok(buffer)
    }

    /// Overwrites the buffer with `bytes`, on the device's stream, and returns once the copy
    /// is done. Every clone sees the new contents.
    ///
    /// # Errors
    /// [`CudaError::LengthMismatch`] unless `bytes` is exactly the buffer's size;
    /// [`CudaError::Driver`] when the copy fails.
    pub fn copy_from_host(&self, bytes: &[u8]) -> Result<(), CudaError> {
        let a = &self.inner.allocation;
        host_len_matches(a.len, bytes.len())?;
        if bytes.is_empty() {
            return Ok(());
        }
        let _bound = a.device.bind()?;
        // SAFETY: the context is current, `a.ptr` is a live allocation of `bytes.len()` bytes,
        // and `bytes` stays borrowed until the stream is synchronised below.
        check("cuMemcpyHtoDAsync", unsafe {
            sys::cuMemcpyHtoDAsync_v2(
                a.ptr,
                bytes.as_ptr().cast(),
                bytes.len(),
                a.device.cu_stream(),
            )
        })?;
        a.device.synchronize()
    }

    /// Copies the buffer into `bytes`, after all work queued on the device's stream, and
    /// returns once the copy is done.
    ///
    /// # Errors
    /// [`CudaError::LengthMismatch`] unless `bytes` is exactly the buffer's size;
    /// [`CudaError::Driver`] when the copy fails.
    pub fn copy_to_host(&self, bytes: &mut [u8]) -> Result<(), CudaError> {
        let a = &self.inner.allocation;
        copy_to_host(&a.device, a.ptr, a.len, bytes)
    }

    /// The buffer's contents, copied to a new vector.
    ///
    /// # Errors
    /// As [`CudaBuffer::copy_to_host`].
    pub fn to_host(&self) -> Result<Vec<u8>, CudaError> {
        let mut bytes = vec![0; self.inner.allocation.len as usize];
        self.copy_to_host(&mut bytes)?;
        Ok(bytes)
    }

    /// The device address of the first byte, for kernels and libraries. Valid while this
    /// buffer (or a clone) lives.
    pub fn device_ptr(&self) -> sys::CUdeviceptr {
        self.inner.allocation.ptr
    }

    /// Size in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.inner.allocation.len
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.inner.dtype
    }

    /// Shape in elements, C order.
    pub fn shape(&self) -> &[u64] {
        &self.inner.shape
    }

    /// The device that holds the buffer.
    pub fn device(&self) -> &CudaDevice {
        &self.inner.allocation.device
    }

    /// The IPC handle of the allocation holding the buffer (its base, from
    /// `cuMemGetAddressRange`) and the buffer's offset in it; asked of the driver once.
    pub(crate) fn ipc_range(&self) -> Result<IpcRange, CudaError> {
        if let Some(range) = self.inner.ipc.get() {
            return Ok(*range);
        }
        let device = self.device();
        let _bound = device.bind()?;
        let ptr = self.device_ptr();
        let (mut base, mut allocation) = (0, 0);
        // SAFETY: the context is current; `ptr` is a live allocation (we hold the buffer).
        check("cuMemGetAddressRange", unsafe {
            sys::cuMemGetAddressRange_v2(&mut base, &mut allocation, ptr)
        })?;
        let offset = ptr.wrapping_sub(base);
        check_range(offset, self.len_bytes(), allocation as u64)?;
        let mut handle = sys::CUipcMemHandle { reserved: [0; 64] };
        // SAFETY: the context is current and `base` is the start of a live allocation.
        check("cuIpcGetMemHandle", unsafe {
            sys::cuIpcGetMemHandle(&mut handle, base)
        })?;
        let range = IpcRange {
            handle: handle::from_mem(handle),
            offset,
        };
        // Two threads may race here; both computed the same thing, the first one stays.
        Ok(*self.inner.ipc.get_or_init(|| range))
    }

    /// How many clones of this buffer exist, exports included.
    pub fn holders(&self) -> usize {
        Arc::strong_count(&self.inner)
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        // The stream may still read or write the memory: wait for it before freeing.
        let waited = self.device.synchronize();
        if let Some(keeper) = self.keeper.take() {
            if let Err(e) = waited {
                teardown::failed(
                    &e,
                    format_args!("giving back borrowed CUDA memory whose stream failed"),
                );
            }
            drop(keeper);
            return;
        }
        let freed = waited.and_then(|()| {
            let _bound = self.device.bind()?;
            // SAFETY: the context is current, nothing is queued on our stream, and no clone
            // of the buffer is left to use `ptr`.
            check("cuMemFree", unsafe { sys::cuMemFree_v2(self.ptr) })
        });
        if let Err(e) = freed {
            teardown::failed(
                &e,
                format_args!(
                    "leaking a CUDA allocation of {} bytes that could not be freed",
                    self.len
                ),
            );
        }
    }
}

/// Checks that a host slice of `host` bytes matches a device range of `device` bytes.
fn host_len_matches(device: u64, host: usize) -> Result<(), CudaError> {
    if device == host as u64 {
        Ok(())
    } else {
        Err(CudaError::LengthMismatch {
            device,
            host: host as u64,
        })
    }
}

/// Copies `len` bytes at `ptr` on `device` into `bytes`, after the work queued on its stream.
pub(crate) fn copy_to_host(
    device: &CudaDevice,
    ptr: sys::CUdeviceptr,
    len: u64,
    bytes: &mut [u8],
) -> Result<(), CudaError> {
    host_len_matches(len, bytes.len())?;
    if bytes.is_empty() {
        return Ok(());
    }
    let _bound = device.bind()?;
    // SAFETY: the context is current, `ptr` is mapped for `len` bytes (the caller holds
    // it), and `bytes` stays borrowed until the stream is synchronised below.
    check("cuMemcpyDtoHAsync", unsafe {
        sys::cuMemcpyDtoHAsync_v2(
            bytes.as_mut_ptr().cast(),
            ptr,
            bytes.len(),
            device.cu_stream(),
        )
    })?;
    device.synchronize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lengths_must_match_exactly() {
        assert_eq!(host_len_matches(16, 16), Ok(()));
        assert_eq!(
            host_len_matches(16, 15),
            Err(CudaError::LengthMismatch {
                device: 16,
                host: 15
            })
        );
    }
}
