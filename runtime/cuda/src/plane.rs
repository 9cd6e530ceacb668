//! CUDA arrays over a troupe connection: [`CudaPlane`] is the
//! [`DevicePlane`](troupe_value::device::DevicePlane) of one connection, and
//! [`DeviceMemory`] the memory behind a [`DeviceArray`] value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use cudarc::driver::sys;
use troupe_value::device::{
    CudaIpcDescriptor, DeviceArray, DeviceError, DeviceOwner, DevicePlane, ExportId,
    ExportReleases, LocalMemory, WireArray,
};

use crate::buffer::CudaBuffer;
use crate::device::CudaDevice;
use crate::driver::driver_available;
use crate::error::CudaError;
use crate::export::{Exports, PeerId, Release};
use crate::import::{ImportedBuffer, Importer};
use crate::teardown;

/// One connection's CUDA IPC: an [`Exports`] table for what this process sent the peer, and
/// an [`Importer`] for what the peer sent. Give it to the connection (`troupe-protocol`'s
/// `Ledger::with_devices`).
///
/// Each connection has its own importer, so that the releases of its imports go back over
/// it; no allocation reaches a process over two connections, since an imported array cannot
/// be sent on ([`DeviceError::Forwarded`]).
#[derive(Debug)]
pub struct CudaPlane {
    /// Tells this plane's imports from other planes'.
    id: u64,
    peer: PeerId,
    exports: Mutex<Exports>,
    importer: Importer,
}

impl CudaPlane {
    /// The plane of a connection to `peer` (how the exports table names it).
    pub fn new(peer: PeerId) -> CudaPlane {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        CudaPlane {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            peer,
            exports: Mutex::new(Exports::new()),
            importer: Importer::new(),
        }
    }

    fn exports(&self) -> MutexGuard<'_, Exports> {
        self.exports.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn import_buffer(&self, descriptor: &CudaIpcDescriptor) -> Result<ImportedBuffer, CudaError> {
        // By UUID: the peer may number the devices otherwise (its CUDA_VISIBLE_DEVICES).
        let device = CudaDevice::shared_by_uuid(descriptor.device_uuid)?;
        let buffer = self.importer.import(descriptor, &device)?;
        // The stream now waits for the exporter's writes; wait for it here, so that any
        // library of this process (on any stream) sees them.
        device.synchronize()?;
        Ok(buffer)
    }
}

impl CudaPlane {
    /// Whether device address `ptr` lies in memory this plane imported from its peer (which
    /// CUDA cannot export again).
    pub fn imported(&self, ptr: u64) -> bool {
        self.importer.maps(ptr)
    }
}

impl DevicePlane for CudaPlane {
    fn export(&self, array: &DeviceArray) -> Result<WireArray, DeviceError> {
        let owner = array.owner()?;
        if let Some(import) = owner.downcast_ref::<Import>() {
            // Back to the peer it came from: its own memory, no new export. Anywhere else: a
            // mapping cannot be exported again.
            return match &import.buffer {
                Some(buffer) if import.plane == self.id => {
                    // No event travels with an echo: this process's writes to the memory
                    // (in place, on any stream of any library) must be done before the
                    // exporter reads it.
                    buffer
                        .device()
                        .synchronize_context()
                        .map_err(DeviceError::export)?;
                    Ok(WireArray::Returned {
                        export_id: buffer.export_id(),
                        dtype: array.dtype(),
                        shape: array.shape().to_vec(),
                        device: import.peer_device,
                    })
                }
                _ => Err(DeviceError::Forwarded),
            };
        }
        let buffer = owner
            .downcast_ref::<CudaBuffer>()
            .ok_or(DeviceError::UnknownMemory)?;
        self.exports()
            .export(buffer, self.peer)
            .map(WireArray::Exported)
            .map_err(DeviceError::export)
    }

    fn returned(&self, export: ExportId) -> Result<(LocalMemory, u64), DeviceError> {
        let exports = self.exports();
        let buffer = exports
            .buffer(export, self.peer)
            .ok_or(DeviceError::UnknownExport(export))?;
        let memory = LocalMemory {
            owner: Arc::new(buffer.clone()),
            device: ordinal_u32(buffer.device()),
        };
        Ok((memory, buffer.len_bytes()))
    }

