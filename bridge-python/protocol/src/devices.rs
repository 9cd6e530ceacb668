//! Device arrays in frames: exported when a frame is sealed, their releases applied when the
//! peer's frames are opened.

use std::sync::Arc;

use troupe_value::device::{DeviceArray, DeviceError, DevicePlane, ExportId, WireArray};

use crate::Frame;

/// What [`export_all`] did to a frame.
pub(super) struct ExportedAll {
    /// The exports made.
    pub(super) made: Vec<ExportId>,
    /// The arrays replaced by their wire forms, for the sealed frame to keep until it is sent
    /// (see [`Sealed`](crate::Sealed)).
    pub(super) replaced: Vec<DeviceArray>,
}

/// Exports every device array of `frame` with `plane`, replacing each by its wire form.
/// On failure no export is left (the ones made are released again).
pub(super) fn export_all<T: Frame>(
    plane: Option<&Arc<dyn DevicePlane>>,
    frame: &mut T,
) -> Result<ExportedAll, DeviceError> {
    let mut made = Vec::new();
    let mut replaced = Vec::new();
    let mut failed = None;
    frame.for_each_value_mut(&mut |value| {
        value.for_each_device_mut(&mut |array| {
            if failed.is_some() {
                return;
            }
            let Some(plane) = plane else {
                failed = Some(DeviceError::NoPlane);
                return;
            };
            match plane.export(array) {
                Ok(wire) => {
                    if let WireArray::Exported(descriptor) = &wire {
                        made.push(descriptor.export_id);
                    }
                    replaced.push(std::mem::replace(array, DeviceArray::travelling(wire)));
                }
                Err(e) => failed = Some(e),
            }
        })
    });
    match (failed, plane) {
        (None, _) => Ok(ExportedAll { made, replaced }),
        (Some(e), Some(plane)) => {
            plane.released(&made);
            Err(e)
        }
        (Some(e), None) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use troupe_value::device::{CudaIpcDescriptor, ExportReleases, LocalMemory};
    use troupe_value::{DType, Value};

    use crate::{Ledger, ToHost};

    use super::*;

    /// An import of the peer's export: dropping its last clone queues the release (here, it
    /// sets the flag).
    struct Import(Arc<AtomicBool>);

    impl Drop for Import {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A plane that sends every [`Import`] back to its exporter as an echo.
    #[derive(Debug)]
    struct EchoPlane;

    impl DevicePlane for EchoPlane {
        fn export(&self, array: &DeviceArray) -> Result<WireArray, DeviceError> {
            array
                .downcast::<Import>()
                .map(|_| WireArray::Returned {
                    export_id: ExportId(3),
                    dtype: array.dtype(),
                    shape: array.shape().to_vec(),
                    device: 0,
                })
                .ok_or(DeviceError::UnknownMemory)
        }

        fn import(
            &self,
            _: &CudaIpcDescriptor,
            _: &Arc<dyn ExportReleases>,
        ) -> Result<LocalMemory, DeviceError> {
            Err(DeviceError::NoDriver)
        }

        fn returned(&self, export: ExportId) -> Result<(LocalMemory, u64), DeviceError> {
            Err(DeviceError::UnknownExport(export))
        }

        fn released(&self, _: &[ExportId]) -> usize {
            0
        }

        fn exported(&self) -> usize {
            0
        }

        fn peer_gone(&self) -> usize {
            0
        }
    }

    /// Issue 16: sealing an echo replaces the last clone of the import by its wire form; were
    /// the import dropped then, its release could be sent (by the release thread) before the
    /// frame naming the echo, and the peer would free the export first. The sealed frame
    /// keeps it until it is dropped, after it was queued.
    #[test]
    fn a_sealed_echo_keeps_its_import_until_the_frame_is_dropped() {
        let released = Arc::new(AtomicBool::new(false));
        let owner = Arc::new(Import(released.clone()));
        let array = DeviceArray::local(owner, DType::U8, vec![16], 0).unwrap();
        let ledger = Ledger::new(1024).with_devices(Arc::new(EchoPlane));
        let sealed = ledger
            .seal(ToHost::Reply {
                id: 1,
                result: Ok(Value::DeviceArray(array)),
            })
            .unwrap();
        assert!(!sealed.bytes.is_empty());
        assert!(
            !released.load(Ordering::SeqCst),
            "the import ended while its echo was not yet sent"
        );
        drop(sealed);
        assert!(
            released.load(Ordering::SeqCst),
            "the import ends with the frame"
        );
    }
}
