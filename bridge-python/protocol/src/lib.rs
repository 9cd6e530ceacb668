//! The bridge's protocol: the frames a host and a bridged child process exchange
//! ([`ToChild`], [`ToHost`], each in an [`Envelope`]), the [`Ledger`] that seals and opens
//! them and keeps the connection's shared buffers alive, and the [`transport`] under them (a
//! unix socket pair the child inherits, see [`ChildFds`]).
//!
//! It stands on `troupe-value` (the values frames carry) and `troupe-shm` (the pool large
//! buffers travel through), and is free of actix and PyO3: the host (`troupe-bridge-python`)
//! and the child's extension module both link it.
//!
//! ```
//! use troupe_protocol::{CallFrame, Ledger, SHM_THRESHOLD, ToChild};
//! use troupe_value::{Map, Value};
//!
//! let (host, child) = (Ledger::new(SHM_THRESHOLD), Ledger::new(SHM_THRESHOLD));
//! let call = ToChild::Call(CallFrame {
//!     id: 1,
//!     method: "greet".into(),
//!     args: vec![Value::from("troupe")],
//!     kwargs: Map::new(),
//! });
//! let sealed = host.seal(call.clone()).unwrap();
//! // The regions' descriptors travel beside the bytes (none here: nothing large).
//! assert!(sealed.regions.is_empty());
//! assert_eq!(child.open::<ToChild>(&sealed.bytes, vec![]).unwrap().body, call);
//! ```

#![warn(missing_docs, unreachable_pub)]

mod child_fds;
mod devices;
mod frames;
mod ledger;
mod releases;
mod spin;
pub mod transport;

pub use child_fds::{ChildFds, FDS_ENV};
pub use frames::{
    CallFrame, Envelope, Frame, MAX_FRAME, PROTOCOL_VERSION, SHM_THRESHOLD, StartInfo, Target,
    ToChild, ToHost,
};
pub use ledger::{FrameError, Ledger, Receipt, Sealed};
pub use releases::{LINGER, MAX_RELEASES_PER_FRAME, Releases};
pub use spin::{DEFAULT_SPIN, SPIN_ENV, poll_then_block, spin};
