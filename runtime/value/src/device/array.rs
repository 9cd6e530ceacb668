//! The value of an array in device memory.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::descriptor::{CudaIpcDescriptor, DescriptorError, ExportId, byte_len};
use super::error::DeviceError;
use super::plane::{DeviceOwner, resolve};
use crate::DType;
use crate::codec::stash;

/// A dense, C-contiguous array in the memory of a CUDA device.
///
/// Cloning shares the memory. In the process that holds the memory (its own allocation, or
/// its import of a peer's) the array carries the owner, whose last clone frees or releases
/// the memory; between processes it travels as a [`CudaIpcDescriptor`], exported and
/// imported by the connection's [`DevicePlane`](super::DevicePlane). `troupe_cuda` makes
/// such arrays from its buffers and gives access to their memory.
#[derive(Clone)]
pub struct DeviceArray {
    dtype: DType,
    shape: Vec<u64>,
    size: u64,
    device: u32,
    memory: Memory,
}

/// A device array as it travels between two processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireArray {
    /// Memory of the sender, exported to the receiver: the receiver imports it and answers
    /// with a release when its import ends.
    Exported(CudaIpcDescriptor),
    /// The receiver's own export, sent back by the peer that imported it (an echo): the
    /// receiver uses its own memory again. It is no hold: the peer's import keeps the export
    /// alive until it releases it as usual.
    Returned {
        /// The receiver's export.
        export_id: ExportId,
        /// Element type.
        dtype: DType,
        /// Shape in elements, C order.
        shape: Vec<u64>,
        /// The receiver's device ordinal, as the sender knows it (informative: the receiver
        /// reports its own buffer's).
        device: u32,
    },
}

impl WireArray {
    /// The export it names (the sender's or, returned, the receiver's).
    pub fn export_id(&self) -> ExportId {
        match self {
            WireArray::Exported(d) => d.export_id,
            WireArray::Returned { export_id, .. } => *export_id,
        }
    }
}

#[derive(Clone)]
enum Memory {
    /// Memory this process can use.
    Local(DeviceOwner),
    /// A device array as it arrived, decoded outside a connection.
    Remote(Box<WireArray>),
    /// A peer's export that could not be imported here (its release is already due).
    Unavailable(Box<DeviceError>),
}

impl DeviceArray {
    /// An array of this process: `shape` elements of `dtype` on device `device`, whose memory
    /// `owner` keeps alive (the device library's buffer type).
    ///
    /// # Errors
    /// [`DescriptorError::ShapeOverflow`] for a shape whose size does not fit in 64 bits.
    pub fn local(
        owner: DeviceOwner,
        dtype: DType,
        shape: Vec<u64>,
        device: u32,
    ) -> Result<DeviceArray, DescriptorError> {
        let size = byte_len(dtype, &shape)?;
        Ok(DeviceArray {
            dtype,
            shape,
            size,
            device,
            memory: Memory::Local(owner),
        })
    }

    /// The array a wire form describes, in the state `memory` left it (the size was
    /// checked when it was decoded or made), on device `local` of this process when it
    /// resolved to memory here, else on the device the wire names.
    fn described(wire: &WireArray, memory: Memory, local: Option<u32>) -> DeviceArray {
        let (dtype, shape, device) = match wire {
            WireArray::Exported(d) => (d.dtype, &d.shape, d.device),
            WireArray::Returned {
                dtype,
                shape,
                device,
                ..
            } => (*dtype, shape, *device),
        };
        DeviceArray {
            dtype,
            shape: shape.clone(),
            size: byte_len(dtype, shape).unwrap_or(u64::MAX),
            device: local.unwrap_or(device),
            memory,
        }
    }

    /// The array as it travels: what a connection puts in a frame in place of an array it
    /// exported, and what a decode outside a connection makes.
    pub fn travelling(wire: WireArray) -> DeviceArray {
        DeviceArray::described(&wire.clone(), Memory::Remote(Box::new(wire)), None)
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Shape in elements, C order.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Size in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.size
    }

    /// The device ordinal, as this process numbers its devices (for an import, the device it
    /// was matched to by UUID, whatever the exporter calls it); for an array in transit,
    /// as its sender numbers them.
    pub fn device(&self) -> u32 {
        self.device
    }

    /// The owner of the memory, for the device library to downcast.
    ///
    /// # Errors
    /// Why this process cannot use the array: the import failed ([`DeviceError::NoDriver`],
    /// [`DeviceError::Import`]), the connection it came through carries no device arrays
    /// ([`DeviceError::NoPlane`]), or it was never imported ([`DeviceError::NotImported`]).
    pub fn owner(&self) -> Result<&DeviceOwner, DeviceError> {
        match &self.memory {
            Memory::Local(owner) => Ok(owner),
            Memory::Remote(wire) => Err(DeviceError::NotImported {
                export: wire.export_id(),
            }),
            Memory::Unavailable(error) => Err(DeviceError::clone(error)),
        }
    }

