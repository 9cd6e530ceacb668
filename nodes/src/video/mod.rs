//! Video nodes: Y4M files in and out, resizing and pixel-format conversion.
//!
//! Frames are [`VideoFrame`](troupe_value::VideoFrame)s of u8 pixels; colour conversions
//! use BT.601, and Yuv420p is limited range unless a node says otherwise.

mod color;
mod convert;
mod frame;
mod resize;
mod y4m_planes;
mod y4m_sink;
mod y4m_source;

pub use color::ColorRange;
pub use convert::Convert;
pub use resize::{Resize, ResizeFilter};
pub use y4m_sink::Y4mSink;
pub use y4m_source::Y4mSource;

use crate::catalog::NodeType;

/// The video node types.
pub(crate) const TYPES: &[NodeType] = &[
    convert::TYPE,
    resize::TYPE,
    y4m_sink::TYPE,
    y4m_source::TYPE,
];
