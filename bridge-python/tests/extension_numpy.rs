//! numpy in extensions: conflicting versions side by side, arrays both ways, big arrays
//! through shared memory, views that outlive the call.

#![allow(clippy::unwrap_used)]

mod support;

use support::start_plugin_with;
use troupe_bridge_python::extension::ExtensionRef;
use troupe_value::{Array, DType, Value};

async fn start(name: &str, numpy: &'static str) -> ExtensionRef {
    start_plugin_with(name, "arrays", &[numpy]).await
}

fn field<'a>(value: &'a Value, key: &str) -> &'a Value {
    match value {
        Value::Map(map) => &map[key],
        other => panic!("expected a map, got {other:?}"),
    }
}

#[test]
fn numpy_one_and_two_coexist_in_one_host() {
    actix::System::new().block_on(async {
        let (old, new) = (
            start("np1", "numpy==1.26.4").await,
            start("np2", "numpy>=2,<3").await,
        );
        let old_version: String = old.call_as("version", vec![]).await.unwrap();
        let new_version: String = new.call_as("version", vec![]).await.unwrap();
        assert_eq!(old_version, "1.26.4");
        assert!(new_version.starts_with("2."), "{new_version}");
        let values = Value::Array(Array::from_vec(vec![1.0f64, 2.0, 6.0]));
        for ext in [&old, &new] {
            assert_eq!(
                ext.call("mean", vec![values.clone()]).await,
                Ok(Value::Float(3.0))
            );
        }
        old.stop().await;
        new.stop().await;
    });
}

#[test]
fn arrays_cross_both_ways_small_and_large() {
    actix::System::new().block_on(async {
        let ext = start("arrays", "numpy>=2,<3").await;

        // Small array: arrives as a read-only view of the received bytes.
        let small = Array::from_slice(&[1i32, 2, 3, 4, 5, 6], vec![2, 3]).unwrap();
        let seen = ext
            .call("describe", vec![Value::Array(small.clone())])
            .await
            .unwrap();
        assert_eq!(field(&seen, "dtype"), &Value::from("int32"));
        assert_eq!(
            field(&seen, "shape"),
            &Value::List(vec![Value::Int(2), Value::Int(3)])
        );
        assert_eq!(field(&seen, "writeable"), &Value::Bool(false));
        assert_eq!(field(&seen, "owns_data"), &Value::Bool(false));
        assert_eq!(field(&seen, "sum"), &Value::Float(21.0));

        let scaled = ext
            .call("scale", vec![Value::Array(small), Value::Int(10)])
            .await
            .unwrap();
        let Value::Array(scaled) = scaled else {
            panic!("{scaled:?}")
        };
        assert_eq!(scaled.shape(), &[2, 3]);
        assert_eq!(scaled.to_vec::<i32>().unwrap(), [10, 20, 30, 40, 50, 60]);

        // 4 MiB each way: through shared memory, same bytes on arrival.
        let n = 1 << 20;
        let big = Array::from_vec((0..n).map(|i| i as f32).collect::<Vec<_>>());
        let seen = ext
            .call("describe", vec![Value::Array(big.clone())])
            .await
            .unwrap();
        let expected: f64 = (0..n).map(|i| i as f64).sum();
        assert_eq!(field(&seen, "sum"), &Value::Float(expected));
        let ramp = ext.call("ramp", vec![Value::Int(n as i64)]).await.unwrap();
        let Value::Array(ramp) = ramp else {
            panic!("{ramp:?}")
        };
        assert!(
            ramp.data().shared_region().is_some(),
            "large answers come as shared memory"
        );
        assert_eq!(ramp, big);

        // A view kept past the call stays valid.
        ext.call("keep", vec![Value::Array(big)]).await.unwrap();
        assert_eq!(
            ext.call("kept_sum", vec![]).await,
            Ok(Value::Float(expected))
        );

        let matrix = ext.call("matrix", vec![]).await.unwrap();
        let Value::Array(matrix) = matrix else {
            panic!("{matrix:?}")
        };
        assert_eq!(matrix.dtype(), DType::I16);
        assert_eq!(matrix.shape(), &[3, 4]);

        // Every supported dtype comes back as itself; a big-endian one is made native.
        for dtype in DType::ALL {
            let got = ext
                .call("of_dtype", vec![Value::from(dtype.numpy_name())])
                .await
                .unwrap();
            let Value::Array(got) = got else {
                panic!("{got:?}")
            };
            assert_eq!((got.dtype(), got.shape()), (dtype, &[4][..]));
        }
        let swapped = ext
            .call("of_dtype", vec![Value::from(">i4")])
            .await
            .unwrap();
        let Value::Array(swapped) = swapped else {
            panic!("{swapped:?}")
        };
        assert_eq!(swapped.to_vec::<i32>().unwrap(), [0, 1, 2, 3]);
        // One troupe has no form for is named.
        let complex = ext.call("of_dtype", vec![Value::from("complex64")]).await;
        let message = format!("{:?}", complex.unwrap_err());
        assert!(
            message.contains("unsupported numpy dtype complex64"),
            "{message}"
        );
        ext.stop().await;
    });
}
