use super::*;

const MIB: usize = 1 << 20;

fn small_pool() -> Pool {
    Pool::new(PoolConfig {
        region_size: MIB,
        max_idle: MIB,
    })
}

fn place(slot: &Slot) -> (u64, usize) {
    (slot.region().id(), slot.offset())
}

/// Whether this process maps region `id` now (from its memory map: inode in column 5).
fn is_mapped(id: u64) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .any(|line| {
            line.contains("/memfd:troupe")
                && line.split_whitespace().nth(4) == Some(&id.to_string())
        })
}

#[test]
fn slots_are_aligned_disjoint_and_hold_their_bytes() {
    let pool = small_pool();
    let a = pool.copy_from_slice(&[1u8; 100]).unwrap();
    let b = pool.copy_from_slice(&[2u8; 70_000]).unwrap();
    assert_eq!(a.as_slice(), &[1u8; 100][..]);
    assert_eq!(b.as_slice(), &[2u8; 70_000][..]);
    let (ra, oa) = place(&a);
    let (rb, ob) = place(&b);
    assert_eq!(ra, rb, "one region");
    assert_eq!(oa % ALIGN, 0);
    assert_eq!(ob % ALIGN, 0);
    assert!(oa + 100 <= ob || ob + 70_000 <= oa, "disjoint");
    assert!(a.is_local());
    assert_eq!(a.as_slice().as_ptr() as usize % ALIGN, 0);
    let stats = pool.stats();
    assert_eq!((stats.live_slots, stats.regions), (2, 1));
    assert_eq!(stats.live_bytes, 128 + 70_016);
}

#[test]
fn a_freed_slot_is_reused_when_its_last_clone_drops() {
    let pool = small_pool();
    let a = pool.alloc(4096).unwrap();
    let first = place(&a);
    let clone = a.clone();
    drop(a);
    assert_eq!(pool.stats().live_slots, 1, "a clone still holds it");
    let key = clone.key();
    assert!(pool.contains(&key));
    assert!(!Pool::global().contains(&key), "another pool's slot");
    drop(clone);
    assert!(!pool.contains(&key));
    assert_eq!(pool.stats().live_slots, 0);
    let b = pool.alloc(4000).unwrap();
    assert_eq!(place(&b), first, "same region and offset");
    assert_eq!(pool.stats().regions, 1, "no new region");
}

#[test]
fn the_pool_grows_by_regions_and_large_slots_get_their_own() {
    let pool = small_pool();
    let a = pool.alloc(MIB / 2 + 1).unwrap();
    let b = pool.alloc(MIB / 2 + 1).unwrap();
    assert_ne!(
        place(&a).0,
        place(&b).0,
        "the second does not fit the first region"
    );
    let big = pool.alloc(3 * MIB + 5).unwrap();
    let stats = pool.stats();
    assert_eq!(stats.regions, 3);
    assert_eq!(stats.region_bytes, 2 * MIB + (3 * MIB + 4096));
    assert_eq!(big.len(), 3 * MIB + 5);
    assert_eq!(place(&big).1, 0);
}

#[test]
fn idle_regions_past_the_bound_are_unmapped() {
    let pool = small_pool();
    let slots: Vec<Slot> = (0..3).map(|_| pool.alloc(MIB).unwrap()).collect();
    let ids: Vec<u64> = slots.iter().map(|s| place(s).0).collect();
    assert!(ids.iter().all(|&id| is_mapped(id)));
    assert_eq!(pool.stats().regions, 3);
    drop(slots);
    // One idle region (1 MiB) is within the bound and stays; the others went.
    assert_eq!(pool.stats().regions, 1);
    assert_eq!(ids.iter().filter(|&&id| is_mapped(id)).count(), 1);
    assert_eq!(pool.trim(), 1);
    assert_eq!(pool.stats(), PoolStats::default());
    assert!(ids.iter().all(|&id| !is_mapped(id)), "unmapped");
}

#[test]
fn empty_and_overflowing_slots_are_typed_errors() {
    let pool = small_pool();
    assert!(matches!(pool.alloc(0), Err(PoolError::Empty)));
    assert!(matches!(
        pool.alloc(usize::MAX),
        Err(PoolError::TooLarge { .. })
    ));
}

/// Releases a connection would send, kept.
#[derive(Default)]
struct Owed(Mutex<Vec<SlotKey>>);

impl SlotReleases for Owed {
    fn release_slot(&self, key: SlotKey) {
        lock(&self.0).push(key);
    }
}

/// Slots a connection lent its peer.
#[derive(Default)]
struct Lent(Mutex<Vec<Slot>>);

impl LentSlots for Lent {
    fn lent(&self, key: &SlotKey) -> Option<Slot> {
        lock(&self.0).iter().find(|s| s.key() == *key).cloned()
    }
}

