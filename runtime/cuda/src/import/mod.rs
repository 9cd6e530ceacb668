//! Importing device buffers that other processes exported.

mod cache;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cudarc::driver::sys;
use troupe_value::DType;

use crate::buffer::copy_to_host;
use crate::device::CudaDevice;
use crate::error::{CudaError, check};
use crate::export::Release;
use crate::teardown;
use troupe_value::device::{CudaIpcDescriptor, DescriptorError, ExportId, IpcHandle};

use crate::handle;
use cache::{MappingCache, MappingKey};

/// The importer's side of CUDA IPC in one process: the mappings of peers' allocations, each
/// opened once per device and closed when the last import using it is dropped, and the
/// releases owed to exporters. Clones share all of it; use one per process.
#[derive(Debug, Clone)]
pub struct Importer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    mappings: Mutex<MappingCache<Mapping>>,
    releases: Mutex<Vec<Release>>,
}

impl Shared {
    fn mappings(&self) -> MutexGuard<'_, MappingCache<Mapping>> {
        // The cache stays consistent across a panic elsewhere: no partial updates.
        self.mappings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push_release(&self, export_id: ExportId) {
        let mut releases = self.releases.lock().unwrap_or_else(PoisonError::into_inner);
        releases.push(Release { export_id });
    }
}

