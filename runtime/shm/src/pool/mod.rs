//! A long-lived shared-memory pool for large buffers.
//!
//! Sending a large buffer to a peer process used to mean a fresh region per transfer: an
//! mmap, page faults on both sides and a copy. A [`Pool`] instead keeps a few long-lived
//! regions (64 MiB each by default; a larger allocation gets a region of its own) and hands
//! out slots in them, addressed by `(region, offset, length)`. Every process maps a region
//! once; a freed slot is reused by the next allocation that fits; fully idle regions beyond
//! [`PoolConfig::max_idle`] bytes are unmapped (the memory goes with the last process that
//! maps it).
//!
//! Ownership across processes (see `docs/semantics.md`, *Buffers*):
//!
//! - A slot is held through [`Slot`] handles; in the process that allocated it, the slot
//!   returns to the pool when the last handle drops *and* every peer it was sent to has
//!   released it (the connection that sent it keeps a handle until then).
//! - A peer that resolves a pool descriptor ([`resolve`], within the scope of the connection
//!   it came through, [`with_peer`]) gets a handle that keeps the slot alive: when its last handle drops there, the peer queues a release with the connection
//!   the descriptor came through ([`SlotReleases`], see [`with_peer`]), which sends it.
//!   The sender counts one reference per descriptor it sent and frees nothing before it is
//!   back to 0.
//! - When a peer's connection ends (it exited or crashed), everything it held is released
//!   at once.
//!
//! ```
//! use troupe_shm::pool::Pool;
//!
//! let pool = Pool::global();
//! let before = pool.stats().live_slots;
//! let slot = pool.alloc_with(1 << 20, |bytes| bytes.fill(7)).unwrap();
//! assert!(slot.is_local());
//! assert_eq!(pool.stats().live_slots, before + 1);
//! drop(slot);
//! ```

mod arena;
mod mapped;
mod slot;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use thiserror::Error;

use crate::region::{ShmError, ShmRegion};

pub use arena::ALIGN;
pub use mapped::{LentSlots, PeerScope, forget_mapped, resolve, with_peer};
pub use slot::{Slot, SlotKey, SlotReleases};

use arena::{Arena, aligned};
use slot::{Held, Owner};

const PAGE: usize = 4096;

/// Why a slot could not be allocated or a descriptor not be resolved.
#[derive(Debug, Error)]
pub enum PoolError {
    /// A zero-length slot was asked for.
    #[error("a pool slot cannot be empty")]
    Empty,
    /// The length does not fit the address space once aligned.
    #[error("a pool slot of {len} bytes is too large")]
    TooLarge {
        /// The length asked for.
        len: usize,
    },
    /// A region could not be created or mapped.
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// A slot of one of this process's regions is named that is not allocated (or is
    /// shorter than it said): garbage or a stale descriptor.
    #[error("no live slot {region}+{offset} of {len} bytes in this process's pool")]
    UnknownSlot {
        /// The region's id.
        region: u64,
        /// The offset named.
        offset: u64,
        /// The length named.
        len: u64,
    },
    /// A peer named a slot it was not lent on its connection (or longer than lent): memory
    /// it was never handed.
    #[error("slot {region}+{offset} of {len} bytes was not lent to this peer")]
    NotLent {
        /// The region's id.
        region: u64,
        /// The offset named.
        offset: u64,
        /// The length named.
        len: u64,
    },
    /// A peer named a region that is neither lent to it nor handed over with its frame.
    #[error("region {0} was not handed over on this connection")]
    UnknownRegion(u64),
}

/// How a pool grows and shrinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Size of a regular region; a larger allocation gets a region of its own size.
    pub region_size: usize,
    /// Bytes of fully free regions kept mapped for reuse; past this, idle regions go.
    pub max_idle: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            region_size: 64 << 20,
            max_idle: 128 << 20,
        }
    }
}

/// What a pool holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Slots allocated and not yet returned.
    pub live_slots: usize,
    /// Bytes of those slots (aligned sizes).
    pub live_bytes: usize,
    /// Regions mapped.
    pub regions: usize,
    /// Bytes of those regions.
    pub region_bytes: usize,
}

