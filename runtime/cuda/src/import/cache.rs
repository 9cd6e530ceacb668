//! Mappings of peers' allocations, opened once per process and device and shared by every
//! import of them; apart from the driver so that it is testable without a GPU.

use std::collections::HashMap;

use troupe_value::device::IpcHandle;

/// Which mapping: a peer's allocation (its memory handle) on one of our devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MappingKey {
    pub(crate) handle: IpcHandle,
    pub(crate) device: usize,
}

/// Open mappings (`M`) with a count of the imports using each.
#[derive(Debug)]
pub(crate) struct MappingCache<M> {
    entries: HashMap<MappingKey, Cached<M>>,
}

#[derive(Debug)]
struct Cached<M> {
    mapping: M,
    /// Imports using it; never zero (the entry is removed instead).
    refs: usize,
}

impl<M> MappingCache<M> {
    /// An empty cache.
    pub(crate) fn new() -> Self {
        MappingCache {
            entries: HashMap::new(),
        }
    }

    /// One more import of `key`: the cached mapping, or a new one from `open` (CUDA lets a
    /// handle be opened by one context per device per process, and a second open of a handle
    /// still mapped is not to be relied on: hence the cache). A failed `open` leaves nothing
    /// behind.
    pub(crate) fn acquire<E>(
        &mut self,
        key: MappingKey,
        open: impl FnOnce() -> Result<M, E>,
    ) -> Result<&M, E> {
        use std::collections::hash_map::Entry;
        match self.entries.entry(key) {
            Entry::Occupied(e) => {
                let cached = e.into_mut();
                cached.refs += 1;
                Ok(&cached.mapping)
            }
            Entry::Vacant(e) => {
                let mapping = open()?;
                Ok(&e.insert(Cached { mapping, refs: 1 }).mapping)
            }
        }
    }

    /// One import of `key` fewer: hands back the mapping when that was the last, for the
    /// caller to close.
    pub(crate) fn release(&mut self, key: &MappingKey) -> Option<M> {
        let cached = self.entries.get_mut(key)?;
        cached.refs -= 1;
        if cached.refs == 0 {
            self.entries.remove(key).map(|c| c.mapping)
        } else {
            None
        }
    }

    /// Imports using `key`'s mapping (0 when it is not open).
    pub(crate) fn refs(&self, key: &MappingKey) -> usize {
        self.entries.get(key).map_or(0, |c| c.refs)
    }

    /// Open mappings.
    pub(crate) fn mappings(&self) -> impl Iterator<Item = &M> {
        self.entries.values().map(|c| &c.mapping)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use troupe_value::device::IPC_HANDLE_LEN;

    fn key(byte: u8, device: usize) -> MappingKey {
        MappingKey {
            handle: IpcHandle([byte; IPC_HANDLE_LEN]),
            device,
        }
    }

    #[test]
    fn an_allocation_is_opened_once_and_closed_with_its_last_import() {
        let opens = Cell::new(0);
        let open = || -> Result<&str, ()> {
            opens.set(opens.get() + 1);
            Ok("mapping")
        };
        let mut cache = MappingCache::new();
        assert_eq!(cache.acquire(key(1, 0), open), Ok(&"mapping"));
        assert_eq!(cache.acquire(key(1, 0), open), Ok(&"mapping"));
        assert_eq!(opens.get(), 1);
        assert_eq!(cache.refs(&key(1, 0)), 2);

        assert_eq!(cache.release(&key(1, 0)), None);
        assert_eq!(cache.release(&key(1, 0)), Some("mapping"));
        assert_eq!(cache.len(), 0);
        // Opened afresh after it was closed.
        assert!(cache.acquire(key(1, 0), open).is_ok());
        assert_eq!(opens.get(), 2);
    }

    #[test]
    fn the_same_handle_on_another_device_is_another_mapping() {
        let mut cache = MappingCache::new();
        assert!(cache.acquire(key(1, 0), || Ok::<_, ()>(0)).is_ok());
        assert!(cache.acquire(key(1, 1), || Ok::<_, ()>(1)).is_ok());
        assert!(cache.acquire(key(2, 0), || Ok::<_, ()>(2)).is_ok());
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.release(&key(1, 1)), Some(1));
        assert_eq!(cache.refs(&key(1, 0)), 1);
    }

    #[test]
    fn a_failed_open_leaves_nothing_behind() {
        let mut cache = MappingCache::<u8>::new();
        assert_eq!(cache.acquire(key(3, 0), || Err("no")), Err("no"));
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.release(&key(3, 0)), None, "unknown keys are ignored");
    }
}
