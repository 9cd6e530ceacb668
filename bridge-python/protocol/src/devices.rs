//! Device arrays in frames: exported when a frame is sealed, their releases applied when the
//! peer's frames are opened.

use std::sync::Arc;

use troupe_value::device::{DeviceArray, DeviceError, DevicePlane, ExportId, WireArray};

use crate::Frame;

/// Exports every device array of `frame` with `plane`, replacing each by its wire form.
/// Returns the exports made; on failure none is left (the ones made are released again).
pub(super) fn export_all<T: Frame>(
    plane: Option<&Arc<dyn DevicePlane>>,
    frame: &mut T,
) -> Result<Vec<ExportId>, DeviceError> {
    let mut made = Vec::new();
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
                    *array = DeviceArray::travelling(wire);
                }
                Err(e) => failed = Some(e),
            }
        })
    });
    match (failed, plane) {
        (None, _) => Ok(made),
        (Some(e), Some(plane)) => {
            plane.released(&made);
            Err(e)
        }
        (Some(e), None) => Err(e),
    }
}
