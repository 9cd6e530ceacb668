//! What an exporter sends so that another process can use its device buffer.

use serde::{Deserialize, Serialize};
use troupe_wire::DType;

use crate::error::CudaError;
use crate::export::ExportId;
use crate::handle::IpcHandle;

/// A device buffer as it crosses a process boundary: the IPC handle of the allocation that
/// holds it, where in that allocation it lies, what it holds, and the IPC event that marks
/// the end of the exporter's writes. Made by [`Exports::export`](crate::Exports::export),
/// opened by [`Importer::import`](crate::Importer::import).
///
/// Every descriptor sent is one hold on the exporter's allocation: the importer must answer
/// it with a [`Release`](crate::Release), which [`Importer`](crate::Importer) produces even
/// when the import fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CudaIpcDescriptor {
    /// `cuIpcGetMemHandle` of the allocation's base address.
    pub mem_handle: IpcHandle,
    /// `cuIpcGetEventHandle` of an event recorded after the exporter's last write.
    pub event_handle: IpcHandle,
    /// Where the buffer starts, in bytes from the allocation's base.
    pub offset: u64,
    /// Length of the buffer in bytes.
    pub size: u64,
    /// Element type.
    pub dtype: DType,
    /// Shape in elements, C order.
    pub shape: Vec<u64>,
    /// The exporter's device ordinal (ordinals are per process: both sides must see the same
    /// devices in the same order, i.e. the same `CUDA_VISIBLE_DEVICES`).
    pub device: u32,
    /// Names this export in the exporter's [`Exports`](crate::Exports) table.
    pub export_id: ExportId,
}

impl CudaIpcDescriptor {
    /// Checks what can be checked without the driver: the shape and dtype make `size` bytes,
    /// and `offset + size` does not overflow.
    ///
    /// # Errors
    /// [`CudaError::ShapeOverflow`], [`CudaError::ShapeMismatch`] or
    /// [`CudaError::OutOfBounds`].
    pub fn validate(&self) -> Result<(), CudaError> {
        if byte_len(self.dtype, &self.shape)? != self.size {
            return Err(CudaError::ShapeMismatch {
                shape: self.shape.clone(),
                dtype: self.dtype,
                size: self.size,
            });
        }
        self.check_within(u64::MAX)
    }

    /// Checks that the buffer lies inside an allocation of `allocation` bytes.
    ///
    /// # Errors
    /// [`CudaError::OutOfBounds`] when it does not.
    pub fn check_within(&self, allocation: u64) -> Result<(), CudaError> {
        check_range(self.offset, self.size, allocation)
    }
}

/// Checks that `[offset, offset + size)` lies inside `[0, allocation)`.
pub(crate) fn check_range(offset: u64, size: u64, allocation: u64) -> Result<(), CudaError> {
    match offset.checked_add(size) {
        Some(end) if end <= allocation => Ok(()),
        _ => Err(CudaError::OutOfBounds {
            offset,
            size,
            allocation,
        }),
    }
}

/// Bytes of an array of `shape` elements of `dtype`.
pub(crate) fn byte_len(dtype: DType, shape: &[u64]) -> Result<u64, CudaError> {
    shape
        .iter()
        .try_fold(dtype.itemsize() as u64, |n, &d| n.checked_mul(d))
        .ok_or_else(|| CudaError::ShapeOverflow {
            shape: shape.to_vec(),
            dtype,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::IPC_HANDLE_LEN;

    fn descriptor() -> CudaIpcDescriptor {
        CudaIpcDescriptor {
            mem_handle: IpcHandle([0xab; IPC_HANDLE_LEN]),
            event_handle: IpcHandle([0x5c; IPC_HANDLE_LEN]),
            offset: 512,
            size: 2 * 3 * 4,
            dtype: DType::F32,
            shape: vec![2, 3],
            device: 1,
            export_id: ExportId(u64::MAX - 3),
        }
    }

    #[test]
    fn postcard_round_trip() -> Result<(), postcard::Error> {
        let d = descriptor();
        let bytes = postcard::to_stdvec(&d)?;
        assert_eq!(postcard::from_bytes::<CudaIpcDescriptor>(&bytes)?, d);
        // Two fixed 64-byte handles and a few varints: small enough for any control frame.
        assert!(
            bytes.len() < 2 * IPC_HANDLE_LEN + 32,
            "{} bytes",
            bytes.len()
        );
        Ok(())
    }

    #[test]
    fn a_consistent_descriptor_is_valid() {
        assert_eq!(descriptor().validate(), Ok(()));
        assert_eq!(descriptor().check_within(512 + 24), Ok(()));
    }

    #[test]
    fn a_range_past_the_allocation_is_out_of_bounds() {
        assert_eq!(
            descriptor().check_within(512 + 23),
            Err(CudaError::OutOfBounds {
                offset: 512,
                size: 24,
                allocation: 535
            })
        );
        let mut d = descriptor();
        d.offset = u64::MAX - 8;
        assert!(matches!(d.validate(), Err(CudaError::OutOfBounds { .. })));
    }

    #[test]
    fn a_shape_that_is_not_the_size_is_rejected() {
        let mut d = descriptor();
        d.shape = vec![2, 4];
        assert!(matches!(
            d.validate(),
            Err(CudaError::ShapeMismatch { size: 24, .. })
        ));
        d.shape = vec![u64::MAX, 2];
        assert!(matches!(d.validate(), Err(CudaError::ShapeOverflow { .. })));
    }

    #[test]
    fn a_scalar_is_one_element() {
        assert_eq!(byte_len(DType::F64, &[]), Ok(8));
        assert_eq!(byte_len(DType::U8, &[0, 7]), Ok(0));
    }
}
