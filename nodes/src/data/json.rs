//! JSON text to and from [`Value`]s for the JSONL nodes; the `data` module docs say how
//! each JSON type maps to a value and back.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use troupe_value::{Map, Value};

/// One JSON text as a value.
pub(crate) fn parse(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<FromJson>(text).map(|v| v.0)
}

/// A value as one line of JSON text, as `data.jsonl_sink` writes it (see the `data` module
/// docs for the mapping; bytes and arrays are base64).
///
/// # Errors
/// A float that JSON cannot hold (NaN, infinity).
pub fn to_json(value: &Value) -> Result<String, serde_json::Error> {
    serde_json::to_string(&ToJson(value))
}

/// Serializes the value it holds as JSON (see the module docs).
pub(crate) struct ToJson<'a>(pub(crate) &'a Value);

struct FromJson(Value);

impl<'de> Deserialize<'de> for FromJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor).map(FromJson)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(FromJson(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some((key, FromJson(value))) = access.next_entry::<String, FromJson>()? {
            map.insert(key, value);
        }
        Ok(Value::Map(map))
    }
}

impl Serialize for ToJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(text) => s.serialize_str(text),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&ToJson(item))?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, &ToJson(value))?;
                }
                map.end()
            }
            Value::Bytes(bytes) => {
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry("type", "bytes")?;
                map.serialize_entry("len", &bytes.len())?;
                map.serialize_entry("base64", &STANDARD.encode(bytes.as_slice()))?;
                map.end()
            }
            Value::Array(array) => {
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry("type", "array")?;
                map.serialize_entry("dtype", array.dtype().numpy_name())?;
                map.serialize_entry("shape", array.shape())?;
                map.end()
            }
            Value::Audio(audio) => {
                let mut map = s.serialize_map(Some(6))?;
                map.serialize_entry("type", "audio")?;
                map.serialize_entry("sample_rate", &audio.sample_rate())?;
                map.serialize_entry("channels", &audio.channels())?;
                map.serialize_entry("frames", &audio.frames())?;
                map.serialize_entry("dtype", audio.samples().dtype().numpy_name())?;
                map.serialize_entry("timestamp_ns", &audio.timestamp_ns())?;
                map.end()
            }
            Value::Video(frame) => {
                let mut map = s.serialize_map(Some(5))?;
                map.serialize_entry("type", "video")?;
                map.serialize_entry("format", frame.format().name())?;
                map.serialize_entry("width", &frame.width())?;
                map.serialize_entry("height", &frame.height())?;
                map.serialize_entry("timestamp_ns", &frame.timestamp_ns())?;
                map.end()
            }
            Value::DeviceArray(array) => {
                let mut map = s.serialize_map(Some(4))?;
                map.serialize_entry("type", "device_array")?;
                map.serialize_entry("dtype", array.dtype().numpy_name())?;
                map.serialize_entry("shape", array.shape())?;
                map.serialize_entry("device", &array.device())?;
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use troupe_value::{Array, Audio, Buffer};

    use super::*;

    fn write(v: &Value) -> String {
        serde_json::to_string(&ToJson(v)).expect("serializes")
    }

    #[test]
    fn numbers_keep_their_kind_and_maps_their_order() {
        let v =
            parse(r#"{"z":1,"a":-2,"m":1.5,"big":18446744073709551615,"e":1e3}"#).expect("valid");
        let keys: Vec<&str> = v
            .as_map()
            .expect("map")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["z", "a", "m", "big", "e"]);
        assert_eq!(v.get("z"), Some(&Value::Int(1)));
        assert_eq!(v.get("a"), Some(&Value::Int(-2)));
        assert_eq!(v.get("m"), Some(&Value::Float(1.5)));
        assert_eq!(v.get("big"), Some(&Value::Float(18446744073709551615.0)));
        assert_eq!(v.get("e"), Some(&Value::Float(1000.0)));
        assert_eq!(
            parse(r#"[null, true, "x", []]"#).expect("valid"),
            Value::List(vec![
                Value::Null,
                Value::Bool(true),
                Value::from("x"),
                Value::List(vec![])
            ])
        );
    }

    #[test]
    fn media_and_bytes_are_summaries() {
        assert_eq!(
            write(&Value::Bytes(Buffer::from(vec![0xfa, 0xec, 0x20]))),
            r#"{"type":"bytes","len":3,"base64":"+uwg"}"#
        );
        let array = Array::from_vec(vec![0.0f32; 6])
            .reshape(vec![2, 3])
            .expect("shape");
        assert_eq!(
            write(&Value::Array(array)),
            r#"{"type":"array","dtype":"float32","shape":[2,3]}"#
        );
        let audio = Audio::from_interleaved(vec![0.0; 8], 16_000, 2, 5).expect("audio");
        assert_eq!(
            write(&Value::Audio(audio)),
            r#"{"type":"audio","sample_rate":16000,"channels":2,"frames":4,"dtype":"float32","timestamp_ns":5}"#
        );
        assert_eq!(write(&Value::Float(f64::NAN)), "null");
    }
}
