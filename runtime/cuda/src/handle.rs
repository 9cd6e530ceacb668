//! The driver's IPC handle types and troupe-value's [`IpcHandle`] bytes, one into the other.

use cudarc::driver::sys;
use troupe_value::device::{IPC_HANDLE_LEN, IpcHandle};

// `c_char` is `i8` on some targets and `u8` on others: the casts below are byte copies.
#[allow(clippy::unnecessary_cast)]
fn from_c_chars(chars: &[std::ffi::c_char; IPC_HANDLE_LEN]) -> IpcHandle {
    IpcHandle(chars.map(|c| c as u8))
}

#[allow(clippy::unnecessary_cast)]
fn to_c_chars(handle: IpcHandle) -> [std::ffi::c_char; IPC_HANDLE_LEN] {
    handle.0.map(|b| b as std::ffi::c_char)
}

/// The bytes of a memory handle.
pub(crate) fn from_mem(handle: sys::CUipcMemHandle) -> IpcHandle {
    from_c_chars(&handle.reserved)
}

/// A memory handle with these bytes.
pub(crate) fn to_mem(handle: IpcHandle) -> sys::CUipcMemHandle {
    sys::CUipcMemHandle {
        reserved: to_c_chars(handle),
    }
}

/// The bytes of an event handle.
pub(crate) fn from_event(handle: sys::CUipcEventHandle) -> IpcHandle {
    from_c_chars(&handle.reserved)
}

/// An event handle with these bytes.
pub(crate) fn to_event(handle: IpcHandle) -> sys::CUipcEventHandle {
    sys::CUipcEventHandle {
        reserved: to_c_chars(handle),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_handles_keep_every_byte() {
        let mut bytes = [0u8; IPC_HANDLE_LEN];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(200);
        }
        let handle = IpcHandle(bytes);
        assert_eq!(from_mem(to_mem(handle)), handle);
        assert_eq!(from_event(to_event(handle)), handle);
    }
}
