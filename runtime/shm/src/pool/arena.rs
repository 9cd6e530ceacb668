//! Offsets inside one region: a first-fit free list that coalesces neighbours.
//!
//! The arena knows nothing of memory; it hands out `[offset, offset + size)` ranges of a
//! region of `len` bytes, every one starting on an [`ALIGN`]-byte boundary.

use std::collections::BTreeMap;

/// Alignment of every slot's offset (a cache line: enough for any numpy dtype and SIMD loads).
pub const ALIGN: usize = 64;

/// `len` rounded up to [`ALIGN`]; `None` on overflow.
pub(crate) fn aligned(len: usize) -> Option<usize> {
    len.checked_add(ALIGN - 1).map(|n| n & !(ALIGN - 1))
}

/// The free ranges of one region.
#[derive(Debug)]
pub(crate) struct Arena {
    len: usize,
    /// Free ranges by offset: `offset -> size`, never adjacent (they are merged).
    free: BTreeMap<usize, usize>,
    used: usize,
}

impl Arena {
    /// An arena over `len` bytes, all free. `len` is rounded down to [`ALIGN`].
    pub(crate) fn new(len: usize) -> Arena {
        let len = len & !(ALIGN - 1);
        let mut free = BTreeMap::new();
        if len > 0 {
            free.insert(0, len);
        }
        Arena { len, free, used: 0 }
    }

    /// Bytes handed out and not yet freed.
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    /// Takes `size` bytes (a multiple of [`ALIGN`]) from the first free range that holds them.
    pub(crate) fn alloc(&mut self, size: usize) -> Option<usize> {
        debug_assert!(size > 0 && size.is_multiple_of(ALIGN));
        let (&offset, &free) = self.free.iter().find(|&(_, &free)| free >= size)?;
        self.free.remove(&offset);
        if free > size {
            self.free.insert(offset + size, free - size);
        }
        self.used += size;
        Some(offset)
    }

    /// Gives `[offset, offset + size)` back, merging it with free neighbours.
    pub(crate) fn free(&mut self, offset: usize, size: usize) {
        debug_assert!(offset + size <= self.len);
        self.used -= size;
        let (mut start, mut end) = (offset, offset + size);
        if let Some((&before, &before_size)) = self.free.range(..offset).next_back()
            && before + before_size == start
        {
            self.free.remove(&before);
            start = before;
        }
        if let Some(after_size) = self.free.remove(&end) {
            end += after_size;
        }
        self.free.insert(start, end - start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_disjoint_and_reused_after_free() {
        let mut arena = Arena::new(4096);
        let a = arena.alloc(aligned(100).unwrap()).unwrap();
        let b = arena.alloc(aligned(1).unwrap()).unwrap();
        assert_eq!((a, b), (0, 128));
        assert_eq!(arena.used(), 192);
        arena.free(a, 128);
        // First fit: the hole at 0 is reused by anything that fits it.
        assert_eq!(arena.alloc(64), Some(0));
        assert_eq!(arena.alloc(128), Some(192), "does not fit the 64-byte hole");
        assert_eq!(arena.alloc(64), Some(64));
    }

    #[test]
    fn freed_neighbours_merge_back_into_one_range() {
        let mut arena = Arena::new(1024);
        let slots: Vec<usize> = (0..16).map(|_| arena.alloc(64).unwrap()).collect();
        assert_eq!(arena.alloc(64), None, "full");
        for &s in slots.iter().step_by(2) {
            arena.free(s, 64);
        }
        assert_eq!(arena.alloc(128), None, "fragmented: no two free neighbours");
        for &s in slots.iter().skip(1).step_by(2) {
            arena.free(s, 64);
        }
        assert_eq!(arena.used(), 0);
        assert_eq!(arena.alloc(1024), Some(0), "one range again");
    }

    #[test]
    fn sizes_round_up_to_the_alignment() {
        assert_eq!(aligned(1), Some(64));
        assert_eq!(aligned(64), Some(64));
        assert_eq!(aligned(65), Some(128));
        assert_eq!(aligned(usize::MAX), None);
    }
}