    fn import(
        &self,
        descriptor: &CudaIpcDescriptor,
        releases: &Arc<dyn ExportReleases>,
    ) -> Result<LocalMemory, DeviceError> {
        let export = descriptor.export_id;
        if !driver_available() {
            releases.release_export(export);
            return Err(DeviceError::NoDriver);
        }
        match self.import_buffer(descriptor) {
            Ok(buffer) => Ok(LocalMemory {
                // The device it was matched to by UUID, as this process numbers it.
                device: ordinal_u32(buffer.device()),
                owner: Arc::new(Import {
                    plane: self.id,
                    peer_device: descriptor.device,
                    buffer: Some(buffer),
                    importer: self.importer.clone(),
                    releases: Arc::downgrade(releases),
                }),
            }),
            Err(e) => {
                // A failed import made its release due (or never reached the importer).
                let due = self.importer.take_releases();
                if !due.iter().any(|r| r.export_id == export) {
                    releases.release_export(export);
                }
                due.iter()
                    .for_each(|r| releases.release_export(r.export_id));
                Err(DeviceError::import(export, e))
            }
        }
    }

    fn released(&self, exports: &[ExportId]) -> usize {
        let mut table = self.exports();
        exports
            .iter()
            .filter(|&&export_id| table.release(self.peer, Release { export_id }).is_ok())
            .count()
    }

    fn exported(&self) -> usize {
        self.exports().len()
    }

    fn peer_gone(&self) -> usize {
        self.exports().peer_gone(self.peer)
    }
}

/// A peer's array imported over a connection: the owner of a received [`DeviceArray`].
/// When the last clone of the array drops, it waits for all work of this process on the
/// device, closes the import and queues its release for the connection to send.
#[derive(Debug)]
pub struct Import {
    /// The plane that imported it: the only one it may be sent back over.
    plane: u64,
    /// The exporter's ordinal of the device.
    peer_device: u32,
    buffer: Option<ImportedBuffer>,
    importer: Importer,
    releases: Weak<dyn ExportReleases>,
}

impl Import {
    /// The imported buffer. A clone of it kept after the array's last clone is dropped
    /// delays the release: it is sent when the next import of the connection ends.
    pub fn buffer(&self) -> Option<&ImportedBuffer> {
        self.buffer.as_ref()
    }
}

impl Drop for Import {
    /// The teardown waits for the device: it runs on the reaper thread, never on the thread
    /// that dropped the last clone (an actor's, or one holding the GIL).
    fn drop(&mut self) {
        let Some(buffer) = self.buffer.take() else {
            return;
        };
        let importer = self.importer.clone();
        let releases = self.releases.clone();
        reaper::run(Box::new(move || {
            // Any library of this process may still read the memory on a stream of its own.
            if let Err(e) = buffer.device().synchronize_context() {
                teardown::failed(
                    &e,
                    format_args!(
                        "releasing import {} whose device failed",
                        buffer.export_id()
                    ),
                );
            }
            drop(buffer);
            let due = importer.take_releases();
            if let Some(releases) = releases.upgrade() {
                due.iter()
                    .for_each(|r| releases.release_export(r.export_id));
            }
        }));
    }
}

/// The thread that ends imports: a device synchronisation, the unmapping, the releases.
mod reaper {
    use std::sync::mpsc::{Sender, channel};
    use std::sync::{Mutex, OnceLock, PoisonError};

    type Job = Box<dyn FnOnce() + Send>;

    /// Runs `job` on the reaper thread (started on first use), in order; where no thread
    /// can be started, here.
    pub(super) fn run(job: Job) {
        static REAPER: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();
        let reaper = REAPER.get_or_init(|| {
            let (tx, rx) = channel::<Job>();
            std::thread::Builder::new()
                .name("troupe-cuda-reaper".into())
                .spawn(move || rx.into_iter().for_each(|job| job()))
                .ok()
                .map(|_| Mutex::new(tx))
        });
        let job = match reaper {
            Some(tx) => match tx.lock().unwrap_or_else(PoisonError::into_inner).send(job) {
                Ok(()) => return,
                Err(unsent) => unsent.0,
            },
            None => job,
        };
        job();
    }
}

/// `device`'s ordinal in this process as values carry it (the driver numbers devices with a
/// C `int`, so it always fits).
fn ordinal_u32(device: &CudaDevice) -> u32 {
    u32::try_from(device.ordinal()).unwrap_or(u32::MAX)
}

