//! `cuda-handoff`: a CUDA device buffer of 1 MiB, 256 MiB and 4 GiB handed host -> Python ->
//! host, one echo per sample.
//!
//! - `troupe-bridged`: the buffer crosses as a CUDA IPC handle; the extension's `echo` gets a
//!   `troupe.CudaArray` mapping it and returns it, which travels back as the host's own
//!   buffer (the lab checks the device pointer: a copy fails the row).
//! - `copy-floor`: the same bytes copied device -> host -> device (what handing the buffer
//!   over by copying it through host memory would cost at least).
//!
//! Without a CUDA driver or device the scenario gives one row, system `no-gpu`, with no
//! samples and a note saying so: nothing is measured, nothing fails.

use std::time::Instant;

use troupe_cuda::{CudaBuffer, CudaDevice, CudaError, DType, device_count, driver_available};

use crate::systems::bridged::{Job, Lab};
use crate::systems::{SystemError, TROUPE_BRIDGED};
use crate::{BenchError, Effort, Measurement, notes};

const SCENARIO: &str = "cuda-handoff";
const MIB: usize = 1 << 20;
const SIZES: [usize; 3] = [MIB, 256 * MIB, 4096 * MIB];

/// Samples per size.
fn count(effort: Effort, bytes: usize) -> usize {
    match (effort, bytes) {
        (Effort::Quick, b) if b >= 4096 * MIB => 3,
        (Effort::Quick, b) if b >= 256 * MIB => 10,
        (Effort::Quick, _) => 100,
        (Effort::Full, b) if b >= 4096 * MIB => 10,
        (Effort::Full, b) if b >= 256 * MIB => 30,
        (Effort::Full, _) => 1_000,
    }
}

/// Why no GPU can be measured here, if none can.
fn no_gpu() -> Option<String> {
    if !driver_available() {
        return Some("no CUDA driver on this machine".to_owned());
    }
    match device_count() {
        Ok(0) => Some("a CUDA driver but no CUDA device".to_owned()),
        Ok(_) => None,
        Err(e) => Some(format!("the CUDA driver does not start: {e}")),
    }
}

/// Device -> host -> device copies of `bytes` bytes.
fn copy_samples(device: &CudaDevice, bytes: usize, n: usize) -> Result<Vec<u64>, CudaError> {
    let source = CudaBuffer::alloc(device, DType::U8, &[bytes as u64])?;
    let target = CudaBuffer::alloc(device, DType::U8, &[bytes as u64])?;
    let mut host = vec![0u8; bytes];
    source.copy_to_host(&mut host)?; // warm: the host pages are mapped
    (0..n)
        .map(|_| {
            let started = Instant::now();
            source.copy_to_host(&mut host)?;
            target.copy_from_host(&host)?;
            Ok(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX))
        })
        .collect()
}

/// Runs the scenario.
pub(super) fn run(effort: Effort) -> Result<Vec<Measurement>, BenchError> {
    if let Some(why) = no_gpu() {
        notes::skip(SCENARIO, TROUPE_BRIDGED, &why);
        let row = Measurement::from_samples(SCENARIO, "no-gpu", 0, 1, &mut [])
            .with("status", format!("not measured: {why}"));
        return Ok(vec![row]);
    }
    let scenario_error = |reason: String| BenchError::Scenario {
        scenario: SCENARIO,
        reason,
    };
    let device = CudaDevice::shared(0).map_err(|e| scenario_error(e.to_string()))?;
    let mut rows = Vec::new();
    let mut floors = Vec::new();
    for bytes in SIZES {
        let mut samples = copy_samples(&device, bytes, count(effort, bytes))
            .map_err(|e| scenario_error(format!("copy floor at {bytes} B: {e}")))?;
        let row = Measurement::from_samples(SCENARIO, "copy-floor", bytes as u64, 1, &mut samples)
            .with("path", "device -> host -> device");
        floors.push(row.median_ns);
        rows.push(row);
    }

    eprintln!("  {SCENARIO}: {TROUPE_BRIDGED} ...");
    let fail = |e: SystemError| scenario_error(e.to_string());
    let lab = Lab::start().map_err(fail)?;
    for (bytes, floor) in SIZES.into_iter().zip(floors) {
        let job = Job::DeviceArray { bytes };
        lab.sample(job, 1).map_err(fail)?;
        let mut samples = lab.sample(job, count(effort, bytes)).map_err(fail)?;
        let row =
            Measurement::from_samples(SCENARIO, TROUPE_BRIDGED, bytes as u64, 1, &mut samples)
                .with("call", "echo")
                .with("kind", "CUDA IPC handle")
                .with_ratio("ratio_to_copy", floor, 4);
        rows.push(row);
    }
    Ok(rows)
}
