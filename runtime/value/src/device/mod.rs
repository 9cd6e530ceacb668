//! Arrays in device (GPU) memory, as values carry them and as they cross a process boundary.
//!
//! This crate knows no CUDA: a [`DeviceArray`] of this process holds its memory as a
//! type-erased owner (a `troupe_cuda::CudaBuffer`, or an import of a peer's buffer), so that
//! within a process the pointer is passed, never a handle. Between processes it travels as a
//! [`CudaIpcDescriptor`]: a connection's [`DevicePlane`] (implemented by `troupe-cuda`)
//! exports it when the connection (`troupe-protocol`) seals a frame, and imports it when the
//! connection opens one ([`with_plane`]; see `docs/semantics.md`, *CUDA arrays*).

mod array;
mod descriptor;
mod error;
mod handle;
mod plane;

pub use array::{DeviceArray, WireArray};
pub use descriptor::{CudaIpcDescriptor, DescriptorError, ExportId, byte_len, check_range};
pub use error::DeviceError;
pub use handle::{IPC_HANDLE_LEN, IpcHandle};
pub use plane::{DeviceOwner, DevicePlane, ExportReleases, LocalMemory, with_plane};
