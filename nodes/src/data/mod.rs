//! Data nodes: JSON Lines files in and out, text and arithmetic operations, pass-through.
//!
//! How JSON maps to [`Value`](troupe_value::Value)s, both ways: objects are maps in the
//! order written (a repeated key keeps its first place and its last value), arrays are
//! lists, integers are ints (one above `i64::MAX` becomes the nearest float, as JavaScript
//! reads it), other numbers are floats. Writing adds compact objects for what JSON has no
//! type for: bytes as `{"type":"bytes","len":N,"base64":"..."}` (standard alphabet,
//! padded); arrays as `{"type":"array","dtype":"float32","shape":[..]}`, audio as
//! `{"type":"audio","sample_rate":..,"channels":..,"frames":..,"dtype":..,
//! "timestamp_ns":..}` and video as `{"type":"video","format":"yuv420p","width":..,
//! "height":..,"timestamp_ns":..}`, without their data. NaN and infinite floats are written
//! as `null`. Reading does not turn these summaries back into bytes or media.

mod calculator;
mod json;
mod jsonl_sink;
mod jsonl_source;
mod passthrough;
mod tap;
mod text;

pub use calculator::{CalcOp, Calculator, Number};
pub use json::to_json;
pub use jsonl_sink::JsonlSink;
pub use jsonl_source::JsonlSource;
pub use passthrough::Passthrough;
pub use tap::{Tap, TapCounter};
pub use text::{Text, TextOp};

use crate::catalog::NodeType;

/// The data node types.
pub(crate) const TYPES: &[NodeType] = &[
    calculator::TYPE,
    jsonl_sink::TYPE,
    jsonl_source::TYPE,
    passthrough::TYPE,
    tap::TYPE,
    text::TYPE,
];
