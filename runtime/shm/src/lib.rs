//! Shared memory between processes, as a building block: named regions several processes
//! map ([`ShmRegion`]), and a pool of long-lived regions cut into slots ([`pool::Pool`]).
//!
//! It knows bytes, not values, and depends on no other troupe crate: `troupe-value` makes
//! buffers of regions and slots, `troupe-protocol` sends their descriptors and releases
//! between processes.
//!
//! ```
//! use troupe_shm::pool::Pool;
//!
//! let slot = Pool::global().copy_from_slice(b"shared bytes").unwrap();
//! // Another process opens the region by name and reads the slot at its offset.
//! let region = troupe_shm::open(slot.region().name()).unwrap();
//! assert_eq!(&region.as_slice()[slot.offset()..][..12], b"shared bytes");
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod pool;
mod region;

pub use region::{NAME_PREFIX, ShmError, ShmRegion, count_regions_of, open, remove_regions_of};
