//! What an exporter sends so that another process can use its device buffer.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::handle::IpcHandle;
use crate::DType;

/// Names one export in the exporter's table (`troupe_cuda::Exports`): what the importer's
/// release names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExportId(pub u64);

impl fmt::Display for ExportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "export {}", self.0)
    }
}

/// Why a descriptor (or a shape and a byte range) does not hold together.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DescriptorError {
    /// A byte range does not lie inside the allocation it names (a descriptor from a peer with
    /// a bad offset or size).
    #[error("bytes [{offset}, {offset} + {size}) are outside an allocation of {allocation} bytes")]
    OutOfBounds {
        /// Start of the range, from the start of the allocation.
        offset: u64,
        /// Length of the range.
        size: u64,
        /// Size of the allocation.
        allocation: u64,
    },
    /// A shape and dtype that do not describe the number of bytes they come with.
    #[error("shape {shape:?} of {dtype:?} is not {size} bytes")]
    ShapeMismatch {
        /// The shape, in elements.
        shape: Vec<u64>,
        /// The element type.
        dtype: DType,
        /// The number of bytes.
        size: u64,
    },
    /// A shape whose size in bytes does not fit in 64 bits.
    #[error("shape {shape:?} of {dtype:?} is too large")]
    ShapeOverflow {
        /// The shape, in elements.
        shape: Vec<u64>,
        /// The element type.
        dtype: DType,
    },
}

/// A device buffer as it crosses a process boundary: the IPC handle of the allocation that
/// holds it, where in that allocation it lies, what it holds, and the IPC event that marks
/// the end of the exporter's writes. Made by `troupe_cuda::Exports::export`,
/// opened by `troupe_cuda::Importer::import`.
///
/// Every descriptor sent is one hold on the exporter's allocation: the importer must answer
/// it with a release naming its [`ExportId`], which `troupe_cuda::Importer` produces even
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
    /// The exporter's device ordinal, as the exporter numbers its devices (for messages;
    /// another process may number them otherwise).
    pub device: u32,
    /// The device's UUID (`cuDeviceGetUuid`): what the importer maps the buffer on, whatever
    /// its own `CUDA_VISIBLE_DEVICES` makes the ordinals.
    pub device_uuid: [u8; 16],
    /// Names this export in the exporter's table.
    pub export_id: ExportId,
}

impl CudaIpcDescriptor {
    /// Checks what can be checked without the driver: the shape and dtype make `size` bytes,
    /// and `offset + size` does not overflow.
    ///
    /// # Errors
    /// [`DescriptorError::ShapeOverflow`], [`DescriptorError::ShapeMismatch`] or
    /// [`DescriptorError::OutOfBounds`].
    pub fn validate(&self) -> Result<(), DescriptorError> {
        if byte_len(self.dtype, &self.shape)? != self.size {
            return Err(DescriptorError::ShapeMismatch {
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
    /// [`DescriptorError::OutOfBounds`] when it does not.
    pub fn check_within(&self, allocation: u64) -> Result<(), DescriptorError> {
        check_range(self.offset, self.size, allocation)
    }
}

/// Checks that `[offset, offset + size)` lies inside `[0, allocation)`.
///
/// # Errors
/// [`DescriptorError::OutOfBounds`] when it does not.
pub fn check_range(offset: u64, size: u64, allocation: u64) -> Result<(), DescriptorError> {
    match offset.checked_add(size) {
        Some(end) if end <= allocation => Ok(()),
        _ => Err(DescriptorError::OutOfBounds {
            offset,
            size,
            allocation,
        }),
    }
}

/// Bytes of an array of `shape` elements of `dtype`.
///
/// # Errors
/// [`DescriptorError::ShapeOverflow`] when they do not fit in 64 bits.
pub fn byte_len(dtype: DType, shape: &[u64]) -> Result<u64, DescriptorError> {
    shape
        .iter()
        .try_fold(dtype.itemsize() as u64, |n, &d| n.checked_mul(d))
        .ok_or_else(|| DescriptorError::ShapeOverflow {
            shape: shape.to_vec(),
            dtype,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::IPC_HANDLE_LEN;

    fn descriptor() -> CudaIpcDescriptor {
        CudaIpcDescriptor {
            mem_handle: IpcHandle([0xab; IPC_HANDLE_LEN]),
            event_handle: IpcHandle([0x5c; IPC_HANDLE_LEN]),
            offset: 512,
            size: 2 * 3 * 4,
            dtype: DType::F32,
            shape: vec![2, 3],
            device: 1,
            device_uuid: [1; 16],
            export_id: ExportId(u64::MAX - 3),
        }
    }

    #[test]
    fn postcard_round_trip() -> Result<(), postcard::Error> {
        let d = descriptor();
        let bytes = postcard::to_stdvec(&d)?;
        assert_eq!(postcard::from_bytes::<CudaIpcDescriptor>(&bytes)?, d);
        // Two fixed 64-byte handles, the 16-byte device UUID and a few varints: small
        // enough for any control frame.
        assert!(
            bytes.len() < 2 * IPC_HANDLE_LEN + 16 + 32,
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
            Err(DescriptorError::OutOfBounds {
                offset: 512,
                size: 24,
                allocation: 535
            })
        );
        let mut d = descriptor();
        d.offset = u64::MAX - 8;
        assert!(matches!(
            d.validate(),
            Err(DescriptorError::OutOfBounds { .. })
        ));
    }

    #[test]
    fn a_shape_that_is_not_the_size_is_rejected() {
        let mut d = descriptor();
        d.shape = vec![2, 4];
        assert!(matches!(
            d.validate(),
            Err(DescriptorError::ShapeMismatch { size: 24, .. })
        ));
        d.shape = vec![u64::MAX, 2];
        assert!(matches!(
            d.validate(),
            Err(DescriptorError::ShapeOverflow { .. })
        ));
    }

    #[test]
    fn a_scalar_is_one_element() {
        assert_eq!(byte_len(DType::F64, &[]), Ok(8));
        assert_eq!(byte_len(DType::U8, &[0, 7]), Ok(0));
    }
}
