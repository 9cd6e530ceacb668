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

/// Memory of this process that a peer's frame names (an import of the peer's array, or this
/// process's own export sent back), as a [`DevicePlane`] finds it.
#[derive(Clone)]
pub struct LocalMemory {
    /// What keeps the memory alive.
    pub owner: DeviceOwner,
    /// This process's ordinal of the device that holds or maps the memory: the array reports
    /// it, never the peer's, which may number its devices otherwise (its
    /// `CUDA_VISIBLE_DEVICES`).
    pub device: u32,
}

impl fmt::Debug for LocalMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalMemory(cuda:{})", self.device)
    }
}

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

    /// Imports a peer's array, on the device of this process with the descriptor's UUID.
    /// Whatever the outcome, the release of `descriptor` is queued in `releases` when it is
    /// due: at once when the import fails, else when the last clone of the returned owner
    /// drops.
    ///
    /// # Errors
    /// [`DeviceError::NoDriver`] or [`DeviceError::Import`].
    fn import(
        &self,
        descriptor: &CudaIpcDescriptor,
        releases: &Arc<dyn ExportReleases>,
    ) -> Result<LocalMemory, DeviceError>;

    /// The memory of this process's export `export`, which the peer sent back, and its
    /// length in bytes (what the peer may describe of it: no more).
    ///
    /// # Errors
    /// [`DeviceError::UnknownExport`] when the peer holds no such export.
    fn returned(&self, export: ExportId) -> Result<(LocalMemory, u64), DeviceError>;

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
pub(super) fn resolve(wire: &WireArray) -> Option<Result<LocalMemory, DeviceError>> {
    let (plane, releases) = IMPORTING.with_borrow(Clone::clone)?;
    Some(match (plane, wire) {
        (Some(plane), WireArray::Exported(descriptor)) => plane.import(descriptor, &releases),
        (
            Some(plane),
            WireArray::Returned {
                export_id,
                dtype,
                shape,
                ..
            },
        ) => plane.returned(*export_id).and_then(|(memory, exported)| {
            // A peer may describe the memory it was lent, never more.
            let claimed = super::descriptor::byte_len(*dtype, shape).unwrap_or(u64::MAX);
            if claimed > exported {
                return Err(DeviceError::ReturnedTooLarge {
                    export: *export_id,
                    claimed,
                    exported,
                });
            }
            Ok(memory)
        }),
        (None, WireArray::Exported(descriptor)) => {
            releases.release_export(descriptor.export_id);
            Err(DeviceError::NoPlane)
        }
        // An echo is no hold: nothing to release.
        (None, WireArray::Returned { .. }) => Err(DeviceError::NoPlane),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    /// A plane holding one export of 1 KiB, `ExportId(7)`, on its device 1; it imports the
    /// peer's export `ExportId(3)` on its device 0, whatever device the peer names.
    #[derive(Debug)]
    struct OneExport;

    impl DevicePlane for OneExport {
        fn export(&self, _: &DeviceArray) -> Result<WireArray, DeviceError> {
            Err(DeviceError::UnknownMemory)
        }

        fn import(
            &self,
            descriptor: &CudaIpcDescriptor,
            releases: &Arc<dyn ExportReleases>,
        ) -> Result<LocalMemory, DeviceError> {
            if descriptor.export_id == ExportId(3) {
                return Ok(LocalMemory {
                    owner: Arc::new(vec![0u8; 16]),
                    device: 0,
                });
            }
            releases.release_export(descriptor.export_id);
            Err(DeviceError::NoDriver)
        }

        fn returned(&self, export: ExportId) -> Result<(LocalMemory, u64), DeviceError> {
            let owner: DeviceOwner = Arc::new(vec![0u8; 1024]);
            match export {
                ExportId(7) => Ok((LocalMemory { owner, device: 1 }, 1024)),
                other => Err(DeviceError::UnknownExport(other)),
            }
        }

        fn released(&self, _: &[ExportId]) -> usize {
            0
        }

        fn exported(&self) -> usize {
            1
        }

        fn peer_gone(&self) -> usize {
            1
        }
    }

    struct NoReleases;

    impl ExportReleases for NoReleases {
        fn release_export(&self, _: ExportId) {}
    }

    /// What a peer's frame carrying `wire` decodes to on a connection with [`OneExport`].
    fn received(wire: WireArray) -> DeviceArray {
        let bytes = crate::encode(&DeviceArray::travelling(wire)).unwrap_or_default();
        let plane: Arc<dyn DevicePlane> = Arc::new(OneExport);
        with_plane(Some(&plane), &Arc::new(NoReleases), || {
            crate::decode::<DeviceArray>(&bytes).unwrap_or_else(|e| panic!("{e}"))
        })
    }

    fn returned(dtype: DType, shape: Vec<u64>) -> WireArray {
        WireArray::Returned {
            export_id: ExportId(7),
            dtype,
            shape,
            device: 0,
        }
    }

    #[test]
    fn a_returned_array_may_describe_its_export_and_no_more() {
        let whole = received(returned(DType::F32, vec![256]));
        assert!(whole.owner().is_ok(), "{whole:?}");
        let part = received(returned(DType::U8, vec![2, 8]));
        assert!(part.owner().is_ok(), "{part:?}");
        let larger = received(returned(DType::F32, vec![257]));
        assert!(
            matches!(
                larger.owner(),
                Err(DeviceError::ReturnedTooLarge {
                    claimed: 1028,
                    exported: 1024,
                    ..
                })
            ),
            "{larger:?}"
        );
        let unknown = received(WireArray::Returned {
            export_id: ExportId(8),
            dtype: DType::U8,
            shape: vec![1],
            device: 0,
        });
        assert!(matches!(
            unknown.owner(),
            Err(DeviceError::UnknownExport(ExportId(8)))
        ));
    }

    /// An import reports the device this process matched it to, never the exporter's
    /// ordinal (issue 16, M1: torch would label the tensor with another GPU); an echo reports
    /// the receiver's own buffer's device, whatever the peer claims.
    #[test]
    fn received_arrays_report_this_process_s_ordinal() {
        let descriptor = CudaIpcDescriptor {
            mem_handle: crate::device::IpcHandle([1; crate::device::IPC_HANDLE_LEN]),
            event_handle: crate::device::IpcHandle([2; crate::device::IPC_HANDLE_LEN]),
            offset: 0,
            size: 16,
            dtype: DType::U8,
            shape: vec![16],
            device: 3,
            device_uuid: [7; 16],
            export_id: ExportId(3),
        };
        let imported = received(WireArray::Exported(descriptor.clone()));
        assert!(imported.owner().is_ok(), "{imported:?}");
        assert_eq!(imported.device(), 0, "the importer's ordinal");
        let echoed = received(WireArray::Returned {
            export_id: ExportId(7),
            dtype: DType::U8,
            shape: vec![4],
            device: 5,
        });
        assert_eq!(echoed.device(), 1, "the receiver's own buffer's ordinal");
        let failed = received(WireArray::Exported(CudaIpcDescriptor {
            export_id: ExportId(4),
            ..descriptor.clone()
        }));
        assert!(failed.owner().is_err());
        assert_eq!(failed.device(), 3, "unusable: as the sender described it");
        let in_transit = DeviceArray::travelling(WireArray::Exported(descriptor));
        assert_eq!(in_transit.device(), 3, "in transit: the sender's numbering");
    }
}