/// An arena of shared-memory regions handing out slots (see the module docs).
#[derive(Debug, Clone)]
pub struct Pool(Arc<Shared>);

#[derive(Debug)]
pub(crate) struct Shared {
    config: PoolConfig,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    regions: BTreeMap<u64, RegionState>,
    next_id: u64,
    live_slots: usize,
}

#[derive(Debug)]
struct RegionState {
    region: Arc<ShmRegion>,
    arena: Arena,
    live: HashMap<usize, Weak<Held>>,
}

/// Regions of this process's pools by region id (their pool and index there), so a
/// descriptor naming one resolves to its slot.
type LocalRegions = HashMap<u64, (Weak<Shared>, u64)>;

static LOCAL: LazyLock<Mutex<LocalRegions>> = LazyLock::new(Mutex::default);

static GLOBAL: LazyLock<Pool> = LazyLock::new(|| Pool::new(PoolConfig::default()));

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pool {
    /// A new, empty pool (tests and special cases; everything else uses [`Pool::global`]).
    pub fn new(config: PoolConfig) -> Pool {
        Pool(Arc::new(Shared {
            config,
            state: Mutex::default(),
        }))
    }

    /// The process's pool: what connections and the Python side allocate from.
    pub fn global() -> &'static Pool {
        &GLOBAL
    }

    /// A slot of `len` bytes whose contents are unspecified (a reused slot keeps old bytes).
    /// Only use it through [`Slot::writable_ptr`] before handing it to anyone.
    pub fn alloc(&self, len: usize) -> Result<Slot, PoolError> {
        self.alloc_held(len).map(|held| Slot::new(held, len))
    }

    /// A slot of `len` bytes filled by `fill` before anyone else can see it.
    pub fn alloc_with(&self, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<Slot, PoolError> {
        let held = self.alloc_held(len)?;
        // SAFETY: the slot was just allocated: no handle to it exists yet, here or elsewhere.
        let bytes = unsafe { &mut held.region.as_mut_slice()[held.offset..held.offset + len] };
        fill(bytes);
        Ok(Slot::new(held, len))
    }

    /// A slot holding a copy of `bytes`.
    pub fn copy_from_slice(&self, bytes: &[u8]) -> Result<Slot, PoolError> {
        self.alloc_with(bytes.len(), |target| target.copy_from_slice(bytes))
    }

    /// What the pool holds now.
    pub fn stats(&self) -> PoolStats {
        let state = lock(&self.0.state);
        PoolStats {
            live_slots: state.live_slots,
            live_bytes: state.regions.values().map(|r| r.arena.used()).sum(),
            regions: state.regions.len(),
            region_bytes: state.regions.values().map(|r| r.region.len()).sum(),
        }
    }

    /// Whether `key` names a live slot of this pool (one a handle or a peer still holds).
    pub fn contains(&self, key: &SlotKey) -> bool {
        let id = match lock(&LOCAL).get(&key.region) {
            Some((pool, id)) if Weak::ptr_eq(pool, &Arc::downgrade(&self.0)) => *id,
            _ => return false,
        };
        let state = lock(&self.0.state);
        usize::try_from(key.offset).is_ok_and(|offset| {
            state
                .regions
                .get(&id)
                .and_then(|r| r.live.get(&offset))
                .is_some_and(|slot| slot.strong_count() > 0)
        })
    }

    /// Unmaps every fully free region now; returns how many went.
    pub fn trim(&self) -> usize {
        let gone: Vec<RegionState> = {
            let mut state = lock(&self.0.state);
            let idle: Vec<u64> = state
                .regions
                .iter()
                .filter(|(_, r)| r.arena.used() == 0)
                .map(|(&id, _)| id)
                .collect();
            idle.iter()
                .filter_map(|id| state.regions.remove(id))
                .collect()
        };
        unregister(&gone);
        gone.len()
    }

    fn alloc_held(&self, len: usize) -> Result<Arc<Held>, PoolError> {
        if len == 0 {
            return Err(PoolError::Empty);
        }
        let size = aligned(len).ok_or(PoolError::TooLarge { len })?;
        let mut state = lock(&self.0.state);
        let found = state
            .regions
            .iter_mut()
            .find_map(|(&id, r)| r.arena.alloc(size).map(|offset| (id, offset)));
        let (id, offset) = match found {
            Some(found) => found,
            None => {
                let region_len = size
                    .checked_next_multiple_of(PAGE)
                    .ok_or(PoolError::TooLarge { len })?
                    .max(self.0.config.region_size);
                let region = ShmRegion::create(region_len)?;
                let id = state.next_id;
                state.next_id += 1;
                lock(&LOCAL).insert(region.id(), (Arc::downgrade(&self.0), id));
                let mut arena = Arena::new(region_len);
                let offset = arena.alloc(size).ok_or(PoolError::TooLarge { len })?;
                state.regions.insert(
                    id,
                    RegionState {
                        region,
                        arena,
                        live: HashMap::new(),
                    },
                );
                (id, offset)
            }
        };
        let pool = self.0.clone();
        let Some(region) = state.regions.get_mut(&id) else {
            unreachable!("the region was found or inserted under this lock")
        };
        let held = Arc::new(Held {
            region: region.region.clone(),
            offset,
            capacity: size,
            owner: Owner::Local {
                pool,
                region_id: id,
                size,
            },
        });
        region.live.insert(offset, Arc::downgrade(&held));
        state.live_slots += 1;
        Ok(held)
    }
}

