//! CUDA arrays through a Python extension with torch, where `extension_cuda_arrays` does not
//! look (from the review of the CUDA IPC code, issue 16; plugin `cuda_edge_cases.py`): a
//! sliced tensor at an odd offset of its block, in-place writes of the child to the host's
//! array, a torch view of an import sent back, a DLPack-only object, a zero-size tensor, an
//! expandable-segments tensor, 2000 tensors in one reply, and a tensor whose exporter dies.
//!
//! Skipped (with a message) without a CUDA driver or device, or without torch with CUDA in
//! the extension's venv: on a GPU machine with torch in the system Python, set
//! `TROUPE_TEST_SYSTEM_SITE_PACKAGES=1`.
//!
//!   TROUPE_TEST_SYSTEM_SITE_PACKAGES=1 cargo test -p troupe-bridge-python \
//!     --test extension_cuda_edge_cases -- --test-threads=1 --nocapture

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::cuda::{child_exports, cuda_venv, eventually, gpu_or_skip, pattern, pattern_from};
use support::plugins;
use troupe_bridge_python::extension::{self, ExtensionConfig, ExtensionRef, NoRoutes};
use troupe_cuda::{CudaBuffer, CudaDevice, DType, DeviceMemory, device_count};
use troupe_value::{CallError, DeviceArray, Value};

/// The extension, or `None` (skip) when its venv has no torch with CUDA.
async fn start(name: &str) -> Option<ExtensionRef> {
    start_with(name, &[]).await
}

/// [`start`] with environment variables `vars` in the child.
async fn start_with(name: &str, vars: &[(&str, &str)]) -> Option<ExtensionRef> {
    let config = vars.iter().fold(
        ExtensionConfig::new(name, "cuda_edge_cases").path(plugins()),
        |config, (key, value)| config.var(*key, *value),
    );
    let ext = extension::start(config, cuda_venv().await, Arc::new(NoRoutes));
    let status = ext.ready_within(Duration::from_secs(120)).await;
    assert!(status.is_ok(), "{status:?}");
    let library = ext.call("library", vec![]).await.unwrap();
    if library.as_str() != Some("torch") {
        println!("{name}: skipped: no torch with CUDA in the extension's venv");
        ext.stop().await;
        return None;
    }
    println!("{name}: {:?}", ext.call("versions", vec![]).await);
    Some(ext)
}

/// Runs `body` with device 0 and the plugin started as extension `test` (stopped after), or
/// skips (with a message) without a GPU or torch.
fn on_a_gpu_with_torch(test: &str, body: impl AsyncFnOnce(CudaDevice, &ExtensionRef)) {
    let Some(device) = gpu_or_skip(test) else {
        return;
    };
    actix::System::new().block_on(async {
        let Some(ext) = start(test).await else {
            return;
        };
        body(device, &ext).await;
        ext.stop().await;
    });
}

/// Waits until the host released every export of the child.
async fn child_exports_end(ext: &ExtensionRef) {
    eventually("the child's exports end", async || {
        child_exports(ext).await == 0
    })
    .await;
}

fn host_bytes(array: &DeviceArray) -> Vec<u8> {
    DeviceMemory::of(array).unwrap().to_host().unwrap()
}

/// Where `got` first differs from `want` (`usize::MAX` for a length mismatch).
fn first_mismatch(got: &[u8], want: &[u8]) -> Option<(usize, u8, u8)> {
    if got.len() != want.len() {
        return Some((usize::MAX, 0, 0));
    }
    got.iter()
        .zip(want)
        .enumerate()
        .find(|(_, (g, w))| g != w)
        .map(|(i, (g, w))| (i, *g, *w))
}

fn device_array(result: Result<Value, CallError>, what: &str) -> DeviceArray {
    match result {
        Ok(Value::DeviceArray(array)) => array,
        other => panic!("{what}: expected a device array, got {other:?}"),
    }
}

