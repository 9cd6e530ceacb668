//! The 64 opaque bytes of a CUDA IPC handle, as they travel on the wire.
//!
//! `troupe-cuda` turns them into the driver's handle types and back.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes in a CUDA IPC memory or event handle.
pub const IPC_HANDLE_LEN: usize = 64;

/// A CUDA IPC memory or event handle: 64 bytes the driver of another process turns back into
/// a mapping or an event. Encoded as a fixed-size tuple, so postcard writes exactly 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpcHandle(pub [u8; IPC_HANDLE_LEN]);

impl fmt::Debug for IpcHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Enough to tell handles apart in a log line.
        write!(f, "IpcHandle(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

impl Serialize for IpcHandle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(IPC_HANDLE_LEN)?;
        for b in &self.0 {
            tuple.serialize_element(b)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for IpcHandle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<IpcHandle, D::Error> {
        struct HandleVisitor;

        impl<'de> Visitor<'de> for HandleVisitor {
            type Value = IpcHandle;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{IPC_HANDLE_LEN} bytes of a CUDA IPC handle")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IpcHandle, A::Error> {
                let mut bytes = [0u8; IPC_HANDLE_LEN];
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(IpcHandle(bytes))
            }
        }

        deserializer.deserialize_tuple(IPC_HANDLE_LEN, HandleVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> IpcHandle {
        let mut bytes = [0u8; IPC_HANDLE_LEN];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(200);
        }
        IpcHandle(bytes)
    }

    #[test]
    fn postcard_writes_exactly_the_64_bytes() -> Result<(), postcard::Error> {
        let handle = sample();
        let bytes = postcard::to_stdvec(&handle)?;
        assert_eq!(bytes, handle.0);
        assert_eq!(postcard::from_bytes::<IpcHandle>(&bytes)?, handle);
        Ok(())
    }

    #[test]
    fn a_short_handle_is_a_decode_error() {
        let bytes = [7u8; IPC_HANDLE_LEN - 1];
        assert!(postcard::from_bytes::<IpcHandle>(&bytes).is_err());
    }
}
