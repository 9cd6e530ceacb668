//! Exporting device buffers to other processes, and keeping them alive while they are used.

mod table;

use std::fmt;

use cudarc::driver::sys;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::buffer::CudaBuffer;
use crate::device::CudaDevice;
use crate::error::{CudaError, check};
use table::ExportTable;
use troupe_value::device::{CudaIpcDescriptor, ExportId};

/// The process a descriptor was sent to, as the transport names it (a child's id, a pid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer {}", self.0)
    }
}

/// What an importer sends back when it no longer uses an imported buffer: one per
/// descriptor it received. Made by [`Importer`](crate::Importer), applied by
/// [`Exports::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Release {
    /// The export released.
    pub export_id: ExportId,
}

/// Why the exports table refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ExportError {
    /// No export with this id is alive: it was never made, or every hold on it is gone.
    #[error("{0} is not alive")]
    UnknownExport(ExportId),
    /// The peer has no hold on this export (a release it sent twice, or after
    /// [`Exports::peer_gone`]).
    #[error("{peer} holds no {export}")]
    NotHeld {
        /// The export named.
        export: ExportId,
        /// The peer that named it.
        peer: PeerId,
    },
}

/// The exporter's side of CUDA IPC: every buffer exported and not yet released by every
/// peer it was sent to. An entry holds a clone of the buffer (so the allocation outlives the
/// importers' use of it) and the IPC event of the export. Dropping the table drops every
/// entry: only do that once the peers are gone.
#[derive(Debug)]
pub struct Exports {
    table: ExportTable<Exported>,
}

/// What an export keeps alive.
#[derive(Debug)]
struct Exported {
    // Destroyed before the buffer may be freed.
    _event: ExportEvent,
    buffer: CudaBuffer,
}

impl Exports {
    /// An empty table.
    pub fn new() -> Exports {
        Exports {
            table: ExportTable::new(),
        }
    }

    /// Exports `buffer` to `peer`: takes the IPC handle of the allocation that holds it,
    /// records an IPC event after all work queued so far on its device's stream, and keeps
    /// both alive with one hold by `peer` until [`Exports::release`] or
    /// [`Exports::peer_gone`]. Send the descriptor to `peer` once.
    ///
    /// # Errors
    /// [`CudaError::Driver`] when the driver refuses (memory that is not IPC capable, such as
    /// memory from a stream-ordered pool, gives `CUDA_ERROR_INVALID_VALUE` or
    /// `CUDA_ERROR_NOT_SUPPORTED`); [`CudaError::Descriptor`] if the driver reports an
    /// allocation that does not contain the buffer.
    pub fn export(
        &mut self,
        buffer: &CudaBuffer,
        peer: PeerId,
    ) -> Result<CudaIpcDescriptor, CudaError> {
        let range = buffer.ipc_range()?;
        let device = buffer.device();
        let _bound = device.bind()?;
        let event = ExportEvent::record(device)?;
        let mut event_handle = sys::CUipcEventHandle { reserved: [0; 64] };
        // SAFETY: the event was created with CU_EVENT_INTERPROCESS in the current context.
        check("cuIpcGetEventHandle", unsafe {
            sys::cuIpcGetEventHandle(&mut event_handle, event.event)
        })?;

        let export_id = self.table.insert(
            Exported {
                _event: event,
                buffer: buffer.clone(),
            },
            peer,
        );
        tracing::debug!(%export_id, %peer, bytes = buffer.len_bytes(), "exported a CUDA buffer");
        Ok(CudaIpcDescriptor {
            mem_handle: range.handle,
            event_handle: crate::handle::from_event(event_handle),
            offset: range.offset,
            size: buffer.len_bytes(),
            dtype: buffer.dtype(),
            shape: buffer.shape().to_vec(),
            device: device.ordinal() as u32,
            device_uuid: device.uuid()?,
            export_id,
        })
    }

