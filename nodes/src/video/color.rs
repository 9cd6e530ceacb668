//! Pixel-format conversion among Gray8, Rgb24, Rgba32 and Yuv420p, BT.601.
//!
//! Every path that involves colour goes through the `yuv` crate: RGB(A) <-> Yuv420p
//! (`rgb_to_yuv420`, `yuv420_to_rgb`, ...), RGB(A) <-> Gray8 (`rgb_to_yuv400`,
//! `yuv400_to_rgb`, full range: gray is BT.601 luma) and Rgb24 <-> Rgba32 (`rgb_to_rgba`,
//! `rgba_to_rgb`). The crate has no Gray8 <-> planar 4:2:0 path, so that one is written
//! here: it involves no matrix, only the luma range mapping (full <-> limited) and neutral
//! chroma (128).
//!
//! Encoding averages each 2x2 block's chroma; decoding repeats it over the block. The
//! crate's bilinear decoders (`yuv420_to_rgb_bilinear`) were measured here to shift chroma
//! by about a pixel (a red ramp of 10 levels per pixel came back 7 levels high everywhere,
//! against +3/-4 alternating with the repeating decoder), so they are not used.

use troupe_value::{PixelFormat, VideoFrame};
use yuv::{
    BufferStoreMut, YuvConversionMode, YuvError, YuvGrayImage, YuvGrayImageMut, YuvPlanarImage,
    YuvPlanarImageMut, YuvRange, YuvStandardMatrix,
};

use crate::node::NodeError;
use crate::video::frame::{chroma_size, make_frame, yuv_planes};

/// How Y, U and V values map to bytes in a Yuv420p frame. Gray8, Rgb24 and Rgba32 are
/// always full range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorRange {
    /// "TV" range, Y in 16..=235 and U, V in 16..=240: what Y4M files and most video use.
    #[default]
    Limited,
    /// "PC" (JPEG) range, every value in 0..=255.
    Full,
}

impl ColorRange {
    /// Parameter spellings, in the order of [`ColorRange::from_name`].
    pub(crate) const NAMES: &'static [&'static str] = &["limited", "full"];

    /// The range called `name` (`"limited"` or `"full"`).
    pub(crate) fn from_name(name: &str) -> Option<ColorRange> {
        match name {
            "limited" => Some(ColorRange::Limited),
            "full" => Some(ColorRange::Full),
            _ => None,
        }
    }

    fn yuv(self) -> YuvRange {
        match self {
            ColorRange::Limited => YuvRange::Limited,
            ColorRange::Full => YuvRange::Full,
        }
    }
}

const BT601: YuvStandardMatrix = YuvStandardMatrix::Bt601;