impl Shared {
    /// Returns `[offset, offset + size)` of region `id`; called by a local slot's drop.
    pub(crate) fn free(&self, id: u64, offset: usize, size: usize) {
        let gone = {
            let mut state = lock(&self.state);
            let Some(region) = state.regions.get_mut(&id) else {
                return;
            };
            region.arena.free(offset, size);
            region.live.remove(&offset);
            let now_idle = region.arena.used() == 0;
            state.live_slots -= 1;
            let idle: usize = state
                .regions
                .values()
                .filter(|r| r.arena.used() == 0)
                .map(|r| r.region.len())
                .sum();
            (now_idle && idle > self.config.max_idle)
                .then(|| state.regions.remove(&id))
                .flatten()
        };
        // The region unmaps outside the lock.
        if let Some(region) = gone {
            unregister(std::slice::from_ref(&region));
        }
    }

    /// The live slot at `offset` of region `id`, if it is at least `len` bytes long.
    fn lookup(&self, id: u64, offset: u64, len: u64) -> Option<Arc<Held>> {
        let slot = {
            let state = lock(&self.state);
            let offset = usize::try_from(offset).ok()?;
            state.regions.get(&id)?.live.get(&offset)?.upgrade()
        };
        // Checked (and possibly dropped) outside the lock: a drop frees under it.
        slot.filter(|slot| usize::try_from(len).is_ok_and(|len| len <= slot.capacity))
    }
}

fn unregister(regions: &[RegionState]) {
    let mut local = lock(&LOCAL);
    for region in regions {
        local.remove(&region.region.id());
    }
}

/// Whether `region` is one of this process's pools' regions.
fn is_local_region(region: u64) -> bool {
    lock(&LOCAL).contains_key(&region)
}

/// The slot a descriptor names in one of this process's pools: `None` when the region is not
/// one of ours, `Some(Err)` when it is but the slot is not live.
fn local_slot(region: u64, offset: u64, len: u64) -> Option<Result<Arc<Held>, PoolError>> {
    let (pool, id) = {
        let local = lock(&LOCAL);
        let (pool, id) = local.get(&region)?;
        (pool.upgrade(), *id)
    };
    let unknown = || PoolError::UnknownSlot {
        region,
        offset,
        len,
    };
    Some(
        pool.and_then(|pool| pool.lookup(id, offset, len))
            .ok_or_else(unknown),
    )
}

#[cfg(test)]
mod tests;
