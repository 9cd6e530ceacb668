use crate::{Array, Audio, Buffer, DeviceArray, Map, Value, VideoFrame};

/// Types that can be taken out of a [`Value`], for typed access to call arguments.
///
/// The error is a short reason (`"expected int, got str"`); callers add the path.
pub trait FromValue: Sized {
    /// Takes `Self` out of `value`.
    fn from_value(value: Value) -> Result<Self, String>;
}

fn mismatch(expected: &str, got: &Value) -> String {
    format!("expected {expected}, got {}", got.type_name())
}

macro_rules! from_value {
    ($($t:ty, $name:literal, $pat:pat => $out:expr;)*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self, String> {
                match value {
                    $pat => Ok($out),
                    other => Err(mismatch($name, &other)),
                }
            }
        }
    )*};
}

from_value! {
    bool, "bool", Value::Bool(b) => b;
    i64, "int", Value::Int(i) => i;
    String, "str", Value::Str(s) => s;
    Buffer, "bytes", Value::Bytes(b) => b;
    Map, "map", Value::Map(m) => m;
    Array, "array", Value::Array(a) => a;
    Audio, "audio", Value::Audio(a) => a;
    VideoFrame, "video", Value::Video(v) => v;
    DeviceArray, "device_array", Value::DeviceArray(a) => a;
}

impl FromValue for f64 {
    fn from_value(value: Value) -> Result<Self, String> {
        value.as_float().ok_or_else(|| mismatch("float", &value))
    }
}

impl FromValue for Value {
    fn from_value(value: Value) -> Result<Self, String> {
        Ok(value)
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::List(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| T::from_value(item).map_err(|e| format!("[{i}]: {e}")))
                .collect(),
            other => Err(mismatch("list", &other)),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_and_mismatches() {
        assert_eq!(i64::from_value(Value::Int(3)), Ok(3));
        assert_eq!(f64::from_value(Value::Int(3)), Ok(3.0));
        assert_eq!(Option::<i64>::from_value(Value::Null), Ok(None));
        assert_eq!(
            String::from_value(Value::Int(1)),
            Err("expected str, got int".into())
        );
    }
}
