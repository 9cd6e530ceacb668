//! troupe's value model: the [`Value`]s every actor message and every bridged call carries
//! (with their [`Buffer`]s, [`Array`]s, media, [`device`] arrays and [`CallError`]s), and
//! their postcard encoding ([`encode`], [`decode`]).
//!
//! It stands on `troupe-shm` alone (a buffer may live in shared memory) and knows no actix,
//! no PyO3 and no CUDA, so that the child-side extension module can link it.
//!
//! ```
//! use troupe_value::{Array, Value};
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

pub use array::{Array, ArrayError, MAX_NDIM};
pub use buffer::Buffer;
pub use call_error::{
    CallError, CrashInfo, ExitCause, HandshakeError, Protection, RemoteException, SandboxFailure,
};
pub use codec::{DecodeError, EncodeError, MAX_DEPTH, decode, encode};
pub use convert::FromValue;
pub use device::DeviceArray;
pub use dtype::{DType, Element};
pub use media::{Audio, MAX_VIDEO_SIDE, MediaError, PixelFormat, VideoFrame};
pub use value::{Map, Value};