/// `frame` in pixel format `to`; the same frame (shared, not copied) when it is already.
pub(crate) fn convert(
    node: &'static str,
    frame: &VideoFrame,
    to: PixelFormat,
    range: ColorRange,
) -> Result<VideoFrame, NodeError> {
    use PixelFormat::{Gray8, Rgb24, Rgba32, Yuv420p};
    let (w, h) = (frame.width(), frame.height());
    let src = frame.pixels().data().as_slice();
    // A frame's sides are bounded (`MAX_VIDEO_SIDE`), so its length is known.
    let len = to.frame_len(w, h).ok_or_else(|| NodeError::InvalidInput {
        node,
        reason: format!("a {w}x{h} frame is too large"),
    })?;
    let mut out = vec![0u8; len];
    let stride = |channels: u32| {
        w.checked_mul(channels)
            .ok_or_else(|| NodeError::InvalidInput {
                node,
                reason: format!("a {w} pixel wide frame is too wide to convert"),
            })
    };
    let r = range.yuv();
    let done = match (frame.format(), to) {
        (Gray8, Gray8) | (Rgb24, Rgb24) | (Rgba32, Rgba32) | (Yuv420p, Yuv420p) => {
            return Ok(frame.clone());
        }
        (Rgb24, Rgba32) => yuv::rgb_to_rgba(src, stride(3)?, &mut out, stride(4)?, w, h),
        (Rgba32, Rgb24) => yuv::rgba_to_rgb(src, stride(4)?, &mut out, stride(3)?, w, h),
        (Gray8, Rgb24) => yuv::yuv400_to_rgb(
            &gray(src, w, h),
            &mut out,
            stride(3)?,
            YuvRange::Full,
            BT601,
        ),
        (Gray8, Rgba32) => yuv::yuv400_to_rgba(
            &gray(src, w, h),
            &mut out,
            stride(4)?,
            YuvRange::Full,
            BT601,
        ),
        (Rgb24, Gray8) => yuv::rgb_to_yuv400(
            &mut gray_mut(&mut out, w, h),
            src,
            stride(3)?,
            YuvRange::Full,
            BT601,
        ),
        (Rgba32, Gray8) => yuv::rgba_to_yuv400(
            &mut gray_mut(&mut out, w, h),
            src,
            stride(4)?,
            YuvRange::Full,
            BT601,
        ),
        (Rgb24, Yuv420p) => yuv::rgb_to_yuv420(
            &mut planar_mut(&mut out, w, h),
            src,
            stride(3)?,
            r,
            BT601,
            YuvConversionMode::Balanced,
        ),
        (Rgba32, Yuv420p) => yuv::rgba_to_yuv420(
            &mut planar_mut(&mut out, w, h),
            src,
            stride(4)?,
            r,
            BT601,
            YuvConversionMode::Balanced,
        ),
        (Yuv420p, Rgb24) => yuv::yuv420_to_rgb(&planar(src, w, h), &mut out, stride(3)?, r, BT601),
        (Yuv420p, Rgba32) => {
            yuv::yuv420_to_rgba(&planar(src, w, h), &mut out, stride(4)?, r, BT601)
        }
        (Gray8, Yuv420p) => {
            gray_to_yuv420p(src, &mut out, range);
            Ok(())
        }
        (Yuv420p, Gray8) => {
            yuv420p_to_gray(src, &mut out, range);
            Ok(())
        }
    };
    done.map_err(|e: YuvError| NodeError::InvalidInput {
        node,
        reason: format!("converting {:?} to {to:?}: {e}", frame.format()),
    })?;
    make_frame(node, out, w, h, to, frame.timestamp_ns())
}

fn gray(y: &[u8], width: u32, height: u32) -> YuvGrayImage<'_, u8> {
    YuvGrayImage {
        y_plane: y,
        y_stride: width,
        width,
        height,
    }
}

fn gray_mut(y: &mut [u8], width: u32, height: u32) -> YuvGrayImageMut<'_, u8> {
    YuvGrayImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: width,
        width,
        height,
    }
}

fn planar(bytes: &[u8], width: u32, height: u32) -> YuvPlanarImage<'_, u8> {
    let (y, u, v) = yuv_planes(bytes, width, height);
    let (cw, _) = chroma_size(width, height);
    YuvPlanarImage {
        y_plane: y,
        y_stride: width,
        u_plane: u,
        u_stride: cw,
        v_plane: v,
        v_stride: cw,
        width,
        height,
    }
}

fn planar_mut(bytes: &mut [u8], width: u32, height: u32) -> YuvPlanarImageMut<'_, u8> {
    let luma = width as usize * height as usize;
    let (cw, ch) = chroma_size(width, height);
    let (y, chroma) = bytes.split_at_mut(luma.min(bytes.len()));
    let (u, v) = chroma.split_at_mut((cw as usize * ch as usize).min(chroma.len()));
    YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: width,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: cw,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: cw,
        width,
        height,
    }
}

/// Full-range gray to luma in `range`, chroma neutral. `out` is a whole Yuv420p frame.
fn gray_to_yuv420p(gray: &[u8], out: &mut [u8], range: ColorRange) {
    let (luma, chroma) = out.split_at_mut(gray.len().min(out.len()));
    match range {
        ColorRange::Full => luma.copy_from_slice(gray),
        ColorRange::Limited => {
            let lut: [u8; 256] = std::array::from_fn(|g| full_to_limited(g as u8));
            for (y, g) in luma.iter_mut().zip(gray) {
                *y = lut[usize::from(*g)];
            }
        }
    }
    chroma.fill(128);
}

/// Luma in `range` to full-range gray; chroma is dropped. `yuv` is a whole Yuv420p frame.
fn yuv420p_to_gray(yuv: &[u8], gray: &mut [u8], range: ColorRange) {
    let luma = &yuv[..gray.len().min(yuv.len())];
    match range {
        ColorRange::Full => gray.copy_from_slice(luma),
        ColorRange::Limited => {
            let lut: [u8; 256] = std::array::from_fn(|y| limited_to_full(y as u8));
            for (g, y) in gray.iter_mut().zip(luma) {
                *g = lut[usize::from(*y)];
            }
        }
    }
}

