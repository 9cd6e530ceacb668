//! `video.resize`: scales frames to a fixed size with `fast_image_resize`.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use troupe_value::{MAX_VIDEO_SIDE, PixelFormat, Value, VideoFrame};

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, Node, NodeError};
use crate::params::{ParamKind, ParamSpec, Params};
use crate::video::frame::{chroma_size, expect_video, make_frame, yuv_planes};

const NAME: &str = "video.resize";

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "width",
        kind: ParamKind::Int {
            min: 1,
            max: MAX_VIDEO_SIDE as i64,
        },
        default: None,
        doc: "Width of the output frames, in pixels.",
    },
    ParamSpec {
        name: "height",
        kind: ParamKind::Int {
            min: 1,
            max: MAX_VIDEO_SIDE as i64,
        },
        default: None,
        doc: "Height of the output frames, in pixels.",
    },
    ParamSpec {
        name: "filter",
        kind: ParamKind::Choice(ResizeFilter::NAMES),
        default: Some("bilinear"),
        doc: "Resampling filter: nearest (fastest, blocky), box, bilinear, hamming, \
              catmull_rom, mitchell, gaussian, lanczos3 (sharpest).",
    },
];

/// The `video.resize` node type.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Resizes video frames (gray8, rgb24, rgba32, yuv420p plane by plane).",
    is_source: false,
    params: PARAMS,
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let width = params.positive_u32("width", None)?;
    let height = params.positive_u32("height", None)?;
    let filter = params.choice("filter", ResizeFilter::NAMES, Some("bilinear"))?;
    let filter =
        ResizeFilter::from_name(filter).ok_or_else(|| params.out_of_range("filter", "unknown"))?;
    Ok(Built::Node(Box::new(Resize::new(width, height, filter)?)))
}

/// How output pixels are computed from input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResizeFilter {
    /// The nearest input pixel: fastest, blocky.
    Nearest,
    /// Box (area average).
    Box,
    /// Bilinear interpolation.
    #[default]
    Bilinear,
    /// Hamming: as fast as bilinear, sharper when shrinking.
    Hamming,
    /// Catmull-Rom bicubic.
    CatmullRom,
    /// Mitchell-Netravali bicubic.
    Mitchell,
    /// Gaussian (sigma 0.5).
    Gaussian,
    /// Lanczos with three lobes: sharpest, slowest.
    Lanczos3,
}

impl ResizeFilter {
    /// Parameter spellings, in declaration order.
    pub(crate) const NAMES: &'static [&'static str] = &[
        "nearest",
        "box",
        "bilinear",
        "hamming",
        "catmull_rom",
        "mitchell",
        "gaussian",
        "lanczos3",
    ];

    const ALL: [ResizeFilter; 8] = [
        ResizeFilter::Nearest,
        ResizeFilter::Box,
        ResizeFilter::Bilinear,
        ResizeFilter::Hamming,
        ResizeFilter::CatmullRom,
        ResizeFilter::Mitchell,
        ResizeFilter::Gaussian,
        ResizeFilter::Lanczos3,
    ];

    /// The filter called `name` (one of the `filter` parameter's choices).
    pub(crate) fn from_name(name: &str) -> Option<ResizeFilter> {
        let i = ResizeFilter::NAMES.iter().position(|n| *n == name)?;
        ResizeFilter::ALL.get(i).copied()
    }

    fn algorithm(self) -> ResizeAlg {
        let convolution = |f| ResizeAlg::Convolution(f);
        match self {
            ResizeFilter::Nearest => ResizeAlg::Nearest,
            ResizeFilter::Box => convolution(FilterType::Box),
            ResizeFilter::Bilinear => convolution(FilterType::Bilinear),
            ResizeFilter::Hamming => convolution(FilterType::Hamming),
            ResizeFilter::CatmullRom => convolution(FilterType::CatmullRom),
            ResizeFilter::Mitchell => convolution(FilterType::Mitchell),
            ResizeFilter::Gaussian => convolution(FilterType::Gaussian),
            ResizeFilter::Lanczos3 => convolution(FilterType::Lanczos3),
        }
    }
}

/// Scales every frame to one size, keeping its pixel format and timestamp.
///
/// Gray8, Rgb24 and Rgba32 (alpha-weighted) are resized as images; Yuv420p plane by plane,
/// the chroma planes to half the size rounded up. Frames already at the size pass through
/// without a copy. The aspect ratio is not kept: the output is exactly `width` x `height`.
#[derive(Debug)]
pub struct Resize {
    width: u32,
    height: u32,
    options: ResizeOptions,
    // Keeps its scratch buffers from frame to frame.
    resizer: Resizer,
}

