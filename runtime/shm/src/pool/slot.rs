//! One allocation in a pool, as a process holds it: its own (it returns to the pool on drop)
//! or a peer's (dropping it tells the peer, through the connection it came from).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Shared;
use crate::region::ShmRegion;

/// Names a slot across processes: its creator's region and the slot's offset there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlotKey {
    /// The region's id ([`ShmRegion::id`]).
    pub region: u64,
    /// Where the slot starts in the region.
    pub offset: u64,
}

/// Where a peer's slot goes when this process drops its last handle to it: the connection
/// the slot came through, which owes the peer a release (`troupe-protocol`'s `Releases`).
/// Called from any thread, often from a destructor.
pub trait SlotReleases: Send + Sync {
    /// Queues a release of the peer's slot `key`.
    fn release_slot(&self, key: SlotKey);
}

/// Bytes in a slot of a pool, held by this process: a slot of its own pool, which returns
/// there when the last handle drops, or a peer's, which is then released to the peer.
///
/// Cloning is cheap (a reference count); clones share the slot. A handle views the first
/// [`Slot::len`] bytes of the slot, which may be longer (sizes are rounded up to [`ALIGN`]).
///
/// [`ALIGN`]: super::ALIGN
#[derive(Clone)]
pub struct Slot {
    held: Arc<Held>,
    len: usize,
}

/// A slot as this process holds it, once however many handles view it.
pub(crate) struct Held {
    pub(crate) region: Arc<ShmRegion>,
    pub(crate) offset: usize,
    /// Bytes usable from `offset` (a handle may view fewer).
    pub(crate) capacity: usize,
    pub(crate) owner: Owner,
}

pub(crate) enum Owner {
    /// This process's pool made the slot; dropping returns its range there.
    Local {
        pool: Arc<Shared>,
        region_id: u64,
        /// The range's size in the arena (`len` rounded up to the alignment).
        size: usize,
    },
    /// A peer made the slot and sent it here; dropping queues a release for that peer.
    Foreign { releases: Arc<dyn SlotReleases> },
}

impl Slot {
    /// A handle viewing the first `len` bytes of `held` (at most its capacity).
    pub(crate) fn new(held: Arc<Held>, len: usize) -> Slot {
        debug_assert!(len <= held.capacity);
        let len = len.min(held.capacity);
        Slot { held, len }
    }

    /// The name peers know the slot by.
    pub fn key(&self) -> SlotKey {
        self.held.key()
    }

    /// Whether the slot is one of this process's pools' (not a peer's).
    pub fn is_local(&self) -> bool {
        self.held.is_local()
    }

    /// For a peer's slot, where its release goes: the connection it came through.
    pub fn released_to(&self) -> Option<&Arc<dyn SlotReleases>> {
        match &self.held.owner {
            Owner::Local { .. } => None,
            Owner::Foreign { releases } => Some(releases),
        }
    }

    /// The region the slot lies in.
    pub fn region(&self) -> &Arc<ShmRegion> {
        &self.held.region
    }

    /// Where the slot starts in its region.
    pub fn offset(&self) -> usize {
        self.held.offset
    }

    /// Bytes this handle views.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether this handle views no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes this handle views.
    pub fn as_slice(&self) -> &[u8] {
        &self.held.bytes()[..self.len]
    }

    /// A handle on the same slot viewing its first `len` bytes (all this handle views when
    /// `len` is larger).
    pub fn truncated(&self, len: usize) -> Slot {
        Slot::new(self.held.clone(), len.min(self.len))
    }

    /// A writable pointer to the bytes of a slot of this process's pool; `None` for a peer's.
    /// For filling a freshly allocated slot in place: the writer must stop writing before
    /// the slot is sent or shared, since its bytes are otherwise immutable.
    pub fn writable_ptr(&self) -> Option<*mut u8> {
        if !self.is_local() {
            return None;
        }
        // SAFETY: only a pointer is made; the caller's use is bound by the rule above.
        let bytes = unsafe { self.held.region.as_mut_slice() };
        Some(bytes[self.held.offset..].as_mut_ptr())
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.held.fmt(f)
    }
}

impl Held {
    pub(crate) fn key(&self) -> SlotKey {
        SlotKey {
            region: self.region.id(),
            offset: self.offset as u64,
        }
    }

    pub(crate) fn is_local(&self) -> bool {
        matches!(self.owner, Owner::Local { .. })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.region.as_slice()[self.offset..self.offset + self.capacity]
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        match &self.owner {
            Owner::Local {
                pool,
                region_id,
                size,
            } => pool.free(*region_id, self.offset, *size),
            Owner::Foreign { releases } => releases.release_slot(self.key()),
        }
    }
}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whose = if self.is_local() { "own" } else { "peer's" };
        write!(
            f,
            "{whose} slot {}+{} ({} bytes)",
            self.region.id(),
            self.offset,
            self.capacity
        )
    }
}