    /// Adds a hold by `peer` on an export whose descriptor is sent once more (to it or to
    /// another peer); each send is answered by its own release.
    ///
    /// # Errors
    /// [`ExportError::UnknownExport`] when the export is no longer alive.
    pub fn hold(&mut self, export_id: ExportId, peer: PeerId) -> Result<(), ExportError> {
        self.table.hold(export_id, peer)
    }

    /// Applies a release that `peer` sent. Returns true when that was the last hold, so the
    /// export's event and its clone of the buffer were dropped (freeing the allocation if no
    /// other clone exists; that waits for the device's stream).
    ///
    /// # Errors
    /// [`ExportError::UnknownExport`] or [`ExportError::NotHeld`] for a release that matches
    /// no hold: a confused or malicious peer cannot free what another peer still uses.
    pub fn release(&mut self, peer: PeerId, release: Release) -> Result<bool, ExportError> {
        let ended = self.table.release(release.export_id, peer)?.is_some();
        Ok(ended)
    }

    /// Drops every hold of a peer that is gone (crashed, killed, disconnected): what only it
    /// held is freed. Returns how many exports ended. Call it once the peer's process is
    /// known dead: a live peer could still be reading.
    pub fn peer_gone(&mut self, peer: PeerId) -> usize {
        let ended = self.table.peer_gone(peer).len();
        if ended > 0 {
            tracing::debug!(%peer, ended, "reclaimed CUDA exports of a peer that is gone");
        }
        ended
    }

    /// The buffer of an export `peer` holds (one it sent back, for instance).
    pub fn buffer(&self, export_id: ExportId, peer: PeerId) -> Option<&CudaBuffer> {
        self.table.held_by(export_id, peer).map(|e| &e.buffer)
    }

    /// Holds of `peer` on an export (0 when it has none or the export ended).
    pub fn holds(&self, export_id: ExportId, peer: PeerId) -> u32 {
        self.table.holds(export_id, peer)
    }

    /// Exports alive (held by some peer).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no export is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Exports {
    fn default() -> Exports {
        Exports::new()
    }
}

/// An interprocess event recorded after the exporter's writes; importers wait on it. It must
/// outlive their opened copies (using an IPC event after the exporter destroyed it is
/// undefined), so the export keeps it.
#[derive(Debug)]
struct ExportEvent {
    device: CudaDevice,
    event: sys::CUevent,
}

// SAFETY: a CUevent is a handle the driver lets any thread use once the context is current,
// which every use here ensures first.
unsafe impl Send for ExportEvent {}
// SAFETY: as above; no method mutates through `&self`.
unsafe impl Sync for ExportEvent {}

impl ExportEvent {
    /// Creates an interprocess event and records it on `device`'s stream.
    fn record(device: &CudaDevice) -> Result<ExportEvent, CudaError> {
        let flags = sys::CUevent_flags::CU_EVENT_INTERPROCESS as u32
            | sys::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32;
        let mut event = std::ptr::null_mut();
        // SAFETY: the context is current (the caller bound it); `event` outlives the call.
        check("cuEventCreate", unsafe {
            sys::cuEventCreate(&mut event, flags)
        })?;
        let event = ExportEvent {
            device: device.clone(),
            event,
        };
        // SAFETY: event and stream belong to the current context.
        check("cuEventRecord", unsafe {
            sys::cuEventRecord(event.event, device.cu_stream())
        })?;
        Ok(event)
    }
}

impl Drop for ExportEvent {
    fn drop(&mut self) {
        let destroyed = self.device.bind().and_then(|_bound| {
            // SAFETY: the context is current; the event is ours and destroyed once. Work
            // still waiting on it completes: the driver frees it afterwards.
            check("cuEventDestroy", unsafe {
                sys::cuEventDestroy_v2(self.event)
            })
        });
        if let Err(e) = destroyed {
            tracing::warn!(error = %e, "could not destroy an exported CUDA event");
        }
    }
}
