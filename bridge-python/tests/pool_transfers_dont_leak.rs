//! 100,000 array transfers through the shared-memory pool leave nothing behind: every slot
//! returns to its pool, on both sides, and no region name outlives its use.
//!
//! Each call sends a 64 KiB array host -> child (the host's ledger copies it once into the
//! host's pool) and gets a new 64 KiB array back that the child made with `troupe.empty` (a
//! slot of the child's pool, sent without a copy): two transfers per call. One test in this
//! binary, so the host pool's counters are this test's alone.

mod child_support;
mod regions;

use std::time::{Duration, Instant};

use regions::{mapped_regions, shm_names};

use child_support::{Driver, module_dir, venv};
use troupe_protocol::{ToChild, ToHost};
use troupe_shm::pool::Pool;
use troupe_value::{Array, Value};

const PUMP: &str = r#"
import numpy as np

import troupe


class Pump(troupe.Extension):
    def swap(self, array):
        out = troupe.empty(array.shape, array.dtype)
        out[:] = array
        out[0] += 1
        return out

    def stats(self):
        return dict(troupe.pool_stats())
"#;

/// Transfers, each way together.
const TRANSFERS: usize = 100_000;

fn stat(stats: &Value, key: &str) -> i64 {
    match stats {
        Value::Map(map) => match map.get(key) {
            Some(Value::Int(n)) => *n,
            other => panic!("{key}: {other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_hundred_thousand_transfers_return_every_slot_and_leave_nothing_behind() {
    let venv = venv(&["numpy>=2,<3"]);
    let dir = module_dir("pump", PUMP);
    let host_slots = Pool::global().stats().live_slots;
    let (mut driver, _) = Driver::started(&venv, dir.path(), "pump");
    let before = driver.call("stats", vec![]).unwrap();

    let array = Array::from_vec(vec![1.0f32; 16 * 1024]);
    let started = Instant::now();
    for n in 0..TRANSFERS / 2 {
        let back = driver
            .call("swap", vec![Value::Array(array.clone())])
            .unwrap();
        let Value::Array(back) = back else {
            panic!("{back:?}")
        };
        assert!(back.data().pool_key().is_some(), "through the child's pool");
        if n % 10_000 == 0 {
            assert_eq!(back.as_slice::<f32>().unwrap()[..2], [2.0, 1.0]);
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{TRANSFERS} transfers of 64 KiB in {elapsed:?} ({:?} per call)",
        elapsed / (TRANSFERS as u32 / 2)
    );

    // The child's releases travel on their own thread: wait for the last ones (a call lets
    // the driver read the frames that carry them).
    let deadline = Instant::now() + Duration::from_secs(10);
    while driver.lent() > 0 {
        assert!(
            Instant::now() < deadline,
            "the child still holds host slots"
        );
        std::thread::sleep(Duration::from_millis(5));
        driver.call("stats", vec![]).unwrap();
    }
    assert_eq!(Pool::global().stats().live_slots, host_slots, "host pool");
    let after = driver.call("stats", vec![]).unwrap();
    for key in ["live_slots", "lent", "owed"] {
        assert_eq!(stat(&after, key), stat(&before, key), "child {key}");
    }
    assert!(stat(&after, "regions") <= 1, "the child reused one region");
    assert!(
        Pool::global().stats().regions <= 1,
        "the host reused one region"
    );

    let child = driver.pid;
    assert!(mapped_regions(child) >= 1, "the child maps its region");
    driver.send(ToChild::Shutdown);
    assert!(matches!(driver.next(), ToHost::ShutdownDone));
    assert!(driver.wait_exit(Duration::from_secs(10)).success());
    assert_eq!(shm_names(child), 0, "no region of the child has a name");
    assert_eq!(shm_names(std::process::id()), 0, "nor of the host");
}
