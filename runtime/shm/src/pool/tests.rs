use super::*;

const MIB: usize = 1 << 20;

fn small_pool() -> Pool {
    Pool::new(PoolConfig {
        region_size: MIB,
        max_idle: MIB,
    })
}

fn place(slot: &Slot) -> (String, usize) {
    (slot.region().name().to_owned(), slot.offset())
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
fn idle_regions_past_the_bound_are_unmapped_and_unlinked() {
    let pool = small_pool();
    let slots: Vec<Slot> = (0..3).map(|_| pool.alloc(MIB).unwrap()).collect();
    let names: Vec<String> = slots.iter().map(|s| place(s).0).collect();
    assert_eq!(pool.stats().regions, 3);
    drop(slots);
    // One idle region (1 MiB) is within the bound and stays; the others went.
    assert_eq!(pool.stats().regions, 1);
    let present = names
        .iter()
        .filter(|n| std::path::Path::new("/dev/shm").join(n).exists())
        .count();
    assert_eq!(present, 1);
    assert_eq!(pool.trim(), 1);
    assert_eq!(pool.stats(), PoolStats::default());
    assert!(
        names
            .iter()
            .all(|n| !std::path::Path::new("/dev/shm").join(n).exists())
    );
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

#[test]
fn descriptors_of_own_regions_resolve_only_to_live_slots() {
    let pool = small_pool();
    let a = pool.copy_from_slice(&[5u8; 1000]).unwrap();
    let (region, offset) = place(&a);
    let back = resolve(&region, offset as u64, 1000).unwrap();
    assert_eq!(
        back.as_slice().as_ptr(),
        a.as_slice().as_ptr(),
        "the same slot"
    );
    assert_eq!(back.len(), 1000);
    // Garbage a peer could send: never a panic, always a typed error.
    for (offset, len) in [
        (offset as u64 + 64, 10),     // not a slot start
        (offset as u64, 1_000_000),   // longer than the slot
        (u64::MAX, 1),                // absurd offset
        (offset as u64 + 4096, 4096), // free space
    ] {
        let err = resolve(&region, offset, len).unwrap_err();
        assert!(matches!(err, PoolError::UnknownSlot { .. }), "{err:?}");
    }
    drop((a, back));
    let err = resolve(&region, offset as u64, 1000).unwrap_err();
    assert!(
        matches!(err, PoolError::UnknownSlot { .. }),
        "freed: {err:?}"
    );
}

#[test]
fn descriptors_outside_a_foreign_region_are_typed_errors() {
    let region = ShmRegion::create(4096).unwrap();
    for (offset, len) in [(4000, 97), (u64::MAX, 2), (0, 0), (0, u64::MAX)] {
        let err = resolve(region.name(), offset, len).unwrap_err();
        assert!(matches!(err, PoolError::Shm(_)), "{offset}+{len}: {err:?}");
    }
    for name in ["/etc/passwd", "troupe-does-not-exist"] {
        let err = resolve(name, 0, 1).unwrap_err();
        assert!(matches!(err, PoolError::Shm(_)), "{err:?}");
    }
    let ok = resolve(region.name(), 1024, 100).unwrap();
    assert_eq!(ok.len(), 100);
    assert!(!ok.is_local());
}

/// Releases a connection would send, kept.
#[derive(Default)]
struct Owed(Mutex<Vec<SlotKey>>);

impl SlotReleases for Owed {
    fn release_slot(&self, key: SlotKey) {
        lock(&self.0).push(key);
    }
}

#[test]
fn a_foreign_slot_is_released_to_its_connection_when_its_last_handle_drops() {
    let region = ShmRegion::create(1 << 16).unwrap();
    let owed = Arc::new(Owed::default());
    let slot = with_releases(&owed, || resolve(region.name(), 128, 512)).unwrap();
    let clone = slot.truncated(100);
    drop(slot);
    assert!(lock(&owed.0).is_empty());
    drop(clone);
    assert_eq!(
        *lock(&owed.0),
        vec![SlotKey {
            region: region.name().to_owned(),
            offset: 128
        }]
    );
}

#[test]
fn an_own_slot_resolved_for_a_peer_is_released_to_it_at_once() {
    let pool = small_pool();
    let a = pool.copy_from_slice(&[5u8; 100]).unwrap();
    let owed = Arc::new(Owed::default());
    let (region, offset) = place(&a);
    let back = with_releases(&owed, || resolve(&region, offset as u64, 100)).unwrap();
    assert!(back.is_local());
    assert_eq!(*lock(&owed.0), vec![a.key()]);
}
