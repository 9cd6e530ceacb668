//! `video.convert`: pixel-format conversion.

use troupe_value::{PixelFormat, Value, VideoFrame};

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, Node, NodeError};
use crate::params::{ParamKind, ParamSpec, Params};
use crate::video::color::{self, ColorRange};
use crate::video::frame::expect_video;

const NAME: &str = "video.convert";

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "format",
        kind: ParamKind::Choice(PixelFormat::NAMES),
        default: None,
        doc: "Pixel format of the output frames.",
    },
    ParamSpec {
        name: "range",
        kind: ParamKind::Choice(ColorRange::NAMES),
        default: Some("limited"),
        doc: "Value range of Yuv420p frames, read and written (\"limited\": Y 16-235, as in \
              Y4M files; \"full\": 0-255). Gray and RGB are always full range.",
    },
];

/// The `video.convert` node type.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Converts video frames among gray8, rgb24, rgba32 and yuv420p (BT.601).",
    is_source: false,
    params: PARAMS,
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let format = params.choice("format", PixelFormat::NAMES, None)?;
    let range = params.choice("range", ColorRange::NAMES, Some("limited"))?;
    let format =
        PixelFormat::from_name(format).ok_or_else(|| params.out_of_range("format", "unknown"))?;
    let range =
        ColorRange::from_name(range).ok_or_else(|| params.out_of_range("range", "unknown"))?;
    Ok(Built::Node(Box::new(Convert::new(format, range))))
}

/// Turns every video frame into one pixel format, with BT.601 colours.
///
/// Frames already in that format pass through without a copy. Alpha is dropped going from
/// Rgba32 and set to 255 going to it; gray is BT.601 luma.
#[derive(Debug, Clone)]
pub struct Convert {
    format: PixelFormat,
    range: ColorRange,
}

impl Convert {
    /// A node that outputs `format`, reading and writing Yuv420p in `range`.
    pub fn new(format: PixelFormat, range: ColorRange) -> Convert {
        Convert { format, range }
    }

    /// `frame` in this node's pixel format.
    pub fn convert(&self, frame: &VideoFrame) -> Result<VideoFrame, NodeError> {
        color::convert(NAME, frame, self.format, self.range)
    }
}

impl Node for Convert {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let frame = expect_video(NAME, input)?;
        out.emit(self.convert(&frame)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use troupe_value::Map;

    use super::*;
    use crate::catalog;

    #[test]
    fn builds_from_params_and_refuses_other_values() {
        let params: Map = [("format".to_owned(), Value::from("yuv420p"))]
            .into_iter()
            .collect();
        let Ok(Built::Node(mut node)) = catalog::build(NAME, params) else {
            panic!("video.convert did not build");
        };
        let mut out = Emitter::new();
        assert!(matches!(
            node.process(Value::from("text"), &mut out),
            Err(NodeError::WrongInput { got: "str", .. })
        ));
        let bad: Map = [("format".to_owned(), Value::from("bgr"))]
            .into_iter()
            .collect();
        assert!(matches!(
            catalog::build(NAME, bad),
            Err(NodeError::Params(_))
        ));
    }
}