/// The memory behind a [`DeviceArray`] of this process.
#[derive(Debug, Clone, Copy)]
pub enum DeviceMemory<'a> {
    /// A buffer of this process (its own allocation, or memory it borrowed).
    Owned(&'a CudaBuffer),
    /// A peer's buffer imported over a connection.
    Imported(&'a ImportedBuffer),
}

impl<'a> DeviceMemory<'a> {
    /// The memory of `array`.
    ///
    /// # Errors
    /// Why this process cannot use it ([`DeviceError::NoDriver`], [`DeviceError::Import`],
    /// [`DeviceError::NotImported`]), or [`DeviceError::UnknownMemory`] for an owner that is
    /// not this crate's.
    pub fn of(array: &'a DeviceArray) -> Result<DeviceMemory<'a>, DeviceError> {
        let owner = array.owner()?;
        if let Some(buffer) = owner.downcast_ref::<CudaBuffer>() {
            return Ok(DeviceMemory::Owned(buffer));
        }
        owner
            .downcast_ref::<Import>()
            .and_then(Import::buffer)
            .map(DeviceMemory::Imported)
            .ok_or(DeviceError::UnknownMemory)
    }

    /// The device address of the first byte.
    pub fn device_ptr(&self) -> sys::CUdeviceptr {
        match self {
            DeviceMemory::Owned(b) => b.device_ptr(),
            DeviceMemory::Imported(b) => b.device_ptr(),
        }
    }

    /// The device that holds (or maps) the memory.
    pub fn device(&self) -> &'a CudaDevice {
        match self {
            DeviceMemory::Owned(b) => b.device(),
            DeviceMemory::Imported(b) => b.device(),
        }
    }

    /// The contents, copied to a new vector after the work queued on the device's stream.
    ///
    /// # Errors
    /// As [`CudaBuffer::to_host`].
    pub fn to_host(&self) -> Result<Vec<u8>, CudaError> {
        match self {
            DeviceMemory::Owned(b) => b.to_host(),
            DeviceMemory::Imported(b) => b.to_host(),
        }
    }
}

impl CudaBuffer {
    /// The buffer as a value: a [`DeviceArray`] passed between actors of this process as the
    /// buffer itself, and exported when a connection sends it to another process.
    ///
    /// # Errors
    /// None in practice (the shape was checked when the buffer was made):
    /// [`CudaError::Descriptor`].
    pub fn to_device_array(&self) -> Result<DeviceArray, CudaError> {
        let owner: DeviceOwner = Arc::new(self.clone());
        Ok(DeviceArray::local(
            owner,
            self.dtype(),
            self.shape().to_vec(),
            ordinal_u32(self.device()),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use troupe_value::DType;
    use troupe_value::device::{IPC_HANDLE_LEN, IpcHandle};

    /// Releases a connection would send, kept.
    #[derive(Default)]
    struct Owed(Mutex<Vec<ExportId>>);

    impl ExportReleases for Owed {
        fn release_export(&self, export: ExportId) {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(export);
        }
    }

    #[test]
    fn without_a_driver_an_import_fails_typed_and_releases_at_once() {
        if driver_available() {
            println!("skipped: a CUDA driver is present");
            return;
        }
        let plane = CudaPlane::new(PeerId(1));
        let owed = Arc::new(Owed::default());
        let releases: Arc<dyn ExportReleases> = owed.clone();
        let descriptor = CudaIpcDescriptor {
            mem_handle: IpcHandle([1; IPC_HANDLE_LEN]),
            event_handle: IpcHandle([2; IPC_HANDLE_LEN]),
            offset: 0,
            size: 4,
            dtype: DType::F32,
            shape: vec![1],
            device: 0,
            device_uuid: [0; 16],
            export_id: ExportId(5),
        };
        assert!(matches!(
            plane.import(&descriptor, &releases),
            Err(DeviceError::NoDriver)
        ));
        assert_eq!(
            *owed.0.lock().unwrap_or_else(PoisonError::into_inner),
            vec![ExportId(5)]
        );
        assert_eq!(plane.exported(), 0);
        assert_eq!(plane.released(&[ExportId(5)]), 0, "no such export: ignored");
    }
}