    /// The owner as a `T`, when it is one.
    pub fn downcast<T: 'static>(&self) -> Option<&T> {
        self.owner().ok()?.downcast_ref()
    }

    /// The wire form, when the array arrived outside a connection (not imported).
    pub fn wire(&self) -> Option<&WireArray> {
        match &self.memory {
            Memory::Remote(wire) => Some(wire),
            Memory::Local(_) | Memory::Unavailable(_) => None,
        }
    }
}

impl PartialEq for DeviceArray {
    /// The same memory under the same shape: arrays of one owner, or the same descriptor.
    fn eq(&self, other: &DeviceArray) -> bool {
        let same_memory = match (&self.memory, &other.memory) {
            (Memory::Local(a), Memory::Local(b)) => Arc::ptr_eq(a, b),
            (Memory::Remote(a), Memory::Remote(b)) => a == b,
            _ => false,
        };
        same_memory
            && self.dtype == other.dtype
            && self.shape == other.shape
            && self.device == other.device
    }
}

impl fmt::Debug for DeviceArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let memory = match &self.memory {
            Memory::Local(_) => "local".to_owned(),
            Memory::Remote(wire) => format!("{} in transit", wire.export_id()),
            Memory::Unavailable(e) => format!("unavailable: {e}"),
        };
        write!(
            f,
            "DeviceArray({:?} {:?} on cuda:{}, {memory})",
            self.dtype, self.shape, self.device
        )
    }
}

/// Only an array in transit has a wire form: a connection (`troupe-protocol`) exports local
/// arrays with its plane before it encodes a frame, so encoding one anywhere else fails.
impl Serialize for DeviceArray {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.memory {
            Memory::Remote(wire) => wire.serialize(serializer),
            Memory::Local(_) | Memory::Unavailable(_) => Err(serde::ser::Error::custom(
                "a device array is encoded only by a connection, which exports it",
            )),
        }
    }
}

/// Decoding within [`with_plane`](super::with_plane) (as a connection opens a peer's frame)
/// imports the array with the connection's plane (or refuses it, without one); elsewhere it
/// stays a descriptor.
impl<'de> Deserialize<'de> for DeviceArray {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DeviceArray, D::Error> {
        let wire = WireArray::deserialize(deserializer)?;
        let valid = match &wire {
            WireArray::Exported(descriptor) => descriptor.validate(),
            WireArray::Returned { dtype, shape, .. } => byte_len(*dtype, shape).map(|_| ()),
        };
        valid.map_err(|e| stash(crate::DecodeError::InvalidDeviceArray(e)))?;
        Ok(match resolve(&wire) {
            None => DeviceArray::travelling(wire),
            Some(Ok(local)) => {
                DeviceArray::described(&wire, Memory::Local(local.owner), Some(local.device))
            }
            Some(Err(error)) => {
                DeviceArray::described(&wire, Memory::Unavailable(Box::new(error)), None)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{ExportId, IPC_HANDLE_LEN, IpcHandle};

    fn descriptor() -> CudaIpcDescriptor {
        CudaIpcDescriptor {
            mem_handle: IpcHandle([1; IPC_HANDLE_LEN]),
            event_handle: IpcHandle([2; IPC_HANDLE_LEN]),
            offset: 256,
            size: 16,
            dtype: DType::F32,
            shape: vec![2, 2],
            device: 0,
            device_uuid: [0; 16],
            export_id: ExportId(9),
        }
    }

    #[test]
    fn a_descriptor_decoded_outside_a_connection_stays_a_descriptor() {
        let sent = DeviceArray::travelling(WireArray::Exported(descriptor()));
        let bytes = crate::encode(&sent).unwrap_or_default();
        let received: DeviceArray = crate::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(received, sent);
        assert_eq!(received.wire(), Some(&WireArray::Exported(descriptor())));
        assert!(matches!(
            received.owner(),
            Err(DeviceError::NotImported {
                export: ExportId(9)
            })
        ));
        assert_eq!(received.len_bytes(), 16);
    }

    #[test]
    fn an_inconsistent_descriptor_does_not_decode() {
        let mut bad = descriptor();
        bad.shape = vec![3, 2];
        let bytes = crate::encode(&WireArray::Exported(bad)).unwrap_or_default();
        assert!(matches!(
            crate::decode::<DeviceArray>(&bytes),
            Err(crate::DecodeError::InvalidDeviceArray(
                DescriptorError::ShapeMismatch { .. }
            ))
        ));
    }

    #[test]
    fn a_local_array_is_passed_as_its_owner_and_never_encoded_alone() {
        let owner: DeviceOwner = Arc::new(vec![0u8; 16]);
        let array = DeviceArray::local(owner.clone(), DType::U8, vec![16], 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(array.downcast::<Vec<u8>>().map(Vec::len), Some(16));
        assert!(Arc::ptr_eq(
            array.owner().unwrap_or_else(|e| panic!("{e}")),
            &owner
        ));
        assert_eq!(array.clone(), array, "clones share the memory");
        assert!(crate::encode(&array).is_err());
        assert!(matches!(
            DeviceArray::local(owner, DType::F64, vec![u64::MAX, 2], 0),
            Err(DescriptorError::ShapeOverflow { .. })
        ));
    }
}
