//! Turning a pool descriptor from a peer into a slot held here.
//!
//! A descriptor names `(region, offset, length)`, the region by its id. What it may name
//! depends on the connection it came through ([`with_peer`]): a slot lent to that peer on
//! that connection (it is handing it back, or on), or a slot of a region the peer handed
//! over with the very frame being decoded (its own memory, mapped here read-only). Anything
//! else, a slot of this process it was never lent above all, is refused: a peer cannot make
//! this process read memory it was not handed. The most recently used peer regions stay
//! mapped after their last slot here drops, so a steady stream of transfers maps nothing
//! new.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex};

use super::{Held, Owner, PoolError, Slot, SlotKey, SlotReleases, lock};
use crate::region::{ShmError, ShmRegion};

/// Peer regions kept mapped after their last slot here dropped, at most.
const KEEP_MAPPED: usize = 8;
/// Bytes of peer regions kept mapped that way, at most.
const KEEP_MAPPED_BYTES: usize = 256 << 20;

static RECENT: LazyLock<Mutex<VecDeque<Arc<ShmRegion>>>> = LazyLock::new(Mutex::default);

/// The slots one connection lent its peer (`troupe-protocol`'s ledger keeps them).
pub trait LentSlots: Send + Sync {
    /// The slot `key` names, if it is lent to the peer now.
    fn lent(&self, key: &SlotKey) -> Option<Slot>;
}

/// What a connection knows while it decodes one of its peer's frames (see [`with_peer`]).
pub struct PeerScope {
    /// Where a release of the peer's slots goes when the last handle here drops.
    pub releases: Arc<dyn SlotReleases>,
    /// The slots lent to the peer on this connection.
    pub lent: Arc<dyn LentSlots>,
    /// The regions the peer handed over with the frame.
    pub regions: Vec<Arc<ShmRegion>>,
}

thread_local! {
    static SCOPE: RefCell<Option<PeerScope>> = const { RefCell::new(None) };
}

/// Runs `f` (a decode of a peer's frame) with the descriptors it resolves ([`resolve`])
/// checked against, and held on behalf of, the connection `scope` describes.
pub fn with_peer<R>(scope: PeerScope, f: impl FnOnce() -> R) -> R {
    let before = SCOPE.replace(Some(scope));
    let result = f();
    SCOPE.set(before);
    result
}

/// The slot a descriptor `region+offset` of `len` bytes names, as a handle viewing those
/// `len` bytes.
///
/// Within [`with_peer`]: a slot lent to the peer (the lent handle, and the peer's reference
/// to it is released at once: this process holds it already), else a slot of a region the
/// peer handed over with the frame (held for the peer, released to it when the last handle
/// here drops). Outside any connection (a decode within this process): a live slot of this
/// process's pools.
///
/// # Errors
/// [`PoolError::NotLent`] for a slot of this process the peer was not lent,
/// [`PoolError::UnknownRegion`] for a region the peer did not hand over,
/// [`PoolError::UnknownSlot`] for a slot of this process that is not live,
/// [`PoolError::Shm`] for a range outside the region.
pub fn resolve(region: u64, offset: u64, len: u64) -> Result<Slot, PoolError> {
    if len == 0 {
        return Err(PoolError::Empty);
    }
    let key = SlotKey { region, offset };
    let scoped = SCOPE.with_borrow(|scope| {
        let scope = scope.as_ref()?;
        if let Some(slot) = scope.lent.lent(&key) {
            if saturating_usize(len) > slot.len() {
                return Some(Err(PoolError::NotLent {
                    region,
                    offset,
                    len,
                }));
            }
            scope.releases.release_slot(key);
            return Some(Ok(slot.truncated(saturating_usize(len))));
        }
        if super::is_local_region(region) {
            return Some(Err(PoolError::NotLent {
                region,
                offset,
                len,
            }));
        }
        let Some(mapped) = scope.regions.iter().find(|r| r.id() == region) else {
            return Some(Err(PoolError::UnknownRegion(region)));
        };
        Some(foreign(mapped, offset, len, scope.releases.clone()))
    });
    if let Some(resolved) = scoped {
        return resolved;
    }
    match super::local_slot(region, offset, len) {
        Some(held) => Ok(Slot::new(held?, saturating_usize(len))),
        None => Err(PoolError::UnknownRegion(region)),
    }
}

/// `n` as a `usize`, or `usize::MAX` where it does not fit (then out of every range).
fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A peer's slot in `mapped`, held for it.
fn foreign(
    mapped: &Arc<ShmRegion>,
    offset: u64,
    len: u64,
    releases: Arc<dyn SlotReleases>,
) -> Result<Slot, PoolError> {
    let (start, length) = (saturating_usize(offset), saturating_usize(len));
    if start
        .checked_add(length)
        .is_none_or(|end| end > mapped.len())
    {
        return Err(ShmError::OutOfBounds {
            region: mapped.id(),
            offset: start,
            len: length,
            region_len: mapped.len(),
        }
        .into());
    }
    keep_mapped(mapped);
    let held = Arc::new(Held {
        region: mapped.clone(),
        offset: start,
        capacity: length,
        owner: Owner::Foreign { releases },
    });
    Ok(Slot::new(held, length))
}

fn keep_mapped(region: &Arc<ShmRegion>) {
    // This process's own regions live as long as its pools keep them.
    if region.is_owner() {
        return;
    }
    let evicted = {
        let mut recent = lock(&RECENT);
        if let Some(at) = recent.iter().position(|r| Arc::ptr_eq(r, region)) {
            recent.remove(at);
        }
        recent.push_front(region.clone());
        let mut evicted = Vec::new();
        while recent.len() > KEEP_MAPPED
            || (recent.len() > 1
                && recent.iter().map(|r| r.len()).sum::<usize>() > KEEP_MAPPED_BYTES)
        {
            evicted.extend(recent.pop_back());
        }
        evicted
    };
    // Unmapped (if nothing else holds them) outside the lock.
    drop(evicted);
}

/// Forgets the peer regions kept mapped (tests that count mappings).
pub fn forget_mapped() {
    let evicted: Vec<_> = lock(&RECENT).drain(..).collect();
    drop(evicted);
}