/// A torch slice lies at a non-zero (here odd) offset in its caching-allocator block: the
/// host reads the slice's bytes, not the block's first ones.
#[test]
fn a_sliced_tensor_arrives_at_its_offset() {
    on_a_gpu_with_torch("a_sliced_tensor_arrives_at_its_offset", async |_, ext| {
        let n = 1_000_003usize;
        let array = device_array(
            ext.call("sliced", vec![Value::Int(n as i64), Value::Int(5)])
                .await,
            "sliced",
        );
        let got = host_bytes(&array);
        assert_eq!(
            first_mismatch(&got, &pattern_from(n, n, 5)),
            None,
            "the slice's bytes"
        );
        drop(array);
        child_exports_end(ext).await;
    });
}

/// The child adds 1 in place to the host's array (after a ~1 s stall on torch's stream) and
/// returns without waiting for the GPU: returning the array itself (`echo`), or nothing.
///
/// An echo goes back as `Returned` with no event: the child waits for all work in its
/// context first (H1), so the write is complete when the reply arrives. Without an echo
/// nothing orders the write before the reply (none is promised); it is ordered before the
/// argument's release (the child's import teardown waits for its context), so the host sees
/// it once the export ends.
fn in_place_write(test: &str, echo: bool) {
    on_a_gpu_with_torch(test, async |device, ext| {
        let len = 16usize << 20;
        let buffer =
            CudaBuffer::from_host(&device, DType::U8, &[len as u64], &vec![0u8; len]).unwrap();
        let started = Instant::now();
        let reply = ext
            .call(
                "add_slowly",
                vec![
                    Value::DeviceArray(buffer.to_device_array().unwrap()),
                    Value::Int(2_000_000_000),
                    Value::Bool(echo),
                ],
            )
            .await
            .unwrap();
        let replied_ms = started.elapsed().as_secs_f64() * 1e3;
        let got = match &reply {
            Value::DeviceArray(back) => match DeviceMemory::of(back).unwrap() {
                DeviceMemory::Owned(own) => {
                    assert_eq!(own.device_ptr(), buffer.device_ptr());
                    own.to_host().unwrap()
                }
                other => panic!("expected the host's own buffer back, got {other:?}"),
            },
            _ => buffer.to_host().unwrap(),
        };
        let ones = got.iter().filter(|&&b| b == 1).count();
        println!(
            "{test}: reply after {replied_ms:.0} ms; {ones} of {len} bytes show the child's write"
        );
        drop(reply);
        // The child releases a call's arguments when it returns; the release comes by itself.
        eventually("the export is released", async || buffer.holders() == 1).await;
        assert_eq!(
            buffer.to_host().unwrap(),
            vec![1u8; len],
            "after the release"
        );
        if echo {
            assert_eq!(
                ones, len,
                "the echo came back before the child's write was complete"
            );
        }
    });
}

#[test]
fn an_in_place_write_is_complete_when_the_argument_is_released() {
    in_place_write(
        "an_in_place_write_is_complete_when_the_argument_is_released",
        false,
    );
}

#[test]
fn an_echoed_in_place_write_is_complete_when_the_reply_arrives() {
    in_place_write(
        "an_echoed_in_place_write_is_complete_when_the_reply_arrives",
        true,
    );
}

/// A torch view of an import, returned as a tensor: torch itself refuses to re-share a
/// received CUDA tensor ("Attempted to send CUDA tensor received from another process"), and
/// CUDA cannot export a mapping again. The child sees that the tensor's address lies in one
/// of its imports and fails the call saying so (docs/semantics.md, M4 of issue 16); the
/// child survives and every export on both sides ends.
#[test]
fn a_view_of_an_import_sent_back_fails_cleanly() {
    on_a_gpu_with_torch(
        "a_view_of_an_import_sent_back_fails_cleanly",
        async |device, ext| {
            let buffer = CudaBuffer::from_host(&device, DType::U8, &[4096], &[7; 4096]).unwrap();
            let array = buffer.to_device_array().unwrap();
            let result = ext.call("view_back", vec![Value::DeviceArray(array)]).await;
            match &result {
                Ok(value) => println!("view_back: Ok({value:?})"),
                Err(e) => println!("view_back: Err({e})"),
            }
            let message = match &result {
                Err(CallError::Remote(remote)) => remote.to_string(),
                other => panic!("view_back: expected the call to fail, got {other:?}"),
            };
            assert!(
                message.contains("views a troupe.CudaArray the host sent")
                    && message.contains("cannot be exported again"),
                "{message}"
            );
            drop(result);
            child_exports_end(ext).await;
            eventually("the host's export is released", async || {
                buffer.holders() == 1
            })
            .await;
        },
    );
}

