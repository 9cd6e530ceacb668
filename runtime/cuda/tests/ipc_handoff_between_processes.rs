//! CUDA IPC between processes: this test binary exports, a copy of itself imports.
//! Skipped (with a message) without a CUDA driver or device.

mod common;

use std::time::Instant;

use common::{
    CHILD_ENV, Check, ChildImporter, TestResult, apply, fill, gpu_or_skip, pattern_bytes,
};
use troupe_cuda::{CudaBuffer, DType, Exports};

/// The importer's side; does nothing unless this binary was started as the child.
#[test]
fn child_importer() -> TestResult {
    if std::env::var_os(CHILD_ENV).is_none() {
        return Ok(());
    }
    common::serve_as_child()
}

/// The plumbing of the GPU tests below, checked where there is no GPU too.
#[test]
fn the_child_importer_starts_and_answers() -> TestResult {
    let mut child = ChildImporter::spawn()?;
    child.ping()?;
    child.ping()?;
    child.exit()
}

#[test]
fn the_child_reads_what_the_exporter_wrote() -> TestResult {
    let Some(device) = gpu_or_skip("the_child_reads_what_the_exporter_wrote") else {
        return Ok(());
    };
    let mut child = ChildImporter::spawn()?;
    let mut exports = Exports::new();
    for (len, seed) in [(1 << 20, 1u8), (3 * (1 << 20) + 7, 2), (1, 3)] {
        let buffer = CudaBuffer::from_host(
            &device,
            DType::U8,
            &[len],
            &pattern_bytes(len as usize, seed),
        )?;
        let descriptor = exports.export(&buffer, child.peer)?;
        drop(buffer); // the export keeps it alive
        child.import(&descriptor, Check::Pattern(seed), false)?;
        child.checked()?;
        let releases = child.releases()?;
        assert_eq!(releases.len(), 1);
        assert_eq!(releases[0].export_id, descriptor.export_id);
        apply(&mut exports, child.peer, releases)?;
        assert!(exports.is_empty(), "the release freed the export");
    }
    child.exit()
}

#[test]
fn the_child_waits_for_writes_still_in_flight() -> TestResult {
    let Some(device) = gpu_or_skip("the_child_waits_for_writes_still_in_flight") else {
        return Ok(());
    };
    let mut child = ChildImporter::spawn()?;
    let mut exports = Exports::new();
    let len = 512u64 << 20;
    let buffer = CudaBuffer::alloc(&device, DType::U8, &[len])?;
    // Queued, not waited for: only the IPC event orders the child's reads after them.
    fill(&device, buffer.device_ptr(), len, 0)?;
    fill(&device, buffer.device_ptr(), len, 0x5a)?;
    let descriptor = exports.export(&buffer, child.peer)?;
    child.import(&descriptor, Check::Fill(0x5a), false)?;
    child.checked()?;
    apply(&mut exports, child.peer, child.releases()?)?;
    assert!(exports.is_empty());
    child.exit()
}

#[test]
fn one_allocation_is_mapped_once_however_often_it_is_sent() -> TestResult {
    let Some(device) = gpu_or_skip("one_allocation_is_mapped_once_however_often_it_is_sent") else {
        return Ok(());
    };
    let mut child = ChildImporter::spawn()?;
    let mut exports = Exports::new();
    let buffer = CudaBuffer::from_host(&device, DType::U8, &[4096], &pattern_bytes(4096, 7))?;
    let first = exports.export(&buffer, child.peer)?;
    let second = exports.export(&buffer, child.peer)?;
    assert_eq!(first.mem_handle, second.mem_handle);
    assert_ne!(first.export_id, second.export_id);

    assert_eq!(child.import(&first, Check::Pattern(7), true)?.mappings, 1);
    child.checked()?;
    assert_eq!(child.import(&second, Check::Pattern(7), true)?.mappings, 1);
    child.checked()?;
    child.drop_held()?;
    let releases = child.releases()?;
    assert_eq!(releases.len(), 2);
    apply(&mut exports, child.peer, releases)?;
    assert!(exports.is_empty());
    assert_eq!(buffer.holders(), 1);
    child.exit()
}

#[test]
fn a_crashed_importer_is_reclaimed_by_peer_gone() -> TestResult {
    let Some(device) = gpu_or_skip("a_crashed_importer_is_reclaimed_by_peer_gone") else {
        return Ok(());
    };
    let mut child = ChildImporter::spawn()?;
    let peer = child.peer;
    let mut exports = Exports::new();
    let buffer = CudaBuffer::from_host(&device, DType::U8, &[1 << 16], &pattern_bytes(1 << 16, 4))?;
    let descriptor = exports.export(&buffer, peer)?;
    child.import(&descriptor, Check::Pattern(4), true)?;
    child.checked()?;
    child.kill()?;

    assert_eq!(
        exports.holds(descriptor.export_id, peer),
        1,
        "no release came"
    );
    assert_eq!(exports.peer_gone(peer), 1);
    assert!(exports.is_empty());
    assert_eq!(buffer.holders(), 1, "only the exporter's own clone is left");
    Ok(())
}

/// Timing: handing a buffer to another process by IPC handle vs copying it through the
/// host. Prints a table; asserts only that the handoffs are correct.
#[test]
fn handoff_timing_against_a_host_copy() -> TestResult {
    let Some(device) = gpu_or_skip("handoff_timing_against_a_host_copy") else {
        return Ok(());
    };
    const ROUNDS: usize = 5;
    let mut child = ChildImporter::spawn()?;
    let mut exports = Exports::new();
    println!(
        "{:>9} | {:>10} | {:>10} | {:>12} | {:>11}",
        "size", "export us", "import us", "handoff us", "D2H2D ms"
    );
    for (name, len) in [
        ("1 MiB", 1u64 << 20),
        ("256 MiB", 256 << 20),
        ("4 GiB", 4 << 30),
    ] {
        let (free, _total) = device.context().mem_get_info()?;
        if (free as u64) < 2 * len + (256 << 20) {
            println!("{name:>9} | skipped: {free} bytes free on the device");
            continue;
        }
        let buffer = CudaBuffer::alloc(&device, DType::U8, &[len])?;
        let (mut export_us, mut import_us, mut handoff_us) = (vec![], vec![], vec![]);
        for round in 0..ROUNDS {
            let seed = round as u8 + 10;
            fill(&device, buffer.device_ptr(), len, seed)?;
            // Time the handoff, not the fill the child would otherwise wait for.
            device.synchronize()?;
            let start = Instant::now();
            let descriptor = exports.export(&buffer, child.peer)?;
            export_us.push(start.elapsed().as_secs_f64() * 1e6);
            let imported = child.import(&descriptor, Check::Fill(seed), false)?;
            handoff_us.push(start.elapsed().as_secs_f64() * 1e6);
            import_us.push(imported.import_us);
            child.checked()?;
            apply(&mut exports, child.peer, child.releases()?)?;
        }
        assert!(exports.is_empty());

        // The baseline: through pageable host memory, into a second device buffer.
        let copy = CudaBuffer::alloc(&device, DType::U8, &[len])?;
        let mut host = vec![0u8; usize::try_from(len)?];
        let mut copy_ms = vec![];
        for _ in 0..ROUNDS {
            let start = Instant::now();
            buffer.copy_to_host(&mut host)?;
            copy.copy_from_host(&host)?;
            copy_ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "{name:>9} | {:>10.1} | {:>10.1} | {:>12.1} | {:>11.2}",
            median(export_us),
            median(import_us),
            median(handoff_us),
            median(copy_ms)
        );
    }
    child.exit()
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}
