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

use super::{Owner, PoolError, Releases, Slot, lock};
use crate::shm::{self, ShmError, ShmRegion};

/// Foreign regions kept mapped after their last slot here dropped, at most.
const KEEP_MAPPED: usize = 8;
/// Bytes of foreign regions kept mapped that way, at most.
const KEEP_MAPPED_BYTES: usize = 256 << 20;

static RECENT: LazyLock<Mutex<VecDeque<Arc<ShmRegion>>>> = LazyLock::new(Mutex::default);

thread_local! {
    static RELEASES: RefCell<Option<Arc<Releases>>> = const { RefCell::new(None) };
}

/// Runs `f` (a decode) with descriptors resolving on behalf of the connection `releases`
/// belongs to.
pub(crate) fn with_releases<R>(releases: &Arc<Releases>, f: impl FnOnce() -> R) -> R {
    let before = RELEASES.replace(Some(releases.clone()));
    let result = f();
    RELEASES.set(before);
    result
}

/// The slot `region+offset` of `len` bytes names, for the connection being decoded.
pub(crate) fn resolve(region: &str, offset: u64, len: u64) -> Result<Arc<Slot>, PoolError> {
    let releases = RELEASES.with_borrow(Clone::clone);
    if let Some(local) = super::local_slot(region, offset, len) {
        let slot = local?;
        // The peer counts this descriptor as a reference it holds for us; the slot is ours,
        // so nothing here needs the peer to keep it: release it at once.
        if let Some(releases) = releases {
            releases.push(slot.key());
        }
        return Ok(slot);
    }
    let mapped = shm::open(region)?;
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
    Ok(Arc::new(Slot {
        region: mapped,
        offset: start,
        len: length,
        owner: Owner::Foreign { releases },
    }))
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
