//! Arrays of other libraries returned by Python: a CPU tensor that speaks DLPack (torch's
//! path, exercised here without torch by a wrapper that forwards numpy's own DLPack) arrives
//! as an array, the values intact; a large one through shared memory; a refused export and a
//! CUDA tensor in a process without a CUDA driver are typed errors naming the problem.

#![allow(clippy::unwrap_used)]

mod support;

use std::any::Any;
use std::sync::Arc;

use support::start_plugin_with;
use troupe_bridge_python::extension::ExtensionRef;
use troupe_value::{Array, CallError, DType, DeviceArray, Value};

async fn start(name: &str) -> ExtensionRef {
    start_plugin_with(name, "foreign_arrays", &["numpy>=2,<3"]).await
}

fn array(value: Value) -> Array {
    match value {
        Value::Array(array) => array,
        other => panic!("expected an array, got {other:?}"),
    }
}

/// The message of a Python exception that came back as the call's error.
fn remote_message(result: Result<Value, CallError>) -> String {
    match result {
        Err(CallError::Remote(e)) => format!("{}: {}", e.type_name, e.message),
        other => panic!("expected a Python exception, got {other:?}"),
    }
}

#[test]
fn dlpack_cpu_tensors_arrive_as_arrays() {
    actix::System::new().block_on(async {
        let ext = start("foreign-cpu").await;

        let small = array(ext.call("wrapped", vec![Value::Int(1000)]).await.unwrap());
        assert_eq!(small.dtype(), DType::F32);
        assert_eq!(small.shape(), &[1000]);
        let expected: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        assert_eq!(small.to_vec::<f32>().unwrap(), expected);
        // Taken through the protocol, once: numpy.from_dlpack asked for one capsule.
        assert_eq!(ext.call("exports", vec![]).await, Ok(Value::Int(1)));

        // 4 MiB: copied once into the child's pool, so it arrives as a slot, not as bytes.
        let n = 1 << 20;
        let large = array(ext.call("wrapped", vec![Value::Int(n)]).await.unwrap());
        assert!(large.data().pool_key().is_some(), "through shared memory");
        let values = large.to_vec::<f32>().unwrap();
        assert_eq!(values.len(), n as usize);
        assert_eq!(values[n as usize - 1], (n - 1) as f32);

        let nested = ext.call("wrapped_2d", vec![]).await.unwrap();
        let grid = array(nested.get("grid").cloned().unwrap());
        assert_eq!(grid.shape(), &[2, 3]);
        assert_eq!(grid.to_vec::<i16>().unwrap(), vec![0, 1, 2, 3, 4, 5]);

        // A strided view: gathered into C order on the way, the values stay.
        let strided = array(ext.call("wrapped_strided", vec![]).await.unwrap());
        assert_eq!(strided.to_vec::<i64>().unwrap(), vec![0, 2, 4, 6, 8]);
        ext.stop().await;
    });
}

#[test]
fn refused_and_unusable_tensors_are_errors_that_say_why() {
    actix::System::new().block_on(async {
        let ext = start("foreign-errors").await;

        let message = remote_message(ext.call("requires_grad", vec![]).await);
        assert!(message.contains("foreign_arrays.RequiresGrad"), "{message}");
        assert!(message.contains("DLPack"), "{message}");
        assert!(message.contains("detach"), "{message}");
        assert!(message.contains("result"), "the path: {message}");

        // A CUDA tensor in a process without a driver (or, with one, at an address no device
        // holds; or in a build without CUDA): refused with a typed error, the child stays up.
        let message = remote_message(ext.call("fake_cuda", vec![]).await);
        if !cfg!(feature = "cuda") {
            assert!(message.contains("carries no CUDA arrays"), "{message}");
        } else if troupe_cuda::driver_available() {
            assert!(message.contains("cuPointerGetAttribute"), "{message}");
        } else {
            assert!(message.contains("no CUDA driver"), "{message}");
        }
        let stats = ext.call("cuda_stats", vec![]).await.unwrap();
        assert_eq!(stats.get("exported"), Some(&Value::Int(0)));
        assert_eq!(stats.get("teardown_errors"), Some(&Value::Int(0)));
        ext.stop().await;
    });
}

#[test]
fn device_arrays_of_unknown_memory_are_refused_before_sending() {
    actix::System::new().block_on(async {
        let ext = start("foreign-unknown").await;
        // Memory the CUDA plane does not know (not a troupe_cuda buffer) never leaves; nor
        // does any device array in a build without CUDA.
        let owner: Arc<dyn Any + Send + Sync> = Arc::new(vec![0u8; 16]);
        let array = DeviceArray::local(owner, DType::U8, vec![16], 0).unwrap();
        let result = ext.call("echo", vec![Value::DeviceArray(array)]).await;
        match result {
            Err(CallError::BadArguments { reason, .. }) => {
                let why = if cfg!(feature = "cuda") {
                    "does not know"
                } else {
                    "carries no CUDA arrays"
                };
                assert!(reason.contains(why), "{reason}")
            }
            other => panic!("expected BadArguments, got {other:?}"),
        }
        // The extension is still there.
        assert_eq!(
            ext.call("echo", vec![Value::Int(3)]).await,
            Ok(Value::Int(3))
        );
        ext.stop().await;
    });
}