/// 0..=255 to 16..=235, rounded.
fn full_to_limited(g: u8) -> u8 {
    let scaled = (u32::from(g) * 219 + 127) / 255 + 16;
    u8::try_from(scaled).unwrap_or(u8::MAX)
}

/// 16..=235 to 0..=255, rounded; values outside the range clip.
fn limited_to_full(y: u8) -> u8 {
    let y = u32::from(y.clamp(16, 235)) - 16;
    u8::try_from((y * 255 + 109) / 219).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(format: PixelFormat, w: u32, h: u32, pixels: Vec<u8>) -> VideoFrame {
        make_frame("t", pixels, w, h, format, 5).expect("a valid frame")
    }

    #[test]
    fn luma_range_mapping_is_exact_at_the_ends_and_inverts() {
        assert_eq!(full_to_limited(0), 16);
        assert_eq!(full_to_limited(255), 235);
        assert_eq!(limited_to_full(16), 0);
        assert_eq!(limited_to_full(235), 255);
        assert_eq!(limited_to_full(0), 0);
        assert_eq!(limited_to_full(255), 255);
        for g in 0..=255u8 {
            let back = limited_to_full(full_to_limited(g));
            assert!(back.abs_diff(g) <= 1, "{g} came back as {back}");
        }
    }

    #[test]
    fn gray_goes_to_rgb_exactly_and_back() {
        let gray: Vec<u8> = (0..=255).collect();
        let g = frame(PixelFormat::Gray8, 16, 16, gray.clone());
        let rgb = convert("t", &g, PixelFormat::Rgb24, ColorRange::Limited).expect("to rgb");
        let bytes = rgb.pixels().data().as_slice();
        assert!(bytes.chunks(3).zip(&gray).all(|(p, g)| p == [*g, *g, *g]));
        assert_eq!(rgb.timestamp_ns(), 5);
        let back = convert("t", &rgb, PixelFormat::Gray8, ColorRange::Limited).expect("to gray");
        let diff = back
            .pixels()
            .data()
            .as_slice()
            .iter()
            .zip(&gray)
            .map(|(a, b)| a.abs_diff(*b))
            .max();
        assert!(diff <= Some(1), "gray -> rgb -> gray differs by {diff:?}");
    }

    #[test]
    fn gray_through_yuv420p_keeps_luma_and_neutral_chroma() {
        let gray: Vec<u8> = (0..30).map(|i| (i * 8) as u8).collect();
        let g = frame(PixelFormat::Gray8, 5, 6, gray.clone());
        for range in [ColorRange::Limited, ColorRange::Full] {
            let yuv = convert("t", &g, PixelFormat::Yuv420p, range).expect("to yuv");
            let (_, u, v) = yuv_planes(yuv.pixels().data().as_slice(), 5, 6);
            assert!(u.iter().chain(v).all(|c| *c == 128));
            let back = convert("t", &yuv, PixelFormat::Gray8, range).expect("to gray");
            let max = back
                .pixels()
                .data()
                .as_slice()
                .iter()
                .zip(&gray)
                .map(|(a, b)| a.abs_diff(*b))
                .max();
            assert!(max <= Some(1), "{range:?}: {max:?}");
        }
    }

    #[test]
    fn rgba_drops_and_restores_alpha() {
        let rgb = frame(PixelFormat::Rgb24, 2, 1, vec![1, 2, 3, 4, 5, 6]);
        let rgba = convert("t", &rgb, PixelFormat::Rgba32, ColorRange::Limited).expect("rgba");
        assert_eq!(
            rgba.pixels().data().as_slice(),
            &[1, 2, 3, 255, 4, 5, 6, 255]
        );
        let back = convert("t", &rgba, PixelFormat::Rgb24, ColorRange::Limited).expect("rgb");
        assert_eq!(back.pixels().data().as_slice(), &[1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn same_format_shares_the_pixels() {
        let rgb = frame(PixelFormat::Rgb24, 2, 1, vec![1, 2, 3, 4, 5, 6]);
        let same = convert("t", &rgb, PixelFormat::Rgb24, ColorRange::Full).expect("same");
        assert_eq!(same, rgb);
    }
}
