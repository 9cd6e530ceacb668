//! Turning a pool descriptor from a peer into a slot held here.
//!
//! A descriptor names `(region, offset, length)`. When the region is one of this process's
//! pools, it resolves to the live slot there (or is refused: a peer cannot make this process
//! read a slot it did not send). Otherwise the region is mapped (once per process; the most
//! recently used foreign regions stay mapped, so a steady stream of transfers maps nothing
//! new) and the slot is held on behalf of the connection the descriptor came through.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex};

use super::{Held, Owner, PoolError, Slot, SlotReleases, lock};
use crate::region::{ShmError, ShmRegion};

/// Foreign regions kept mapped after their last slot here dropped, at most.
const KEEP_MAPPED: usize = 8;
/// Bytes of foreign regions kept mapped that way, at most.
const KEEP_MAPPED_BYTES: usize = 256 << 20;

static RECENT: LazyLock<Mutex<VecDeque<Arc<ShmRegion>>>> = LazyLock::new(Mutex::default);

thread_local! {
    static RELEASES: RefCell<Option<Arc<dyn SlotReleases>>> = const { RefCell::new(None) };
}

/// Runs `f` (a decode of a peer's frame) with the descriptors it resolves ([`resolve`]) held
/// on behalf of the connection `releases` belongs to: a peer's slot queues its release
/// there when its last handle drops.
pub fn with_releases<S: SlotReleases + 'static, R>(releases: &Arc<S>, f: impl FnOnce() -> R) -> R {
    let releases: Arc<dyn SlotReleases> = releases.clone();
    let before = RELEASES.replace(Some(releases));
    let result = f();
    RELEASES.set(before);
    result
}

/// The slot a descriptor `region+offset` of `len` bytes names, as a handle viewing those
/// `len` bytes: a live slot of this process's pool, or a peer's slot mapped here and held
/// for the connection being decoded (see [`with_releases`]).
///
/// # Errors
/// [`PoolError::UnknownSlot`] for a region of this process's pools where no such slot is
/// live, [`PoolError::Shm`] for a peer's region that cannot be mapped or a range outside it.
pub fn resolve(region: &str, offset: u64, len: u64) -> Result<Slot, PoolError> {
    let releases = RELEASES.with_borrow(Clone::clone);
    if let Some(local) = super::local_slot(region, offset, len) {
        let held = local?;
        // The peer counts this descriptor as a reference it holds for us; the slot is ours,
        // so nothing here needs the peer to keep it: release it at once.
        if let Some(releases) = releases {
            releases.release_slot(held.key());
        }
        // `local_slot` checked `len` against the slot.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        return Ok(Slot::new(held, len));
    }
    let mapped = crate::region::open(region)?;
    let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let (start, length) = (as_usize(offset), as_usize(len));
    if length == 0
        || start
            .checked_add(length)
            .is_none_or(|end| end > mapped.len())
    {
        return Err(ShmError::OutOfBounds {
            name: region.to_owned(),
            offset: start,
            len: length,
            region_len: mapped.len(),
        }
        .into());
    }
    keep_mapped(&mapped);
    let held = Arc::new(Held {
        region: mapped,
        offset: start,
        capacity: length,
        owner: Owner::Foreign { releases },
    });
    Ok(Slot::new(held, length))
}

fn keep_mapped(region: &Arc<ShmRegion>) {
    // A plain region this process created stays mapped while its owner holds it; keeping
    // it here would keep its name in /dev/shm past the owner's drop.
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

/// Forgets the foreign regions kept mapped (tests that count mappings).
pub fn forget_mapped() {
    let evicted: Vec<_> = lock(&RECENT).drain(..).collect();
    drop(evicted);
}
