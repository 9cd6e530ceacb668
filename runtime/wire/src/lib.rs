//! troupe's data model and its wire encoding.
//!
//! Every actor message and every bridged call carries [`Value`]s. This crate holds them with
//! no actix and no PyO3, so that the child-side extension module can link it alone.
//!
//! ```
//! use troupe_wire::{Array, Value};
//!
//! let frame = Value::map([
//!     ("rate", Value::Int(16_000)),
//!     ("gain", Value::Float(0.5)),
//!     ("samples", Value::Array(Array::from_vec(vec![0.0f32, 0.25, -0.25]))),
//! ]);
//! let bytes = frame.to_bytes().unwrap();
//! assert_eq!(Value::from_bytes(&bytes).unwrap(), frame);
//! ```

#![warn(missing_docs, unreachable_pub)]

mod array;
mod buffer;
mod call_error;
mod codec;
mod convert;
pub mod device;
mod dtype;
mod media;
mod value;

/// Shared-memory regions (`troupe-shm`).
pub use troupe_shm as shm;
pub use troupe_shm::pool;

pub use array::{Array, ArrayError, MAX_NDIM};
pub use buffer::Buffer;
pub use call_error::{CallError, CrashInfo, ExitCause, HandshakeError, RemoteException};
pub use codec::{DecodeError, EncodeError, MAX_DEPTH, decode, encode};
pub use convert::FromValue;
pub use device::DeviceArray;
pub use dtype::{DType, Element};
pub use media::{Audio, MediaError, PixelFormat, VideoFrame};
pub use value::{Map, Value};