impl Resize {
    /// A node that outputs `width` x `height` frames, both positive.
    pub fn new(width: u32, height: u32, filter: ResizeFilter) -> Result<Resize, NodeError> {
        if width == 0 || height == 0 || width > MAX_VIDEO_SIDE || height > MAX_VIDEO_SIDE {
            return Err(NodeError::InvalidInput {
                node: NAME,
                reason: format!(
                    "cannot resize to {width}x{height} (each side 1..={MAX_VIDEO_SIDE})"
                ),
            });
        }
        Ok(Resize {
            width,
            height,
            options: ResizeOptions::new().resize_alg(filter.algorithm()),
            resizer: Resizer::new(),
        })
    }

    /// `frame` at this node's size.
    pub fn resize(&mut self, frame: &VideoFrame) -> Result<VideoFrame, NodeError> {
        let (w, h) = (frame.width(), frame.height());
        if (w, h) == (self.width, self.height) {
            return Ok(frame.clone());
        }
        let (dw, dh) = (self.width, self.height);
        let src = frame.pixels().data().as_slice();
        // `new` bounded the target size.
        let len = frame.format().frame_len(dw, dh).unwrap_or(0);
        let mut out = vec![0u8; len];
        match frame.format() {
            PixelFormat::Gray8 => self.plane(src, (w, h), &mut out, (dw, dh), PixelType::U8)?,
            PixelFormat::Rgb24 => self.plane(src, (w, h), &mut out, (dw, dh), PixelType::U8x3)?,
            PixelFormat::Rgba32 => self.plane(src, (w, h), &mut out, (dw, dh), PixelType::U8x4)?,
            PixelFormat::Yuv420p => {
                let (sy, su, sv) = yuv_planes(src, w, h);
                let (sc, dc) = (chroma_size(w, h), chroma_size(dw, dh));
                let luma = dw as usize * dh as usize;
                let (dy, chroma) = out.split_at_mut(luma);
                let (du, dv) = chroma.split_at_mut(dc.0 as usize * dc.1 as usize);
                self.plane(sy, (w, h), dy, (dw, dh), PixelType::U8)?;
                self.plane(su, sc, du, dc, PixelType::U8)?;
                self.plane(sv, sc, dv, dc, PixelType::U8)?;
            }
        }
        make_frame(NAME, out, dw, dh, frame.format(), frame.timestamp_ns())
    }

    fn plane(
        &mut self,
        src: &[u8],
        (sw, sh): (u32, u32),
        dst: &mut [u8],
        (dw, dh): (u32, u32),
        pixel: PixelType,
    ) -> Result<(), NodeError> {
        let invalid = |reason: String| NodeError::InvalidInput { node: NAME, reason };
        let src = ImageRef::new(sw, sh, src, pixel).map_err(|e| invalid(e.to_string()))?;
        let mut dst =
            Image::from_slice_u8(dw, dh, dst, pixel).map_err(|e| invalid(e.to_string()))?;
        self.resizer
            .resize(&src, &mut dst, &self.options)
            .map_err(|e| invalid(e.to_string()))
    }
}

impl Node for Resize {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let frame = expect_video(NAME, input)?;
        out.emit(self.resize(&frame)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(format: PixelFormat, w: u32, h: u32, value: u8) -> VideoFrame {
        make_frame(
            "t",
            vec![value; format.frame_len(w, h).expect("bounded")],
            w,
            h,
            format,
            9,
        )
        .expect("frame")
    }

    #[test]
    fn every_format_and_filter_keeps_a_uniform_frame_uniform() {
        for name in ResizeFilter::NAMES {
            let filter = ResizeFilter::from_name(name).expect("a known filter");
            let mut node = Resize::new(7, 5, filter).expect("node");
            for format in [
                PixelFormat::Gray8,
                PixelFormat::Rgb24,
                PixelFormat::Rgba32,
                PixelFormat::Yuv420p,
            ] {
                let out = node.resize(&uniform(format, 16, 9, 200)).expect("resized");
                assert_eq!((out.width(), out.height(), out.format()), (7, 5, format));
                assert_eq!(out.timestamp_ns(), 9);
                let bytes = out.pixels().data().as_slice();
                assert_eq!(bytes.len(), format.frame_len(7, 5).expect("bounded"));
                assert!(
                    bytes.iter().all(|b| b.abs_diff(200) <= 1),
                    "{name} {format:?}"
                );
            }
        }
    }

    #[test]
    fn refuses_zero_sizes_and_non_video() {
        assert!(Resize::new(0, 4, ResizeFilter::Nearest).is_err());
        let mut node = Resize::new(4, 4, ResizeFilter::Nearest).expect("node");
        let mut out = Emitter::new();
        assert!(matches!(
            node.process(Value::Int(3), &mut out),
            Err(NodeError::WrongInput { .. })
        ));
    }
}
