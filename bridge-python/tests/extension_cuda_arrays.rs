//! CUDA arrays through a Python extension, on a GPU: a host buffer read in Python through
//! `__cuda_array_interface__` / DLPack without a copy, a device array made in Python read by
//! the host, the exports tables back to empty once each side dropped its side, an array echoed
//! back arriving as the host's own buffer, and a crashed child's exports reclaimed.
//!
//! Without a CUDA driver (or device) every test prints `skipped: no CUDA driver` and passes.
//!
//! The extension reads and makes device arrays with torch or cupy when its venv can import
//! them, else with the CUDA driver through ctypes. On a GPU machine with torch or cupy in the
//! system Python and no package index, set `TROUPE_TEST_SYSTEM_SITE_PACKAGES=1`: the test
//! venv is then built with the system site-packages and installs nothing.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::cuda::{child_exports, cuda_venv, eventually, gpu_or_skip, pattern};
use support::start_plugin;
use troupe_bridge_python::extension::ExtensionRef;
use troupe_cuda::{CudaBuffer, DType, DeviceMemory};
use troupe_value::{CallError, Value};

async fn start(name: &str) -> ExtensionRef {
    start_plugin(
        name,
        "cuda_arrays",
        cuda_venv().await,
        Duration::from_secs(120),
    )
    .await
}

fn checksum(bytes: &[u8]) -> i64 {
    bytes.iter().map(|&b| i64::from(b)).sum()
}

#[test]
fn host_buffers_are_read_in_python_in_place_and_released() {
    let Some(device) = gpu_or_skip("host_buffers_are_read_in_python_in_place_and_released") else {
        return;
    };
    actix::System::new().block_on(async {
        let ext = start("cuda-read").await;
        let library = ext.call("library", vec![]).await.unwrap();
        println!("reading with {library:?}");
        // Each array lies at byte `offset` of its allocation (a view of a larger block, as
        // torch's caching allocator hands out): the child must read from there, every byte.
        for (n, offset) in [(16usize, 0usize), (1 << 20, 0), (16, 37), (1 << 20, 4099)] {
            let whole = pattern(offset + n, 3);
            let block =
                CudaBuffer::from_host(&device, DType::U8, &[whole.len() as u64], &whole).unwrap();
            // SAFETY: `offset + n` bytes of `block` (a cuMemAlloc allocation), kept alive by the
            // clone the view holds.
            let buffer = unsafe {
                CudaBuffer::borrowed(
                    &device,
                    block.device_ptr() + offset as u64,
                    DType::U8,
                    &[n as u64],
                    Box::new(block.clone()),
                )
            }
            .unwrap();
            let bytes = &whole[offset..];
            let sent = buffer.to_device_array().unwrap();
            let read = ext
                .call("read", vec![Value::DeviceArray(sent)])
                .await
                .unwrap();
            let Value::List(fields) = read else {
                panic!("{read:?}")
            };
            assert_eq!(fields[1], Value::from("CudaArray"));
            assert_eq!(fields[2], Value::from(vec![n as i64]));
            assert_eq!(fields[3], Value::from("|u1"));
            assert_eq!(
                fields[4],
                Value::Int(checksum(bytes)),
                "{n} bytes at {offset}"
            );
            let Value::Bytes(got) = &fields[5] else {
                panic!("the bytes: {:?}", fields[5])
            };
            let first_mismatch = got.as_slice().iter().zip(bytes).position(|(g, w)| g != w);
            assert_eq!(
                (got.len(), first_mismatch),
                (n, None),
                "{n} bytes at {offset}"
            );
            // The child dropped its CudaArray: its release comes back, the export ends, and
            // only our clone of the buffer is left.
            eventually("the export is released", async || buffer.holders() == 1).await;
        }
        let floats: Vec<u8> = [1.5f32, -2.0, 3.25, 0.0, 8.0, 1.0]
            .iter()
            .flat_map(|f| f.to_ne_bytes())
            .collect();
        let buffer = CudaBuffer::from_host(&device, DType::F32, &[2, 3], &floats).unwrap();
        let read = ext
            .call(
                "read",
                vec![Value::DeviceArray(buffer.to_device_array().unwrap())],
            )
            .await
            .unwrap();
        assert_eq!(read.as_list().unwrap()[2], Value::from(vec![2i64, 3]));
        assert_eq!(read.as_list().unwrap()[3], Value::from("<f4"));
        ext.stop().await;
    });
}

#[test]
fn python_device_arrays_reach_the_host_and_are_released() {
    if gpu_or_skip("python_device_arrays_reach_the_host_and_are_released").is_none() {
        return;
    }
    actix::System::new().block_on(async {
        let ext = start("cuda-make").await;
        for n in [64usize, 1 << 20] {
            let made = ext
                .call("make", vec![Value::Int(n as i64), Value::Int(5)])
                .await
                .unwrap();
            let Value::DeviceArray(array) = made else {
                panic!("expected a device array, got {made:?}")
            };
            assert_eq!(array.dtype(), DType::U8);
            assert_eq!(array.shape(), &[n as u64]);
            let memory = DeviceMemory::of(&array).unwrap();
            assert!(matches!(memory, DeviceMemory::Imported(_)));
            assert_eq!(memory.to_host().unwrap(), pattern(n, 5));
            assert_eq!(child_exports(&ext).await, 1, "held while the host holds it");
            drop(array);
            eventually("the child's export ends", async || {
                child_exports(&ext).await == 0
            })
            .await;
        }
        ext.stop().await;
    });
}

#[test]
fn an_echoed_array_comes_back_as_the_hosts_own_buffer() {
    let Some(device) = gpu_or_skip("an_echoed_array_comes_back_as_the_hosts_own_buffer") else {
        return;
    };
    actix::System::new().block_on(async {
        let ext = start("cuda-echo").await;
        let buffer = CudaBuffer::from_host(&device, DType::U8, &[8], &[1; 8]).unwrap();
        let echoed = ext
            .call(
                "echo",
                vec![Value::DeviceArray(buffer.to_device_array().unwrap())],
            )
            .await
            .unwrap();
        let Value::DeviceArray(back) = echoed else {
            panic!("expected a device array, got {echoed:?}")
        };
        match DeviceMemory::of(&back).unwrap() {
            DeviceMemory::Owned(own) => assert_eq!(own.device_ptr(), buffer.device_ptr()),
            other => panic!("expected the host's own buffer, got {other:?}"),
        }
        drop(back);
        eventually("the export is released", async || buffer.holders() == 1).await;
        ext.stop().await;
    });
}

#[test]
fn a_crashed_childs_exports_are_reclaimed() {
    let Some(device) = gpu_or_skip("a_crashed_childs_exports_are_reclaimed") else {
        return;
    };
    actix::System::new().block_on(async {
        let ext = start("cuda-crash").await;
        let buffer = CudaBuffer::from_host(&device, DType::U8, &[4096], &[9; 4096]).unwrap();
        let kept = ext
            .call(
                "keep",
                vec![Value::DeviceArray(buffer.to_device_array().unwrap())],
            )
            .await;
        assert_eq!(kept, Ok(Value::Int(4096)));
        assert_eq!(
            buffer.holders(),
            2,
            "the export holds the buffer for the child"
        );
        let crashed = ext.call("crash", vec![]).await;
        assert!(matches!(crashed, Err(CallError::Crashed(_))), "{crashed:?}");
        eventually("the dead child's export is reclaimed", async || {
            buffer.holders() == 1
        })
        .await;
        ext.stop().await;
    });
}
