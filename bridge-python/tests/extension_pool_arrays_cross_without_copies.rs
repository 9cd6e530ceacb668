//! The shared-memory pool through the extension API: arrays go host -> Python -> host as the
//! same slot, arrays made with `troupe.empty` come back without a copy, a view kept in
//! Python keeps its slot until it is deleted, and a killed child's slots come back.

#![allow(clippy::unwrap_used)]

mod regions;
mod support;

use std::time::{Duration, Instant};

use regions::{mapped_regions, shm_names};

use support::start_plugin_with;
use troupe_bridge_python::extension::ExtensionRef;
use troupe_shm::pool::{Pool, SlotKey};
use troupe_value::{Array, Buffer, DType, Value};

const MIB: usize = 1 << 20;

async fn start(name: &str) -> ExtensionRef {
    start_plugin_with(name, "pool_arrays", &["numpy>=2,<3"]).await
}

/// A `u8` array of `len` bytes in the host's pool.
fn pooled(len: usize, fill: u8) -> Array {
    let data = Pool::global()
        .alloc_with(len, |bytes| {
            bytes.fill(fill);
            bytes[len - 1] = fill.wrapping_add(1);
        })
        .unwrap();
    Array::new(DType::U8, vec![len], Buffer::from(data)).unwrap()
}

fn array(value: Value) -> Array {
    match value {
        Value::Array(array) => array,
        other => panic!("expected an array, got {other:?}"),
    }
}

/// Waits (a few seconds at most) for `done`.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "not within 10 s: {what}");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[test]
fn host_arrays_come_back_as_the_same_slot_and_python_arrays_arrive_in_place() {
    actix::System::new().block_on(async {
        let ext = start("pool-echo").await;
        for len in [MIB, 64 * MIB] {
            let sent = pooled(len, 7);
            let key = sent.data().pool_key().unwrap();
            let back = array(
                ext.call("echo", vec![Value::Array(sent.clone())])
                    .await
                    .unwrap(),
            );
            assert_eq!(back.data().pool_key(), Some(key), "{len}: the same slot");
            assert_eq!(
                back.data().as_slice().as_ptr(),
                sent.data().as_slice().as_ptr(),
                "{len}: the same bytes, not a copy"
            );
            assert_eq!(back.data().as_slice()[len - 1], 8);
        }

        for len in [MIB, 64 * MIB] {
            let reply = ext
                .call("fresh", vec![Value::Int(len as i64)])
                .await
                .unwrap();
            let Value::List(items) = reply else {
                panic!("{reply:?}")
            };
            let made = array(items[0].clone());
            let (Value::Int(region), Value::Int(offset)) = (&items[1], &items[2]) else {
                panic!("{items:?}")
            };
            assert_eq!(
                made.data().pool_key(),
                Some(SlotKey {
                    region: *region as u64,
                    offset: *offset as u64
                }),
                "{len}: the reply lies where troupe.empty put it"
            );
            assert!(!made.data().in_own_pool());
            assert_eq!(made.data().as_slice()[255], 255);
            assert_eq!(made.len(), len);
            // Sent, the child's array is read-only there.
            assert_eq!(
                ext.call("sent_writeable", vec![]).await,
                Ok(Value::Bool(false))
            );
        }

        // Figures, same run: a 64 MiB host -> Python -> host round trip of a pool array, of
        // an owned array (copied once into the pool on the way out), a small call, and a
        // 64 MiB memcpy into a warm buffer.
        let sent = pooled(64 * MIB, 1);
        let owned = Array::from_vec(vec![1u8; 64 * MIB]);
        let mut target = vec![0u8; 64 * MIB];
        let (mut trips, mut owned_trips, mut small, mut copies) = (vec![], vec![], vec![], vec![]);
        // One kind per loop: a memcpy between two calls would evict what the calls use.
        for _ in 0..7 {
            let started = Instant::now();
            let back = ext
                .call("echo", vec![Value::Array(sent.clone())])
                .await
                .unwrap();
            trips.push(started.elapsed());
            drop(back);
        }
        for _ in 0..7 {
            let started = Instant::now();
            ext.call("echo", vec![Value::Int(1)]).await.unwrap();
            small.push(started.elapsed());
        }
        for _ in 0..7 {
            let started = Instant::now();
            let back = ext
                .call("echo", vec![Value::Array(owned.clone())])
                .await
                .unwrap();
            owned_trips.push(started.elapsed());
            drop(back);
        }
        for _ in 0..7 {
            let started = Instant::now();
            target.copy_from_slice(sent.data().as_slice());
            copies.push(started.elapsed());
        }
        eprintln!(
            "medians of 7: 64 MiB pool array round trip {:?}; 64 MiB owned array round trip \
             (one copy into the pool) {:?}; small call {:?}; 64 MiB memcpy {:?}",
            median(trips),
            median(owned_trips),
            median(small),
            median(copies)
        );
        ext.stop().await;
    });
}

