//! Shared memory between processes, as a building block: anonymous memory files several
//! processes map once handed their descriptor ([`ShmRegion`]), and a pool of long-lived
//! regions cut into slots ([`pool::Pool`]).
//!
//! It knows bytes, not values, and depends on no other troupe crate: `troupe-value` makes
//! buffers of slots, `troupe-protocol` sends their descriptors, the regions' file
//! descriptors and releases between processes.
//!
//! ```
//! use std::os::fd::AsFd;
//! use troupe_shm::pool::Pool;
//!
//! let slot = Pool::global().copy_from_slice(b"shared bytes").unwrap();
//! // Another process receives the region's descriptor and maps it (read-only).
//! let fd = slot.region().as_fd().try_clone_to_owned().unwrap();
//! let region = troupe_shm::adopt(fd).unwrap();
//! assert_eq!(&region.as_slice()[slot.offset()..][..12], b"shared bytes");
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod pool;
mod region;

pub use region::{MAX_REGION_LEN, ShmError, ShmRegion, adopt};
