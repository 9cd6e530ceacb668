//! The 64 opaque bytes of a CUDA IPC handle, as they travel on the wire.

use std::fmt;

use cudarc::driver::sys;
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

// `c_char` is `i8` on some targets and `u8` on others: the casts below are byte copies.
#[allow(clippy::unnecessary_cast)]
fn from_c_chars(chars: &[std::ffi::c_char; IPC_HANDLE_LEN]) -> IpcHandle {
    IpcHandle(chars.map(|c| c as u8))
}

#[allow(clippy::unnecessary_cast)]
fn to_c_chars(handle: &IpcHandle) -> [std::ffi::c_char; IPC_HANDLE_LEN] {
    handle.0.map(|b| b as std::ffi::c_char)
}

impl From<sys::CUipcMemHandle> for IpcHandle {
    fn from(handle: sys::CUipcMemHandle) -> IpcHandle {
        from_c_chars(&handle.reserved)
    }
}

impl From<IpcHandle> for sys::CUipcMemHandle {
    fn from(handle: IpcHandle) -> sys::CUipcMemHandle {
        sys::CUipcMemHandle {
            reserved: to_c_chars(&handle),
        }
    }
}

impl From<sys::CUipcEventHandle> for IpcHandle {
    fn from(handle: sys::CUipcEventHandle) -> IpcHandle {
        from_c_chars(&handle.reserved)
    }
}

impl From<IpcHandle> for sys::CUipcEventHandle {
    fn from(handle: IpcHandle) -> sys::CUipcEventHandle {
        sys::CUipcEventHandle {
            reserved: to_c_chars(&handle),
        }
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

    #[test]
    fn driver_handles_keep_every_byte() {
        let handle = sample();
        let mem: sys::CUipcMemHandle = handle.into();
        assert_eq!(IpcHandle::from(mem), handle);
        let event: sys::CUipcEventHandle = handle.into();
        assert_eq!(IpcHandle::from(event), handle);
    }
}
