//! A venv with torch and no numpy still sends CPU tensors: the child reads a tensor's own
//! DLPack capsule (made here with ctypes alone, in a venv without numpy) and copies it once,
//! into shared memory when it is large; a strided view is gathered into C order. Empty
//! tensors cross too.

#![allow(clippy::unwrap_used)]

mod support;

use support::start_plugin_with;
use troupe_value::{Array, DType, Value};

fn array(value: Value) -> Array {
    match value {
        Value::Array(array) => array,
        other => panic!("expected an array, got {other:?}"),
    }
}

#[test]
fn dlpack_cpu_tensors_cross_from_a_venv_without_numpy() {
    actix::System::new().block_on(async {
        let ext = start_plugin_with("no-numpy", "dlpack_without_numpy", &[]).await;
        assert_eq!(
            ext.call("has_numpy", vec![]).await,
            Ok(Value::Bool(false)),
            "the venv must not have numpy for this test to mean anything"
        );

        let small = array(ext.call("small", vec![]).await.unwrap());
        assert_eq!(small.dtype(), DType::F32);
        assert_eq!(small.shape(), &[2, 3]);
        assert_eq!(
            small.to_vec::<f32>().unwrap(),
            [1.5, 2.5, 3.5, 4.5, 5.5, 6.5]
        );

        let n = 100_000;
        let large = array(ext.call("large", vec![Value::Int(n)]).await.unwrap());
        assert_eq!(large.dtype(), DType::F64);
        assert!(
            large.data().slot().is_some(),
            "800 KB cross through shared memory"
        );
        let values = large.to_vec::<f64>().unwrap();
        assert_eq!(values.len(), n as usize);
        assert!(values.iter().enumerate().all(|(i, v)| *v == i as f64));

        // Strided views are gathered into C order.
        let strided = array(ext.call("strided", vec![]).await.unwrap());
        assert_eq!(strided.to_vec::<i64>().unwrap(), [0, 2, 4, 6, 8]);
        let transposed = array(ext.call("transposed", vec![]).await.unwrap());
        assert_eq!(transposed.shape(), &[3, 2]);
        assert_eq!(transposed.to_vec::<i32>().unwrap(), [0, 3, 1, 4, 2, 5]);

        let empty = array(ext.call("empty", vec![]).await.unwrap());
        assert_eq!(empty.dtype(), DType::I32);
        assert_eq!(empty.shape(), &[0, 4]);

        // Host arrays arrive as troupe.HostArray, which a DLPack consumer reads (a private
        // copy it may write to), and go back as the very array.
        for (n, what) in [(6usize, "small"), (100_000, "in shared memory")] {
            let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let sent = Value::Array(Array::from_vec(values.clone()));
            let seen = ext.call("receive", vec![sent.clone()]).await.unwrap();
            let field = |key: &str| seen.get(key).cloned().unwrap();
            assert_eq!(field("type"), Value::from("HostArray"), "{what}");
            assert_eq!(field("dtype"), Value::from("float32"));
            assert_eq!(
                field("device"),
                Value::List(vec![Value::Int(1), Value::Int(0)])
            );
            assert_eq!(
                field("dlpack_shape"),
                Value::List(vec![Value::Int(n as i64)])
            );
            let sum: f64 = values.iter().map(|v| f64::from(*v)).sum();
            assert_eq!(field("sum"), Value::Float(sum), "{what}");
            assert_eq!(
                field("still"),
                Value::Float(sum),
                "the host's array is untouched"
            );
            let back = ext.call("echo", vec![sent.clone()]).await.unwrap();
            assert_eq!(back, sent, "{what}");
        }
        ext.stop().await;
    });
}