/// `CUDA_VISIBLE_DEVICES` in the UUID form nvidia-smi prints (`GPU-` and 8-4-4-4-12 hex).
fn visible_devices(uuid: [u8; 16]) -> String {
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// M1: a child that sees only the host's last GPU (its `CUDA_VISIBLE_DEVICES` is that GPU's
/// UUID) numbers it 0, and so must the `troupe.CudaArray` it gets: `device`,
/// `__dlpack_device__`, and the device of the tensor torch makes from it, whatever the
/// host's ordinal (with one GPU both are 0, and only the plumbing is checked).
#[test]
fn an_import_reports_the_child_s_own_ordinal() {
    let test = "an_import_reports_the_child_s_own_ordinal";
    if gpu_or_skip(test).is_none() {
        return;
    }
    let last = device_count().unwrap() - 1;
    let device = CudaDevice::shared(last).unwrap();
    let visible = visible_devices(device.uuid().unwrap());
    actix::System::new().block_on(async {
        let Some(ext) = start_with(test, &[("CUDA_VISIBLE_DEVICES", visible.as_str())]).await
        else {
            return;
        };
        let n = 4096usize;
        let buffer =
            CudaBuffer::from_host(&device, DType::U8, &[n as u64], &pattern(n, 13)).unwrap();
        let args = vec![Value::DeviceArray(buffer.to_device_array().unwrap())];
        let seen = ext.call("where", args).await.unwrap();
        println!("{test}: host ordinal {last}, child ({visible}) sees {seen:?}");
        let int = |key: &str| seen.get(key).and_then(Value::as_int);
        assert_eq!(int("device"), Some(0), "CudaArray.device");
        assert_eq!(int("dlpack_device"), Some(0), "__dlpack_device__");
        assert_eq!(int("torch_device"), Some(0), "torch.from_dlpack(..).device");
        assert_eq!(
            int("sum"),
            Some(pattern(n, 13).iter().map(|&b| i64::from(b)).sum::<i64>()),
            "the bytes torch reads"
        );
        eventually("the host's export is released", async || {
            buffer.holders() == 1
        })
        .await;
        let stats = ext.call("stats", vec![]).await.unwrap();
        assert_eq!(
            stats.get("teardown_errors"),
            Some(&Value::Int(0)),
            "{stats:?}"
        );
        ext.stop().await;
    });
}

/// An object with only `__dlpack__`/`__dlpack_device__` (the path torch and cupy never take,
/// as they have `__cuda_array_interface__`).
#[test]
fn a_dlpack_only_tensor_arrives_whole() {
    on_a_gpu_with_torch("a_dlpack_only_tensor_arrives_whole", async |_, ext| {
        let n = 65_537usize;
        let array = device_array(
            ext.call("dlpack_only", vec![Value::Int(n as i64), Value::Int(11)])
                .await,
            "dlpack_only",
        );
        assert_eq!(first_mismatch(&host_bytes(&array), &pattern(n, 11)), None);
        drop(array);
        child_exports_end(ext).await;
    });
}

/// A zero-size CUDA tensor (torch reports data pointer 0, as the CUDA array interface asks)
/// crosses as an empty array allocated on its device.
#[test]
fn a_zero_size_tensor_arrives_as_an_empty_array() {
    on_a_gpu_with_torch(
        "a_zero_size_tensor_arrives_as_an_empty_array",
        async |_, ext| {
            let array = device_array(ext.call("empty", vec![]).await, "empty");
            println!("empty: {array:?}");
            assert_eq!((array.len_bytes(), array.shape()), (0, &[0u64][..]));
            assert_eq!(array.dtype(), DType::U8);
            assert_eq!(host_bytes(&array), Vec::<u8>::new());
            drop(array);
            child_exports_end(ext).await;
        },
    );
}

/// docs/semantics.md: a tensor from torch's expandable segments (`cuMemCreate`, not
/// `cudaMalloc`) fails the call with "cannot export a CUDA array: cuIpcGetMemHandle failed:
/// ...", and leaves nothing exported.
#[test]
fn an_expandable_segments_tensor_fails_the_call_typed() {
    on_a_gpu_with_torch(
        "an_expandable_segments_tensor_fails_the_call_typed",
        async |_, ext| {
            let args = vec![Value::Int(3 << 20), Value::Int(4)];
            let result = ext.call("expandable", args).await;
            match &result {
                Ok(value) => println!("expandable: Ok({value:?})"),
                Err(e) => println!("expandable: Err({e})"),
            }
            let message = result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            drop(result);
            assert_eq!(child_exports(ext).await, 0, "nothing left exported");
            assert!(message.contains("cuIpcGetMemHandle"), "{message}");
        },
    );
}

/// 2000 tensors in one reply: 2000 descriptors, mostly of a few allocations (the mapping
/// cache), 2000 interprocess events; every tensor's bytes checked, and every export ended
/// once the host drops the reply (2000 teardowns on the reaper thread).
#[test]
fn many_tensors_in_one_reply_arrive_and_are_released() {
    on_a_gpu_with_torch(
        "many_tensors_in_one_reply_arrive_and_are_released",
        async |_, ext| {
            let (count, n) = (2000usize, 4096usize);
            let started = Instant::now();
            let args = vec![Value::Int(count as i64), Value::Int(n as i64)];
            let reply = ext.call("many", args).await.unwrap();
            println!(
                "{count} tensors arrived in {:.0} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
            let list = reply.as_list().unwrap();
            assert_eq!(list.len(), count);
            for (k, value) in list.iter().enumerate() {
                let bytes = host_bytes(value.as_device_array().unwrap());
                assert_eq!(
                    first_mismatch(&bytes, &pattern(n, k % 251)),
                    None,
                    "tensor {k}"
                );
            }
            assert_eq!(child_exports(ext).await, count as i64);
            drop(reply);
            child_exports_end(ext).await;
        },
    );
}

/// (Runs last with `--test-threads=1`: should the read poison the context, the other tests
/// are done.) The host keeps a tensor of a child that then dies: reading it (what the driver
/// gives back is printed) and dropping it must not hang or crash the host, and the import's
/// teardown must not stall the reaper thread: the restarted child's next export still ends.
#[test]
fn z_an_import_outliving_its_exporter_does_not_stall_the_host() {
    let test = "z_an_import_outliving_its_exporter_does_not_stall_the_host";
    on_a_gpu_with_torch(test, async |_, ext| {
        let n = 1usize << 20;
        let array = device_array(
            ext.call("keep_one", vec![Value::Int(n as i64), Value::Int(9)])
                .await,
            "keep_one",
        );
        let crashed = ext.call("crash", vec![]).await;
        assert!(matches!(crashed, Err(CallError::Crashed(_))), "{crashed:?}");
        match DeviceMemory::of(&array).unwrap().to_host() {
            Ok(bytes) => println!(
                "read after the exporter died: Ok, same bytes: {}",
                first_mismatch(&bytes, &pattern(n, 9)).is_none()
            ),
            Err(e) => println!("read after the exporter died: Err({e})"),
        }
        // The teardown runs on the reaper thread, in order: the next import's release comes
        // only after the orphan's teardown is done.
        drop(array);
        let started = Instant::now();
        let restarted = ext.ready_within(Duration::from_secs(120)).await;
        assert!(
            restarted.is_ok(),
            "the child did not restart: {restarted:?}"
        );
        let next = device_array(
            ext.call("keep_one", vec![Value::Int(4096), Value::Int(3)])
                .await,
            "keep_one after the restart",
        );
        assert_eq!(first_mismatch(&host_bytes(&next), &pattern(4096, 3)), None);
        drop(next);
        child_exports_end(ext).await;
        println!(
            "orphaned import torn down, restart and next import done in {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    });
}