#[test]
fn an_array_made_by_one_extension_reaches_another_without_a_copy() {
    actix::System::new().block_on(async {
        let (a, b) = (start("pool-maker").await, start("pool-reader").await);
        let reply = a.call("fresh", vec![Value::Int(MIB as i64)]).await.unwrap();
        let Value::List(items) = reply else {
            panic!("{reply:?}")
        };
        let made = array(items[0].clone());
        let want: u64 = made.data().as_slice().iter().map(|&b| u64::from(b)).sum();
        let seen = b
            .call("where", vec![Value::Array(made.clone())])
            .await
            .unwrap();
        let Value::List(seen) = seen else {
            panic!("{seen:?}")
        };
        // B maps A's region and reads A's slot: same region, same offset, not B's own.
        assert_eq!(seen[0], items[1], "A's region");
        assert_eq!(seen[1], items[2], "A's offset");
        assert_eq!(seen[2], Value::Bool(false), "not a slot of B's pool");
        assert_eq!(seen[3], Value::Int(want as i64), "the bytes A wrote");
        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn a_view_kept_in_python_keeps_its_slot_until_it_is_deleted() {
    actix::System::new().block_on(async {
        let ext = start("pool-keep").await;
        let sent = pooled(MIB, 2);
        let key = sent.data().pool_key().unwrap();
        let local = ext.call("keep", vec![Value::Array(sent)]).await.unwrap();
        assert_eq!(local, Value::Bool(false), "a view of the host's slot");
        assert!(Pool::global().contains(&key), "the child's view holds it");
        assert_eq!(
            ext.call("kept_sum", vec![]).await,
            Ok(Value::Int(2 * (MIB as i64 - 2) + 3))
        );
        assert_eq!(
            ext.call("kept_writeable", vec![]).await,
            Ok(Value::Bool(false))
        );
        ext.call("forget", vec![]).await.unwrap();
        eventually("the slot returns once the view is gone", || {
            !Pool::global().contains(&key)
        })
        .await;
        ext.stop().await;
    });
}

#[test]
fn a_killed_childs_slots_are_reclaimed_and_its_arrays_stay_readable() {
    actix::System::new().block_on(async {
        let ext = start("pool-kill").await;
        let sent = pooled(MIB, 4);
        let key = sent.data().pool_key().unwrap();
        ext.call("keep", vec![Value::Array(sent)]).await.unwrap();
        let reply = ext
            .call("fresh", vec![Value::Int(MIB as i64)])
            .await
            .unwrap();
        let Value::List(items) = reply else {
            panic!("{reply:?}")
        };
        let theirs: Buffer = array(items[0].clone()).data().clone();
        let pid = ext.pid().unwrap();
        assert!(mapped_regions(pid) > 0, "the child has a pool region");
        assert!(Pool::global().contains(&key));

        // SAFETY: a plain syscall on the child troupe spawned.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        eventually("the killed child's references are dropped", || {
            !Pool::global().contains(&key)
        })
        .await;
        assert_eq!(shm_names(pid), 0, "nothing of it is left with a name");
        // What the host holds of the dead child's memory is still mapped and readable.
        assert_eq!(theirs.as_slice()[255], 255);
        assert_eq!(theirs.len(), MIB);
        ext.stop().await;
    });
}