/// A peer's scope that lent `lent` and handed over `regions`, its releases kept in `owed`.
fn peer(owed: &Arc<Owed>, lent: Vec<Slot>, regions: Vec<Arc<ShmRegion>>) -> PeerScope {
    PeerScope {
        releases: owed.clone(),
        lent: Arc::new(Lent(Mutex::new(lent))),
        regions,
    }
}

/// A region "made by a peer": this process's own, but kept out of its pools, as a peer's
/// region would be.
fn peer_region(len: usize) -> Arc<ShmRegion> {
    ShmRegion::create(len).unwrap()
}

#[test]
fn a_peer_resolves_only_slots_it_was_lent_or_regions_it_handed_over() {
    let pool = small_pool();
    let lent = pool.copy_from_slice(&[5u8; 1000]).unwrap();
    let never_sent = pool.copy_from_slice(&[6u8; 1000]).unwrap();
    let owed = Arc::new(Owed::default());
    let theirs = peer_region(1 << 16);
    let (region, offset) = place(&lent);
    let scope = || peer(&owed, vec![lent.clone()], vec![theirs.clone()]);
    let back = with_peer(scope(), || resolve(region, offset as u64, 1000)).unwrap();
    assert_eq!(back.as_slice().as_ptr(), lent.as_slice().as_ptr());
    assert_eq!(
        *lock(&owed.0),
        vec![lent.key()],
        "released to the peer at once"
    );
    let (other, other_offset) = place(&never_sent);
    for (region, offset, len) in [
        (other, other_offset as u64, 1000), // a live slot of ours, never lent
        (region, offset as u64, 1001),      // longer than lent
        (region, offset as u64 + 4096, 8),  // free space of a lent region
    ] {
        let err = with_peer(scope(), || resolve(region, offset, len)).unwrap_err();
        assert!(matches!(err, PoolError::NotLent { .. }), "{err:?}");
    }
    let err = with_peer(scope(), || resolve(u64::MAX, 0, 8)).unwrap_err();
    assert!(matches!(err, PoolError::UnknownRegion(_)), "{err:?}");
    let err = with_peer(peer(&owed, vec![], vec![]), || resolve(theirs.id(), 0, 8)).unwrap_err();
    assert!(
        matches!(err, PoolError::UnknownRegion(_)),
        "not handed over with this frame: {err:?}"
    );
}

#[test]
fn descriptors_outside_a_peer_region_are_typed_errors() {
    let theirs = peer_region(4096);
    let owed = Arc::new(Owed::default());
    for (offset, len) in [(4000, 97), (u64::MAX, 2), (0, 0), (0, u64::MAX)] {
        let err = with_peer(peer(&owed, vec![], vec![theirs.clone()]), || {
            resolve(theirs.id(), offset, len)
        })
        .unwrap_err();
        assert!(
            matches!(err, PoolError::Shm(_) | PoolError::Empty),
            "{offset}+{len}: {err:?}"
        );
    }
    let ok = with_peer(peer(&owed, vec![], vec![theirs.clone()]), || {
        resolve(theirs.id(), 1024, 100)
    })
    .unwrap();
    assert_eq!(ok.len(), 100);
    assert!(!ok.is_local());
}

#[test]
fn descriptors_of_own_regions_resolve_in_process_only_to_live_slots() {
    let pool = small_pool();
    let a = pool.copy_from_slice(&[5u8; 1000]).unwrap();
    let (region, offset) = place(&a);
    let back = resolve(region, offset as u64, 1000).unwrap();
    assert_eq!(
        back.as_slice().as_ptr(),
        a.as_slice().as_ptr(),
        "the same slot"
    );
    for (offset, len) in [
        (offset as u64 + 64, 10),     // not a slot start
        (offset as u64, 1_000_000),   // longer than the slot
        (u64::MAX, 1),                // absurd offset
        (offset as u64 + 4096, 4096), // free space
    ] {
        let err = resolve(region, offset, len).unwrap_err();
        assert!(matches!(err, PoolError::UnknownSlot { .. }), "{err:?}");
    }
    drop((a, back));
    let err = resolve(region, offset as u64, 1000).unwrap_err();
    assert!(
        matches!(err, PoolError::UnknownSlot { .. }),
        "freed: {err:?}"
    );
}

#[test]
fn a_peer_slot_is_released_to_its_connection_when_its_last_handle_drops() {
    let theirs = peer_region(1 << 16);
    let owed = Arc::new(Owed::default());
    let slot = with_peer(peer(&owed, vec![], vec![theirs.clone()]), || {
        resolve(theirs.id(), 128, 512)
    })
    .unwrap();
    let clone = slot.truncated(100);
    drop(slot);
    assert!(lock(&owed.0).is_empty());
    drop(clone);
    assert_eq!(
        *lock(&owed.0),
        vec![SlotKey {
            region: theirs.id(),
            offset: 128
        }]
    );
}
