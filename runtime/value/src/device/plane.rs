//! What a connection needs from a device library to carry device arrays.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use super::array::{DeviceArray, WireArray};
use super::descriptor::{CudaIpcDescriptor, ExportId};
use super::error::DeviceError;

/// What keeps the memory of a [`DeviceArray`] of this process alive: the device library's
/// buffer or import, type-erased so that this crate needs no CUDA.
pub type DeviceOwner = Arc<dyn Any + Send + Sync>;

/// One connection's CUDA IPC: exports this process's arrays to the peer and keeps them alive
/// until the peer releases them, and imports the peer's. `troupe_cuda::CudaPlane` implements
/// it; a connection (`troupe-protocol`) given one carries device arrays.
pub trait DevicePlane: Send + Sync + fmt::Debug {
    /// The wire form of `array` (of this process) for the peer: an export, which lives until
    /// the peer releases it ([`DevicePlane::released`]) or is gone
    /// ([`DevicePlane::peer_gone`]); or, for an import of the peer's own array, that array
    /// returned.
    ///
    /// # Errors
    /// [`DeviceError::Forwarded`] for an import of another peer's array,
    /// [`DeviceError::UnknownMemory`] for an owner the plane does not know,
    /// [`DeviceError::Export`] when the driver refuses.
    fn export(&self, array: &DeviceArray) -> Result<WireArray, DeviceError>;

    /// Imports a peer's array. Whatever the outcome, the release of `descriptor` is queued
    /// in `releases` when it is due: at once when the import fails, else when the last clone
    /// of the returned owner drops.
    ///
    /// # Errors
    /// [`DeviceError::NoDriver`] or [`DeviceError::Import`].
    fn import(
        &self,
        descriptor: &CudaIpcDescriptor,
        releases: &Arc<dyn ExportReleases>,
    ) -> Result<DeviceOwner, DeviceError>;

    /// The memory of this process's export `export`, which the peer sent back.
    ///
    /// # Errors
    /// [`DeviceError::UnknownExport`] when the peer holds no such export.
    fn returned(&self, export: ExportId) -> Result<DeviceOwner, DeviceError>;

    /// The peer released these exports (or a frame carrying them was never sent). Returns how
    /// many matched an export the peer held; the others are ignored.
    fn released(&self, exports: &[ExportId]) -> usize;

    /// Exports the peer holds now.
    fn exported(&self) -> usize;

    /// The peer is gone: drops every export it held. Returns how many ended.
    fn peer_gone(&self) -> usize;
}

/// Where the release of a peer's export goes once this process's import of it ended (or
/// failed): the connection the export came through, which owes the peer that release
/// (`troupe-protocol`'s `Releases`). Called from any thread, often from a destructor.
pub trait ExportReleases: Send + Sync {
    /// Queues a release of the peer's export `export`.
    fn release_export(&self, export: ExportId);
}

/// The connection whose frame the current thread decodes: its plane (none when it carries
/// no device arrays) and where the releases of what it imports go.
type Importing = Option<(Option<Arc<dyn DevicePlane>>, Arc<dyn ExportReleases>)>;

thread_local! {
    static IMPORTING: RefCell<Importing> = const { RefCell::new(None) };
}

/// Runs `f` (a decode of a peer's frame on a connection) with `plane` importing the device
/// arrays it meets, their releases going to `releases`. A connection without a plane refuses
/// them as a process without a driver does: each is unusable ([`DeviceError::NoPlane`]) and
/// its release is due at once.
pub fn with_plane<E: ExportReleases + 'static, R>(
    plane: Option<&Arc<dyn DevicePlane>>,
    releases: &Arc<E>,
    f: impl FnOnce() -> R,
) -> R {
    let releases: Arc<dyn ExportReleases> = releases.clone();
    let before = IMPORTING.replace(Some((plane.cloned(), releases)));
    let result = f();
    IMPORTING.set(before);
    result
}

/// Imports `wire` (or takes back this process's own array) with the plane of the connection
/// being decoded; `None` outside one.
pub(super) fn resolve(wire: &WireArray) -> Option<Result<DeviceOwner, DeviceError>> {
    let (plane, releases) = IMPORTING.with_borrow(Clone::clone)?;
    Some(match (plane, wire) {
        (Some(plane), WireArray::Exported(descriptor)) => plane.import(descriptor, &releases),
        (Some(plane), WireArray::Returned { export_id, .. }) => plane.returned(*export_id),
        (None, WireArray::Exported(descriptor)) => {
            releases.release_export(descriptor.export_id);
            Err(DeviceError::NoPlane)
        }
        // An echo is no hold: nothing to release.
        (None, WireArray::Returned { .. }) => Err(DeviceError::NoPlane),
    })
}
