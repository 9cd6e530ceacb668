//! `array-handoff`: an f32 array of 4 KiB, 1 MiB, 64 MiB and 256 MiB handed host -> Python
//! -> host, one echo per sample.
//!
//! - `troupe-bridged`: the array lies in the host's shared-memory pool; the extension's
//!   `echo` gets a read-only numpy view of it and returns it, which travels back as the
//!   same slot (the lab checks: a copy fails the row). 4 KiB travels inline. A no-op call
//!   of the same extension is measured in the same rounds; each array row carries
//!   `ratio_to_noop` (target: <= 2 from 1 MiB up). Its cost does not grow with the size, so
//!   every size gets as many samples as 1 MiB (the other systems get fewer at 64 and 256
//!   MiB), in rounds that each start with one untimed echo, as the no-op rounds start warm.
//! - `memcpy-floor`: one copy of the same number of bytes between two warm buffers (what
//!   handing the array over by copying it once would cost at least). Rows of the other
//!   systems carry `ratio_to_memcpy` (target for troupe at 64 MiB: <= 0.1).
//! - `pyisolate`: a numpy array (and a torch CPU tensor where torch is installed) echoed
//!   through pyisolate's serialization; fewer samples, and none at 256 MiB in quick mode
//!   (tens of seconds per call).

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::systems::bridged::{Job, Lab};
use crate::systems::{SystemError, TROUPE_BRIDGED, pyisolate, python_host};
use crate::{BenchError, Effort, Measurement, notes};

const SCENARIO: &str = "array-handoff";
const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
const SIZES: [usize; 4] = [4 * KIB, MIB, 64 * MIB, 256 * MIB];

fn memcpy_samples(bytes: usize, n: usize) -> Vec<u64> {
    let source = vec![0x3fu8; bytes];
    let mut target = vec![0u8; bytes];
    target.copy_from_slice(&source); // warm: both buffers' pages are mapped
    (0..n)
        .map(|_| {
            let started = Instant::now();
            target.copy_from_slice(black_box(&source));
            black_box(&mut target);
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
        })
        .collect()
}

/// Samples per size: (memcpy, pyisolate); troupe takes the 1 MiB count at every size.
fn counts(effort: Effort, bytes: usize) -> (usize, usize) {
    match (effort, bytes) {
        (Effort::Quick, b) if b >= 256 * MIB => (20, 0),
        (Effort::Quick, b) if b >= 64 * MIB => (30, 1),
        (Effort::Quick, _) => (300, 5),
        (Effort::Full, b) if b >= 256 * MIB => (50, 1),
        (Effort::Full, b) if b >= 64 * MIB => (100, 3),
        (Effort::Full, _) => (2_000, 20),
    }
}

/// Runs the scenario.
pub(super) fn run(effort: Effort) -> Result<Vec<Measurement>, BenchError> {
    let fail = |e: SystemError| BenchError::Scenario {
        scenario: SCENARIO,
        reason: e.to_string(),
    };
    let mut rows = Vec::new();
    let mut memcpy = Vec::new();
    for bytes in SIZES {
        let (n, _) = counts(effort, bytes);
        let mut samples = memcpy_samples(bytes, n);
        let row =
            Measurement::from_samples(SCENARIO, "memcpy-floor", bytes as u64, 1, &mut samples);
        memcpy.push(row.median_ns);
        rows.push(row);
    }

    eprintln!("  {SCENARIO}: {TROUPE_BRIDGED} ...");
    let lab = Lab::start_with(&["numpy>=1.26,<3"]).map_err(fail)?;
    let noop = Job::Call { payload: 0 };
    lab.sample(noop, 200).map_err(fail)?;
    let mut noops = Vec::new();
    let (n, _) = counts(effort, MIB);
    for (bytes, floor) in SIZES.into_iter().zip(&memcpy) {
        let job = Job::Array { bytes };
        lab.sample(job, 2).map_err(fail)?;
        // Rounds of array echoes and no-op calls, so that noise hits both alike.
        let (mut samples, mut calls) = (Vec::with_capacity(n), Vec::new());
        let rounds = 5;
        for _ in 0..rounds {
            lab.sample(job, 1).map_err(fail)?;
            samples.extend(lab.sample(job, n.div_ceil(rounds)).map_err(fail)?);
            calls.extend(lab.sample(noop, 100).map_err(fail)?);
        }
        calls.sort_unstable();
        let noop_ns = crate::percentile(&calls, 0.5);
        noops.extend(calls);
        let row =
            Measurement::from_samples(SCENARIO, TROUPE_BRIDGED, bytes as u64, 1, &mut samples)
                .with("call", "echo")
                .with("kind", "pool array")
                .with_ratio("ratio_to_noop", noop_ns, 3)
                .with_ratio("ratio_to_memcpy", *floor, 3);
        rows.push(row);
    }
    rows.push(
        Measurement::from_samples(SCENARIO, TROUPE_BRIDGED, 0, 1, &mut noops).with("call", "noop"),
    );
    drop(lab);

    eprintln!("  {SCENARIO}: {} ...", python_host::SYSTEM);
    let troupe_counts: Vec<usize> = SIZES.iter().map(|_| effort.pick(200, 2_000)).collect();
    let params = json!({ "sizes": SIZES.to_vec(), "counts": troupe_counts });
    match python_host::measure(SCENARIO, params, Duration::from_secs(600)) {
        Ok(series) => {
            for series in series {
                match series.collect(SCENARIO) {
                    Ok(row) => {
                        let at = SIZES.iter().position(|&b| b as u64 == row.payload_bytes);
                        rows.push(match at {
                            Some(at) => row.with_ratio("ratio_to_memcpy", memcpy[at], 3),
                            None => row,
                        });
                    }
                    Err(error) => notes::skip(SCENARIO, python_host::SYSTEM, &error),
                }
            }
        }
        Err(error) => notes::skip(SCENARIO, python_host::SYSTEM, &error),
    }

    eprintln!("  {SCENARIO}: pyisolate ...");
    let sizes: Vec<usize> = SIZES.to_vec();
    let pyisolate_counts: Vec<usize> = SIZES.iter().map(|&b| counts(effort, b).1).collect();
    let params = json!({ "sizes": sizes, "counts": pyisolate_counts });
    match pyisolate::measure(SCENARIO, params, Duration::from_secs(1_800)) {
        Ok(series) => {
            for series in series {
                let mut row = match series.collect(SCENARIO) {
                    Ok(row) => row,
                    Err(error) => {
                        notes::skip(SCENARIO, pyisolate::SYSTEM, &error);
                        continue;
                    }
                };
                if let Some(at) = SIZES.iter().position(|&b| b as u64 == row.payload_bytes) {
                    row = row.with_ratio("ratio_to_memcpy", memcpy[at], 3);
                }
                rows.push(row);
            }
        }
        Err(error) => notes::skip(SCENARIO, pyisolate::SYSTEM, &error),
    }
    Ok(rows)
}
