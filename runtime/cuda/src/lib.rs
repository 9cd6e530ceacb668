//! CUDA buffers for troupe: device allocations that pass between actors of one process as a
//! pointer, and to other processes as a CUDA IPC handle, never as a copy.
//!
//! ```
//! use troupe_cuda::{CudaBuffer, CudaDevice, CudaError, DType, Exports, PeerId};
//!
//! # fn main() -> Result<(), CudaError> {
//! let device = match CudaDevice::open(0) {
//!     Ok(device) => device,
//!     // Without a driver every entry point says so; nothing panics.
//!     Err(CudaError::NoDriver) => return Ok(()),
//!     Err(e) => return Err(e),
//! };
//! let buffer = CudaBuffer::from_host(&device, DType::U8, &[4], &[1, 2, 3, 4])?;
//! let local = buffer.clone(); // another actor of this process: same allocation
//!
//! let mut exports = Exports::new();
//! let child = PeerId(7);
//! let descriptor = exports.export(&buffer, child)?;
//! // ... send `descriptor` to the child; it imports it with `Importer::import`, and when it
//! // drops the import, `Importer::take_releases` gives the `Release` it sends back:
//! # let release = troupe_cuda::Release { export_id: descriptor.export_id };
//! assert!(exports.release(child, release)?);
//! # drop(local);
//! # Ok(())
//! # }
//! ```
//!
//! # Who owns a buffer, and when it is freed
//!
//! - A [`CudaBuffer`] is one `cuMemAlloc` allocation in this process, reference counted:
//!   clones share it, and the last clone dropped frees it (after waiting for the device's
//!   stream). Within a process a buffer is passed as such a clone, never as an IPC handle
//!   (CUDA cannot open a handle in the process that made it).
//! - [`Exports::export`] puts a clone of the buffer and a fresh interprocess event into the
//!   exporter's [`Exports`] table, with one hold by the peer the descriptor goes to. So the
//!   allocation lives, whatever the exporter's own code drops, until every peer it was sent
//!   to has released it: [`Exports::release`] takes a hold off, and the last one drops the
//!   table's clone (and frees the allocation if the exporter holds no other clone).
//! - The importer maps a peer's allocation once per process and device ([`Importer`] caches
//!   mappings by memory handle and device, counting the imports that use each). Each
//!   [`ImportedBuffer`] is one received descriptor; when its last clone is dropped, the
//!   importer waits for its device's stream, closes the mapping if no other import uses it,
//!   and only then makes the [`Release`] due ([`Importer::take_releases`]), so the exporter
//!   never frees memory the importer may still touch. A failed import makes its release due
//!   at once.
//! - When an importer crashes, its releases never come: the exporter calls
//!   [`Exports::peer_gone`] once it knows the process is dead, which drops every hold of that
//!   peer and frees what only it held. The driver drops a dead process's mappings itself.
//! - A release that matches no hold (sent twice, or after `peer_gone`) is refused with a
//!   typed [`ExportError`]: a peer cannot free what another peer still uses.
//!
//! # Stream order
//!
//! Each [`CudaDevice`] has one stream on which this crate orders copies, exports and imports.
//! An export records its event on the buffer's device stream, after everything queued there
//! so far; an import makes the importer's stream wait on that event. Writes of your own must
//! be queued on that stream (or ordered before it) before exporting, and reads of an import
//! queued on the importer's stream.
//!
//! # Without a GPU
//!
//! The driver is loaded at run time. [`driver_available`] says whether it is here; without
//! it every call that needs it returns [`CudaError::NoDriver`] (cudarc itself would panic,
//! so this crate checks first).

#![warn(missing_docs, unreachable_pub)]

mod buffer;
mod device;
mod driver;
mod error;
mod export;
mod handle;
mod import;
mod plane;
mod teardown;

pub use buffer::CudaBuffer;
pub use device::CudaDevice;
pub use driver::{device_count, device_of, driver_available};
pub use error::CudaError;
pub use export::{ExportError, Exports, MAX_LIVE_EVENTS, PeerId, Release};
pub use import::{ImportedBuffer, Importer};
pub use plane::{CudaPlane, DeviceMemory, Import};
pub use teardown::teardown_errors;
pub use troupe_value::DType;
pub use troupe_value::device::{
    CudaIpcDescriptor, DescriptorError, ExportId, IPC_HANDLE_LEN, IpcHandle,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn send_and_sync<T: Send + Sync>() {}

    #[test]
    fn buffers_and_tables_can_move_between_threads() {
        send_and_sync::<CudaDevice>();
        send_and_sync::<CudaBuffer>();
        send_and_sync::<Exports>();
        send_and_sync::<Importer>();
        send_and_sync::<ImportedBuffer>();
        send_and_sync::<CudaError>();
    }
}