impl Importer {
    /// An importer with nothing open.
    pub fn new() -> Importer {
        Importer {
            shared: Arc::new(Shared {
                mappings: Mutex::new(MappingCache::new()),
                releases: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Imports a peer's buffer on `device`: maps its allocation (or reuses the mapping that is
    /// already open), checks that the buffer lies inside it, and makes `device`'s stream wait
    /// for the exporter's event, so that work queued on that stream afterwards sees the
    /// exporter's writes. `device` is normally the descriptor's device; another one maps it
    /// through peer access.
    ///
    /// Whatever the outcome, one [`Release`] for this descriptor becomes due: at once when
    /// the import fails, else when the last clone of the returned buffer is dropped. Collect
    /// them with [`Importer::take_releases`] and send them to the exporter.
    ///
    /// # Errors
    /// [`CudaError::Descriptor`] for an inconsistent descriptor;
    /// [`CudaError::OpenMemHandle`] when the handle does not open (the exporter freed it, or
    /// it comes from this very process: pass the [`CudaBuffer`](crate::CudaBuffer) itself
    /// within a process); [`CudaError::OpenEventHandle`] when the event cannot be waited on.
    pub fn import(
        &self,
        descriptor: &CudaIpcDescriptor,
        device: &CudaDevice,
    ) -> Result<ImportedBuffer, CudaError> {
        let (key, base, mapped) = match self.map(descriptor, device) {
            Ok(mapping) => mapping,
            Err(e) => {
                self.shared.push_release(descriptor.export_id);
                return Err(e);
            }
        };
        // From here on dropping `import` gives the mapping back and reports the release.
        let import = ImportInner {
            shared: Arc::clone(&self.shared),
            key,
            device: device.clone(),
            ptr: base.wrapping_add(descriptor.offset),
            size: descriptor.size,
            dtype: descriptor.dtype,
            shape: descriptor.shape.clone(),
            export_id: descriptor.export_id,
        };
        descriptor.check_within(mapped)?;
        wait_for_event(device, descriptor.event_handle)?;
        Ok(ImportedBuffer {
            inner: Arc::new(import),
        })
    }

    /// Validates the descriptor and takes one reference to the mapping of its allocation on
    /// `device`: its key, base address and size.
    fn map(
        &self,
        descriptor: &CudaIpcDescriptor,
        device: &CudaDevice,
    ) -> Result<(MappingKey, sys::CUdeviceptr, u64), CudaError> {
        descriptor.validate()?;
        let _bound = device.bind()?;
        let key = MappingKey {
            handle: descriptor.mem_handle,
            device: device.ordinal(),
        };
        let mut mappings = self.shared.mappings();
        let mapping = mappings.acquire(key, || Mapping::open(device, descriptor.mem_handle))?;
        Ok((key, mapping.base, mapping.size))
    }

    /// The releases due since the last call, oldest first, for the caller to send to the
    /// exporters (this crate does not know the transport).
    pub fn take_releases(&self) -> Vec<Release> {
        let mut releases = self
            .shared
            .releases
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *releases)
    }

    /// Whether device address `ptr` lies in a peer's allocation this importer has mapped:
    /// memory that cannot be exported again (a view of an imported array).
    pub fn maps(&self, ptr: u64) -> bool {
        self.shared
            .mappings()
            .mappings()
            .any(|m| ptr >= m.base && ptr - m.base < m.size)
    }

    /// Peers' allocations mapped in this process now.
    pub fn open_mappings(&self) -> usize {
        self.shared.mappings().len()
    }

    /// Imports alive that use the mapping of `handle` on device `ordinal`.
    pub fn mapping_refs(&self, handle: IpcHandle, ordinal: usize) -> usize {
        self.shared.mappings().refs(&MappingKey {
            handle,
            device: ordinal,
        })
    }
}

impl Default for Importer {
    fn default() -> Importer {
        Importer::new()
    }
}

/// A peer's device buffer, mapped into this process. Clones are cheap and share the import;
/// when the last one is dropped, the device's stream is waited for, the mapping is closed if
/// no other import uses it, and the release becomes due (see [`Importer::take_releases`]).
#[derive(Debug, Clone)]
pub struct ImportedBuffer {
    inner: Arc<ImportInner>,
}

impl ImportedBuffer {
    /// The device address of the buffer's first byte (the mapping's base plus the
    /// descriptor's offset), valid while this import lives. Use it on the device's stream.
    pub fn device_ptr(&self) -> sys::CUdeviceptr {
        self.inner.ptr
    }

    /// Size in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.inner.size
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.inner.dtype
    }

    /// Shape in elements, C order.
    pub fn shape(&self) -> &[u64] {
        &self.inner.shape
    }

    /// The device it is mapped on; its stream waits for the exporter's writes.
    pub fn device(&self) -> &CudaDevice {
        &self.inner.device
    }

    /// The export this import answers.
    pub fn export_id(&self) -> ExportId {
        self.inner.export_id
    }

    /// Copies the buffer into `bytes`, after the exporter's writes and all work queued on the
    /// device's stream, and returns once the copy is done.
    ///
    /// # Errors
    /// [`CudaError::LengthMismatch`] unless `bytes` is exactly the buffer's size;
    /// [`CudaError::Driver`] when the copy fails.
    pub fn copy_to_host(&self, bytes: &mut [u8]) -> Result<(), CudaError> {
        let i = &self.inner;
        copy_to_host(&i.device, i.ptr, i.size, bytes)
    }

    /// The buffer's contents, copied to a new vector.
    ///
    /// # Errors
    /// As [`ImportedBuffer::copy_to_host`].
    pub fn to_host(&self) -> Result<Vec<u8>, CudaError> {
        let len = usize::try_from(self.inner.size).map_err(|_| DescriptorError::ShapeOverflow {
            shape: self.inner.shape.clone(),
            dtype: self.inner.dtype,
        })?;
        let mut bytes = vec![0; len];
        self.copy_to_host(&mut bytes)?;
        Ok(bytes)
    }
}

#[derive(Debug)]
struct ImportInner {
    shared: Arc<Shared>,
    key: MappingKey,
    device: CudaDevice,
    ptr: sys::CUdeviceptr,
    size: u64,
    dtype: DType,
    shape: Vec<u64>,
    export_id: ExportId,
}

impl Drop for ImportInner {
    fn drop(&mut self) {
        // Work queued on our stream may still read the memory; the exporter may free it as
        // soon as it gets the release.
        if let Err(e) = self.device.synchronize() {
            teardown::failed(
                &e,
                format_args!("releasing import {} whose stream failed", self.export_id),
            );
        }
        {
            let mut mappings = self.shared.mappings();
            // Closed under the lock: a concurrent import of the same handle must not try to
            // open it while it is still mapped.
            drop(mappings.release(&self.key));
        }
        self.shared.push_release(self.export_id);
    }
}

/// A peer's allocation mapped on one of our devices; closed when dropped.
#[derive(Debug)]
struct Mapping {
    device: CudaDevice,
    base: sys::CUdeviceptr,
    size: u64,
}

impl Mapping {
    /// Maps the allocation behind `handle` on `device` (whose context is current).
    fn open(device: &CudaDevice, handle: IpcHandle) -> Result<Mapping, CudaError> {
        let mut base = 0;
        let flags = sys::CUipcMem_flags::CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS as u32;
        // SAFETY: the context is current; the driver validates the handle's bytes.
        let code = unsafe { sys::cuIpcOpenMemHandle_v2(&mut base, handle::to_mem(handle), flags) };
        if code != sys::CUresult::CUDA_SUCCESS {
            return Err(CudaError::OpenMemHandle {
                device: device.ordinal(),
                code,
            });
        }
        let mut mapping = Mapping {
            device: device.clone(),
            base,
            size: 0,
        };
        let (mut start, mut size) = (0, 0);
        // SAFETY: the context is current and `base` was just mapped.
        check("cuMemGetAddressRange", unsafe {
            sys::cuMemGetAddressRange_v2(&mut start, &mut size, base)
        })?;
        mapping.size = size as u64;
        Ok(mapping)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let closed = self.device.bind().and_then(|_bound| {
            // SAFETY: the context is current, `base` came from cuIpcOpenMemHandle and no
            // import uses it any more (the cache counted them).
            check("cuIpcCloseMemHandle", unsafe {
                sys::cuIpcCloseMemHandle(self.base)
            })
        });
        if let Err(e) = closed {
            teardown::failed(&e, format_args!("could not close a CUDA IPC mapping"));
        }
    }
}

/// Makes `device`'s stream wait for the exporter's event behind `handle`.
fn wait_for_event(device: &CudaDevice, handle: IpcHandle) -> Result<(), CudaError> {
    let failed = |call, code| CudaError::OpenEventHandle {
        device: device.ordinal(),
        call,
        code,
    };
    let _bound = device.bind()?;
    let mut event = std::ptr::null_mut();
    // SAFETY: the context is current; the driver validates the handle's bytes.
    let code = unsafe { sys::cuIpcOpenEventHandle(&mut event, handle::to_event(handle)) };
    if code != sys::CUresult::CUDA_SUCCESS {
        return Err(failed("cuIpcOpenEventHandle", code));
    }
    // SAFETY: event and stream belong to the current context.
    let waited = unsafe { sys::cuStreamWaitEvent(device.cu_stream(), event, 0) };
    // The wait is enqueued with the event's state now: our copy of it can go at once.
    // SAFETY: the event was opened above and is destroyed once.
    let destroyed = unsafe { sys::cuEventDestroy_v2(event) };
    if waited != sys::CUresult::CUDA_SUCCESS {
        return Err(failed("cuStreamWaitEvent", waited));
    }
    check("cuEventDestroy", destroyed)
}
