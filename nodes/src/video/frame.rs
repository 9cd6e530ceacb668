//! Helpers the video nodes share: taking a frame from a value, making one from bytes, and
//! finding the planes of a Yuv420p frame.

use troupe_value::{Array, PixelFormat, Value, VideoFrame};

use crate::node::NodeError;

/// The frame in `input`, or a `WrongInput` error naming `node`.
pub(crate) fn expect_video(node: &'static str, input: Value) -> Result<VideoFrame, NodeError> {
    match input {
        Value::Video(frame) => Ok(frame),
        other => Err(NodeError::WrongInput {
            node,
            expected: "video",
            got: other.type_name(),
        }),
    }
}

/// A frame over `pixels`, shaped `[height, width]` (Gray8), `[height, width, channels]`
/// (Rgb24, Rgba32) or flat (Yuv420p, whose planes have different sizes).
pub(crate) fn make_frame(
    node: &'static str,
    pixels: Vec<u8>,
    width: u32,
    height: u32,
    format: PixelFormat,
    timestamp_ns: u64,
) -> Result<VideoFrame, NodeError> {
    let (w, h) = (width as usize, height as usize);
    let shape = match format {
        PixelFormat::Gray8 => vec![h, w],
        PixelFormat::Rgb24 => vec![h, w, 3],
        PixelFormat::Rgba32 => vec![h, w, 4],
        PixelFormat::Yuv420p => vec![pixels.len()],
    };
    let invalid = |reason: String| NodeError::InvalidInput { node, reason };
    let array = Array::from_vec(pixels)
        .reshape(shape)
        .map_err(|e| invalid(e.to_string()))?;
    VideoFrame::new(array, width, height, format, timestamp_ns).map_err(|e| invalid(e.to_string()))
}

/// Width and height of each chroma plane of a Yuv420p frame of `width` x `height`.
pub(crate) fn chroma_size(width: u32, height: u32) -> (u32, u32) {
    (width.div_ceil(2), height.div_ceil(2))
}

/// The Y, U and V planes of a Yuv420p frame's bytes.
///
/// `bytes` must hold `PixelFormat::Yuv420p.frame_len(width, height)` bytes, which
/// [`VideoFrame::new`] guarantees.
pub(crate) fn yuv_planes(bytes: &[u8], width: u32, height: u32) -> (&[u8], &[u8], &[u8]) {
    let luma = width as usize * height as usize;
    let (cw, ch) = chroma_size(width, height);
    let chroma = cw as usize * ch as usize;
    let (y, rest) = bytes.split_at(luma.min(bytes.len()));
    let (u, v) = rest.split_at(chroma.min(rest.len()));
    (y, u, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_of_an_odd_sized_frame() {
        let bytes: Vec<u8> = (0..PixelFormat::Yuv420p.frame_len(5, 3).expect("bounded"))
            .map(|i| i as u8)
            .collect();
        let (y, u, v) = yuv_planes(&bytes, 5, 3);
        assert_eq!((y.len(), u.len(), v.len()), (15, 6, 6));
        assert_eq!(v[0], 21);
    }

    #[test]
    fn names_round_trip() {
        for name in PixelFormat::NAMES {
            let format = PixelFormat::from_name(name).expect("a known name");
            assert_eq!(format.name(), *name);
        }
        assert_eq!(PixelFormat::from_name("bgr24"), None);
    }

    #[test]
    fn frames_get_image_shapes() {
        let frame = make_frame("t", vec![0; 24], 4, 2, PixelFormat::Rgb24, 7).expect("frame");
        assert_eq!(frame.pixels().shape(), &[2, 4, 3]);
        assert!(make_frame("t", vec![0; 23], 4, 2, PixelFormat::Rgb24, 7).is_err());
        assert!(matches!(
            expect_video("t", Value::Int(1)),
            Err(NodeError::WrongInput { got: "int", .. })
        ));
    }
}
