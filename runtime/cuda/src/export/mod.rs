//! Exporting device buffers to other processes, and keeping them alive while they are used.

mod table;

use std::fmt;
use std::sync::atomic::Ordering;

use cudarc::driver::sys;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::buffer::CudaBuffer;
use crate::device::CudaDevice;
use crate::error::{CudaError, check};
use crate::teardown;
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
    // Destroyed before the buffer may be freed; `None` past [`MAX_LIVE_EVENTS`].
    _event: Option<ExportEvent>,
    buffer: CudaBuffer,
}

/// Interprocess events alive at most in this process. Each export holds one until it is
/// released; past this many, an export waits for its stream instead and sends the handle
/// of an event that has already completed (torch's IPC caps its events the same way).
pub const MAX_LIVE_EVENTS: usize = 1000;

/// Interprocess events alive now.
static LIVE_EVENTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

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
        let device_uuid = device.uuid()?;
        let _bound = device.bind()?;
        let (event, event_handle) = if LIVE_EVENTS.load(Ordering::Relaxed) < MAX_LIVE_EVENTS {
            let event = ExportEvent::record(device)?;
            let handle = event.ipc_handle()?;
            (Some(event), handle)
        } else {
            // Too many live events: the writes are done before the descriptor leaves, and
            // the importer waits on an event that has completed.
            order_after_legacy_stream(device)?;
            device.synchronize()?;
            (None, completed_event(device)?)
        };

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
            event_handle,
            offset: range.offset,
            size: buffer.len_bytes(),
            dtype: buffer.dtype(),
            shape: buffer.shape().to_vec(),
            device: device.ordinal() as u32,
            device_uuid,
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
        LIVE_EVENTS.fetch_add(1, Ordering::Relaxed);
        let event = ExportEvent {
            device: device.clone(),
            event,
        };
        // Our stream is non-blocking: work queued on the legacy default stream (a library
        // that uses it, `cudaMemcpy` without a stream) is not ordered before it by itself.
        order_after_legacy_stream(device)?;
        // SAFETY: event and stream belong to the current context.
        check("cuEventRecord", unsafe {
            sys::cuEventRecord(event.event, device.cu_stream())
        })?;
        Ok(event)
    }
}

impl ExportEvent {
    /// The event's interprocess handle (the context is current).
    fn ipc_handle(&self) -> Result<troupe_value::device::IpcHandle, CudaError> {
        let mut handle = sys::CUipcEventHandle { reserved: [0; 64] };
        // SAFETY: the event was created with CU_EVENT_INTERPROCESS in the current context.
        check("cuIpcGetEventHandle", unsafe {
            sys::cuIpcGetEventHandle(&mut handle, self.event)
        })?;
        Ok(crate::handle::from_event(handle))
    }
}

/// The handle of an interprocess event of `device` that has completed and is never recorded
/// again: made once per device (the context is current).
fn completed_event(device: &CudaDevice) -> Result<troupe_value::device::IpcHandle, CudaError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, PoisonError};
    static COMPLETED: Mutex<
        Option<HashMap<usize, (ExportEvent, troupe_value::device::IpcHandle)>>,
    > = Mutex::new(None);
    let mut completed = COMPLETED.lock().unwrap_or_else(PoisonError::into_inner);
    let events = completed.get_or_insert_with(HashMap::new);
    if let Some((_, handle)) = events.get(&device.ordinal()) {
        return Ok(*handle);
    }
    let event = ExportEvent::record(device)?;
    device.synchronize()?;
    let handle = event.ipc_handle()?;
    events.insert(device.ordinal(), (event, handle));
    Ok(handle)
}

/// Makes `device`'s stream wait for the work queued so far on the legacy default stream
/// (the context is current).
fn order_after_legacy_stream(device: &CudaDevice) -> Result<(), CudaError> {
    let mut marker = std::ptr::null_mut();
    // SAFETY: the context is current; `marker` outlives the call.
    check("cuEventCreate", unsafe {
        sys::cuEventCreate(
            &mut marker,
            sys::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32,
        )
    })?;
    // SAFETY: the null stream is the legacy default stream of the current context; the
    // marker is ours; destroying it after the wait is queued is allowed (the driver keeps
    // it until the wait is done).
    let recorded = check("cuEventRecord", unsafe {
        sys::cuEventRecord(marker, std::ptr::null_mut())
    })
    .and_then(|()| {
        check("cuStreamWaitEvent", unsafe {
            sys::cuStreamWaitEvent(device.cu_stream(), marker, 0)
        })
    });
    // SAFETY: as above.
    let destroyed = check("cuEventDestroy", unsafe { sys::cuEventDestroy_v2(marker) });
    recorded.and(destroyed)
}

impl Drop for ExportEvent {
    fn drop(&mut self) {
        LIVE_EVENTS.fetch_sub(1, Ordering::Relaxed);
        let destroyed = self.device.bind().and_then(|_bound| {
            // SAFETY: the context is current; the event is ours and destroyed once. Work
            // still waiting on it completes: the driver frees it afterwards.
            check("cuEventDestroy", unsafe {
                sys::cuEventDestroy_v2(self.event)
            })
        });
        if let Err(e) = destroyed {
            teardown::failed(&e, format_args!("could not destroy an exported CUDA event"));
        }
    }
}
