use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};

use crate::array::Array;
use crate::buffer::Buffer;
use crate::codec::DepthGuard;
use crate::device::DeviceArray;
use crate::media::{Audio, VideoFrame};

/// A map with string keys that keeps insertion order (as Python dicts do).
pub type Map = IndexMap<String, Value>;

/// The data every actor message and bridged call carries.
///
/// Encoded with postcard ([`Value::to_bytes`], [`Value::from_bytes`]); decoding checks arrays
/// and media for consistency and refuses nesting deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// Nothing (Python `None`).
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// UTF-8 text.
    Str(String),
    /// Raw bytes.
    Bytes(Buffer),
    /// An ordered list (Python list or tuple).
    List(#[serde(deserialize_with = "nested")] Vec<Value>),
    /// String-keyed map in insertion order (Python dict with str keys).
    Map(#[serde(deserialize_with = "nested")] Map),
    /// An n-dimensional array.
    Array(Array),
    /// A chunk of audio.
    Audio(Audio),
    /// A video frame.
    Video(VideoFrame),
    /// An array in CUDA device memory: passed as its owner within a process, as a CUDA IPC
    /// handle between processes (see [`DeviceArray`]).
    DeviceArray(DeviceArray),
}

fn nested<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    let _guard = DepthGuard::enter::<D::Error>()?;
    T::deserialize(d)
}

impl Value {
    /// A map from `(key, value)` pairs.
    pub fn map<K: Into<String>, V: Into<Value>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// Calls `f` on every buffer the value holds (bytes, arrays, audio, video), at any depth.
    /// `f` may swap a buffer for one holding the same bytes elsewhere, never other bytes: how
    /// a connection moves large buffers into shared memory before it sends a value.
    pub fn for_each_buffer_mut(&mut self, f: &mut dyn FnMut(&mut Buffer)) {
        match self {
            Value::Bytes(buffer) => f(buffer),
            Value::List(items) => items.iter_mut().for_each(|v| v.for_each_buffer_mut(f)),
            Value::Map(map) => map.values_mut().for_each(|v| v.for_each_buffer_mut(f)),
            Value::Array(array) => f(array.data_mut()),
            Value::Audio(audio) => f(audio.samples_mut().data_mut()),
            Value::Video(frame) => f(frame.pixels_mut().data_mut()),
            Value::Null
            | Value::Bool(_)
            | Value::Int(_)
            | Value::Float(_)
            | Value::Str(_)
            | Value::DeviceArray(_) => {}
        }
    }

    /// Calls `f` on every device array the value holds, at any depth: how a connection
    /// exports them before it sends a value.
    pub fn for_each_device_mut(&mut self, f: &mut dyn FnMut(&mut DeviceArray)) {
        match self {
            Value::DeviceArray(array) => f(array),
            Value::List(items) => items.iter_mut().for_each(|v| v.for_each_device_mut(f)),
            Value::Map(map) => map.values_mut().for_each(|v| v.for_each_device_mut(f)),
            _ => {}
        }
    }

    /// Why a device array in the value (at any depth) cannot be used in this process, if one
    /// cannot: a peer's array whose import failed here (no CUDA driver, ...).
    pub fn device_error(&self) -> Option<crate::device::DeviceError> {
        match self {
            Value::DeviceArray(array) => array.owner().err(),
            Value::List(items) => items.iter().find_map(Value::device_error),
            Value::Map(map) => map.values().find_map(Value::device_error),
            _ => None,
        }
    }

    /// The name of the variant, as error messages show it (`"int"`, `"array"`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Array(_) => "array",
            Value::Audio(_) => "audio",
            Value::Video(_) => "video",
            Value::DeviceArray(_) => "device_array",
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a float, if this is an int or a float.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The text, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    /// The map, if this is one.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The entry `key` of a map; `None` for a missing key or a value that is not a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// The array, if this is one.
    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The audio chunk, if this is one.
    pub fn as_audio(&self) -> Option<&Audio> {
        match self {
            Value::Audio(a) => Some(a),
            _ => None,
        }
    }

    /// The device array, if this is one.
    pub fn as_device_array(&self) -> Option<&DeviceArray> {
        match self {
            Value::DeviceArray(a) => Some(a),
            _ => None,
        }
    }

    /// The video frame, if this is one.
    pub fn as_video(&self) -> Option<&VideoFrame> {
        match self {
            Value::Video(v) => Some(v),
            _ => None,
        }
    }
}

macro_rules! from_impls {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from($v: $t) -> Value {
                $e
            }
        }
    )*};
}

from_impls! {
    () => |_v| Value::Null,
    bool => |v| Value::Bool(v),
    i32 => |v| Value::Int(v.into()),
    i64 => |v| Value::Int(v),
    u32 => |v| Value::Int(v.into()),
    f32 => |v| Value::Float(v.into()),
    f64 => |v| Value::Float(v),
    &str => |v| Value::Str(v.to_owned()),
    String => |v| Value::Str(v),
    Buffer => |v| Value::Bytes(v),
    Map => |v| Value::Map(v),
    Array => |v| Value::Array(v),
    Audio => |v| Value::Audio(v),
    VideoFrame => |v| Value::Video(v),
    DeviceArray => |v| Value::DeviceArray(v),
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Value {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}
