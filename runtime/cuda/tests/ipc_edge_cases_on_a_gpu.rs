//! CUDA IPC where the plain handoff tests do not look (from the review of the CUDA IPC code,
//! issue 16): buffers at offsets inside one allocation, an exporter whose stream is stalled,
//! many exports alive at once, `device_of` on a thread with no context, and the calling
//! thread's own context left as it was. Skipped (with a message) without a CUDA driver or
//! device.
//!
//!   cargo test -p troupe-cuda --test ipc_edge_cases_on_a_gpu -- --nocapture
//!
//! A driver failure in a `Drop` path of troupe-cuda is only a `tracing::warn!`: the tests here
//! count the warnings of their own thread (where every drop of theirs runs) and fail on any.
//! The child importer prints its warnings to stderr as `@@troupe-warning` lines.

mod common;

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{
    CHILD_ENV, Check, ChildImporter, TestResult, apply, fill, gpu_or_skip, pattern_bytes,
};
use cudarc::driver::sys;
use troupe_cuda::{CudaBuffer, DType, Exports, PeerId};

/// Counts (and prints) WARN and ERROR events of any target.
#[derive(Default)]
struct CountWarnings(Arc<AtomicUsize>);

impl tracing::Subscriber for CountWarnings {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        self.0.fetch_add(1, Ordering::SeqCst);
        eprintln!("@@troupe-warning pid {} {event:?}", std::process::id());
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Runs `test` and fails if troupe-cuda logged a warning on this thread meanwhile.
fn without_warnings(test: impl FnOnce() -> TestResult) -> TestResult {
    let counter = CountWarnings::default();
    let warnings = Arc::clone(&counter.0);
    tracing::subscriber::with_default(counter, test)?;
    match warnings.load(Ordering::SeqCst) {
        0 => Ok(()),
        n => {
            Err(format!("troupe-cuda logged {n} warning(s): see the @@troupe-warning lines").into())
        }
    }
}

/// The importer's side; does nothing unless this binary was started as the child.
#[test]
fn child_importer() -> TestResult {
    if std::env::var_os(CHILD_ENV).is_none() {
        return Ok(());
    }
    // The child's warnings show in its stderr, which the parent's output includes.
    let _ = tracing::subscriber::set_global_default(CountWarnings::default());
    common::serve_as_child()
}

/// Two buffers at non-zero offsets inside one `cuMemAlloc` allocation (what a torch or cupy
/// tensor in a caching-allocator block is): the descriptors carry the offsets and name the
/// allocation by the same handle bytes (the importer's mapping cache keys on them: else it
/// opens the allocation twice), and the child reads each buffer's own bytes.
#[test]
fn buffers_at_offsets_in_one_allocation_are_read_at_their_offsets() -> TestResult {
    let Some(device) =
        gpu_or_skip("buffers_at_offsets_in_one_allocation_are_read_at_their_offsets")
    else {
        return Ok(());
    };
    without_warnings(|| {
        let base = CudaBuffer::from_host(&device, DType::U8, &[4 << 20], &vec![0xee; 4 << 20])?;
        let (off_a, len_a) = (256u64, 1000u64);
        let (off_b, len_b) = ((1u64 << 20) + 512, 3 * 4096u64);
        let keeper = || Box::new(base.clone());
        // SAFETY: both ranges lie inside `base`, which each keeper (a clone) keeps alive.
        let a = unsafe {
            CudaBuffer::borrowed(
                &device,
                base.device_ptr() + off_a,
                DType::U8,
                &[len_a],
                keeper(),
            )
        }?;
        // SAFETY: as above.
        let b = unsafe {
            CudaBuffer::borrowed(
                &device,
                base.device_ptr() + off_b,
                DType::U8,
                &[len_b],
                keeper(),
            )
        }?;
        a.copy_from_host(&pattern_bytes(len_a as usize, 31))?;
        b.copy_from_host(&pattern_bytes(len_b as usize, 32))?;

        let mut child = ChildImporter::spawn()?;
        let mut exports = Exports::new();
        let da = exports.export(&a, child.peer)?;
        let db = exports.export(&b, child.peer)?;
        println!(
            "offsets {} {}; same handle bytes: {}",
            da.offset,
            db.offset,
            da.mem_handle == db.mem_handle
        );
        assert_eq!((da.offset, db.offset), (off_a, off_b));
        assert_eq!(
            da.device_uuid,
            device.uuid()?,
            "the descriptor names the device's UUID"
        );

        let first = child.import(&da, Check::Pattern(31), true)?;
        child.checked()?;
        let second = child.import(&db, Check::Pattern(32), true)?;
        child.checked()?;
        println!(
            "mappings after the 1st import: {}, after the 2nd: {}",
            first.mappings, second.mappings
        );
        child.drop_held()?;
        // The child's raw `Importer` tears an import down on the dropping thread: its
        // releases are due at once (only a connection's `CudaPlane` uses a reaper thread).
        let releases = child.releases()?;
        assert_eq!(releases.len(), 2);
        apply(&mut exports, child.peer, releases)?;
        assert!(exports.is_empty());
        assert_eq!(
            da.mem_handle, db.mem_handle,
            "cuIpcGetMemHandle named one allocation by two byte strings: the mapping cache keys on them"
        );
        assert_eq!(second.mappings, 1, "one allocation, one mapping");
        drop((a, b));
        assert_eq!(base.holders(), 1);
        child.exit()
    })
}

extern "C" fn stall(_: *mut c_void) {
    std::thread::sleep(Duration::from_millis(1500));
}

/// The import waits for the exporter's event: the exporter's stream is stalled for 1.5 s by a
/// host function before the write the child must see. Without the wait the child reads 0 and
/// answers at once.
#[test]
fn the_import_waits_for_a_stalled_exporter() -> TestResult {
    let Some(device) = gpu_or_skip("the_import_waits_for_a_stalled_exporter") else {
        return Ok(());
    };
    without_warnings(|| {
        let mut child = ChildImporter::spawn()?;
        let mut exports = Exports::new();
        // Warm the child's CUDA start-up so it does not hide in the stall.
        let warm = CudaBuffer::from_host(&device, DType::U8, &[16], &pattern_bytes(16, 1))?;
        let d = exports.export(&warm, child.peer)?;
        child.import(&d, Check::Pattern(1), false)?;
        child.checked()?;
        apply(&mut exports, child.peer, child.releases()?)?;

        let len = 64u64 << 20;
        let buffer = CudaBuffer::alloc(&device, DType::U8, &[len])?;
        fill(&device, buffer.device_ptr(), len, 0)?;
        device.synchronize()?;
        device.context().bind_to_thread()?;
        // SAFETY: the context is current; `stall` calls no CUDA function.
        unsafe {
            sys::cuLaunchHostFunc(
                device.stream().cu_stream(),
                Some(stall),
                std::ptr::null_mut(),
            )
        }
        .result()?;
        fill(&device, buffer.device_ptr(), len, 0x5a)?;
        let started = Instant::now();
        let descriptor = exports.export(&buffer, child.peer)?;
        let imported = child.import(&descriptor, Check::Fill(0x5a), false)?;
        let checked = child.checked();
        println!(
            "import took {:.0} us in the child, {:.0} ms end to end",
            imported.import_us,
            started.elapsed().as_secs_f64() * 1e3
        );
        checked?;
        assert!(
            imported.import_us > 1.0e6,
            "the child's import returned after {:.0} us: it did not wait for the exporter's event",
            imported.import_us
        );
        apply(&mut exports, child.peer, child.releases()?)?;
        child.exit()
    })
}

/// PyTorch stops creating interprocess events after 1000 live ones (torch/csrc/CudaIPCTypes.h:
/// CUDA "ha[s] the limit on the number of recorded blocking interprocess events ... around
/// ~22,000"). troupe makes one per export and keeps it until the release: 40,000 exports (or
/// 30 s of them) must all succeed, and all end with the peer.
#[test]
fn many_exports_can_be_alive_at_once() -> TestResult {
    let Some(device) = gpu_or_skip("many_exports_can_be_alive_at_once") else {
        return Ok(());
    };
    without_warnings(|| {
        let buffer = CudaBuffer::from_host(&device, DType::U8, &[64], &pattern_bytes(64, 2))?;
        let mut exports = Exports::new();
        let peer = PeerId(99);
        let started = Instant::now();
        let mut made = 0usize;
        let mut failure = None;
        while made < 40_000 && started.elapsed() < Duration::from_secs(30) {
            match exports.export(&buffer, peer) {
                Ok(_) => made += 1,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        println!(
            "{made} exports alive after {:.1} s; stopped by {failure:?}",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(exports.peer_gone(peer), made);
        drop(exports);
        assert_eq!(buffer.holders(), 1);
        assert!(failure.is_none(), "export {made} failed: {failure:?}");
        Ok(())
    })
}

/// `device_of` (the child asks it of every tensor it sends) calls `cuPointerGetAttribute`
/// without making a context current first: on a fresh thread there is none.
#[test]
fn device_of_answers_on_a_thread_without_a_context() -> TestResult {
    let Some(device) = gpu_or_skip("device_of_answers_on_a_thread_without_a_context") else {
        return Ok(());
    };
    let buffer = CudaBuffer::alloc(&device, DType::U8, &[16])?;
    let ptr = buffer.device_ptr();
    let (had_context, ordinal) = std::thread::spawn(move || {
        let mut current: sys::CUcontext = std::ptr::null_mut();
        // SAFETY: `current` outlives the call.
        let _ = unsafe { sys::cuCtxGetCurrent(&mut current) };
        (!current.is_null(), troupe_cuda::device_of(ptr))
    })
    .join()
    .map_err(|_| "the thread panicked")?;
    println!("fresh thread had a current context: {had_context}; device_of: {ordinal:?}");
    assert_eq!(ordinal, Ok(0));
    Ok(())
}

/// The thread's current context, or null.
fn current_context() -> Result<sys::CUcontext, sys::CUresult> {
    let mut current: sys::CUcontext = std::ptr::null_mut();
    // SAFETY: `current` outlives the call; the driver is initialised (a device was opened).
    unsafe { sys::cuCtxGetCurrent(&mut current) }
        .result()
        .map_err(|e| e.0)?;
    Ok(current)
}

/// Every troupe-cuda call makes the device's primary context current for its own duration and
/// restores the thread's previous one after (finding H3): a context of the caller's own (as
/// PyCUDA or a library with its own context makes; on several GPUs, torch's current device)
/// survives the call, and a thread that had none is left with none.
#[test]
fn a_call_leaves_the_threads_context_as_it_found_it() -> TestResult {
    let Some(device) = gpu_or_skip("a_call_leaves_the_threads_context_as_it_found_it") else {
        return Ok(());
    };
    let buffer = CudaBuffer::from_host(&device, DType::U8, &[16], &pattern_bytes(16, 6))?;
    let mut cu_device: sys::CUdevice = 0;
    let mut own: sys::CUcontext = std::ptr::null_mut();
    // SAFETY: out-pointers outlive the calls; the context made is destroyed below.
    unsafe {
        sys::cuDeviceGet(&mut cu_device, 0).result()?;
        sys::cuCtxCreate_v2(&mut own, 0, cu_device).result()?; // also makes it current
    }
    let read = buffer.to_host();
    let after = current_context();
    // SAFETY: `own` was made above and is destroyed once.
    unsafe { sys::cuCtxDestroy_v2(own) }.result()?;
    let after = after.map_err(|code| format!("cuCtxGetCurrent: {code:?}"))?;
    println!("context before the call {own:?}, after {after:?}");
    assert_eq!(read?, pattern_bytes(16, 6));
    assert_eq!(
        after, own,
        "troupe-cuda switched the thread's current context and left it switched"
    );

    // A context pointer is not `Send`: the thread says whether it was left with one.
    let clone = buffer.clone();
    let (read, left_with) = std::thread::spawn(move || {
        let read = clone.to_host();
        (
            read,
            current_context().map(|c| (!c.is_null()).then(|| format!("{c:?}"))),
        )
    })
    .join()
    .map_err(|_| "the thread panicked")?;
    assert_eq!(read?, pattern_bytes(16, 6));
    let left_with = left_with.map_err(|code| format!("cuCtxGetCurrent: {code:?}"))?;
    assert_eq!(
        left_with, None,
        "a thread without a context was left with one"
    );
    Ok(())
}
