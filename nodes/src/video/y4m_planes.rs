//! Y4M planes to troupe pixel formats: every 8-bit 4:2:0 variant and mono pass as they are;
//! 4:2:2 and 4:4:4 chroma is averaged down to 4:2:0, and 10/12-bit samples are rounded to
//! 8 bits.
//!
//! The 4:2:0 variants (`420`, `420jpeg`, `420paldv`, `420mpeg2`) differ only in where chroma
//! samples sit; troupe's Yuv420p does not record that, so it is dropped.

use troupe_value::PixelFormat;
use y4m::Colorspace;

use crate::video::frame::chroma_size;

/// How a Y4M colourspace is laid out, as far as conversion cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Bits per sample: 8, 10 or 12.
    depth: u32,
    /// Chroma subsampling.
    chroma: Chroma,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chroma {
    Mono,
    C420,
    C422,
    C444,
}

impl Layout {
    /// The layout of `colorspace`, or `None` for one this module does not know.
    pub(crate) fn of(colorspace: Colorspace) -> Option<Layout> {
        let (depth, chroma) = match colorspace {
            Colorspace::Cmono => (8, Chroma::Mono),
            Colorspace::Cmono12 => (12, Chroma::Mono),
            Colorspace::C420
            | Colorspace::C420jpeg
            | Colorspace::C420paldv
            | Colorspace::C420mpeg2 => (8, Chroma::C420),
            Colorspace::C420p10 => (10, Chroma::C420),
            Colorspace::C420p12 => (12, Chroma::C420),
            Colorspace::C422 => (8, Chroma::C422),
            Colorspace::C422p10 => (10, Chroma::C422),
            Colorspace::C422p12 => (12, Chroma::C422),
            Colorspace::C444 => (8, Chroma::C444),
            Colorspace::C444p10 => (10, Chroma::C444),
            Colorspace::C444p12 => (12, Chroma::C444),
            _ => return None,
        };
        Some(Layout { depth, chroma })
    }

    /// The troupe format frames of this layout become.
    pub(crate) fn format(self) -> PixelFormat {
        match self.chroma {
            Chroma::Mono => PixelFormat::Gray8,
            _ => PixelFormat::Yuv420p,
        }
    }

    /// Bytes one frame takes in the file (without its `FRAME` line), if it fits in `u64`.
    pub(crate) fn file_frame_len(self, width: u32, height: u32) -> Option<u64> {
        let (w, h) = (u64::from(width), u64::from(height));
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let samples = match self.chroma {
            Chroma::Mono => w.checked_mul(h)?,
            Chroma::C420 => w
                .checked_mul(h)?
                .checked_add(cw.checked_mul(ch)?.checked_mul(2)?)?,
            Chroma::C422 => w
                .checked_mul(h)?
                .checked_add(cw.checked_mul(h)?.checked_mul(2)?)?,
            Chroma::C444 => w.checked_mul(h)?.checked_mul(3)?,
        };
        samples.checked_mul(if self.depth > 8 { 2 } else { 1 })
    }

    /// The pixels of one decoded frame, in [`Layout::format`].
    pub(crate) fn to_pixels(self, planes: [&[u8]; 3], width: u32, height: u32) -> Vec<u8> {
        let [y, u, v] = planes.map(|p| to_8_bit(p, self.depth));
        if self.chroma == Chroma::Mono {
            return y;
        }
        let (cw, ch) = chroma_size(width, height);
        // Each input chroma plane is `fx` times wider and `fy` times taller than 4:2:0's.
        let (fx, fy, pw) = match self.chroma {
            Chroma::C444 => (2, 2, width),
            Chroma::C422 => (1, 2, cw),
            _ => (1, 1, cw),
        };
        let mut out = y;
        for plane in [u, v] {
            if (fx, fy) == (1, 1) {
                out.extend_from_slice(&plane);
            } else {
                out.extend(subsample(&plane, pw, (cw, ch), fx, fy));
            }
        }
        out
    }
}

/// Samples of `depth` bits (little-endian u16 when above 8) rounded to 8 bits.
fn to_8_bit(plane: &[u8], depth: u32) -> Vec<u8> {
    if depth <= 8 {
        return plane.to_vec();
    }
    let shift = depth - 8;
    plane
        .chunks_exact(2)
        .map(|s| {
            let sample = u32::from(u16::from_le_bytes([s[0], s[1]]));
            u8::try_from((sample + (1 << (shift - 1))) >> shift).unwrap_or(u8::MAX)
        })
        .collect()
}

/// A `cw` x `ch` plane averaging `fx` x `fy` blocks of `plane` (rows of `pw` samples);
/// blocks cut by the edge average the samples they have.
fn subsample<'a>(
    plane: &'a [u8],
    pw: u32,
    (cw, ch): (u32, u32),
    fx: u32,
    fy: u32,
) -> impl Iterator<Item = u8> + 'a {
    let (pw, rows) = (pw as usize, plane.len() / (pw as usize).max(1));
    (0..ch as usize).flat_map(move |cy| {
        (0..cw as usize).map(move |cx| {
            let (mut sum, mut n) = (0u32, 0u32);
            for y in cy * fy as usize..((cy + 1) * fy as usize).min(rows) {
                for x in cx * fx as usize..((cx + 1) * fx as usize).min(pw) {
                    sum += u32::from(plane[y * pw + x]);
                    n += 1;
                }
            }
            u8::try_from((sum + n / 2) / n.max(1)).unwrap_or(u8::MAX)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_depth_rounds_to_8_bits() {
        let ten_bit: Vec<u8> = [0u16, 1, 2, 1023, 512]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        assert_eq!(to_8_bit(&ten_bit, 10), vec![0, 0, 1, 255, 128]);
    }

    #[test]
    fn chroma_444_and_422_average_down_to_420() {
        let layout = Layout::of(Colorspace::C444).expect("known");
        assert_eq!(layout.format(), PixelFormat::Yuv420p);
        // 3x3 frame: chroma 2x2 from 3x3 planes, edge blocks average what they cover.
        let y = [0u8; 9];
        let u = [10u8, 20, 30, 30, 40, 50, 100, 100, 200];
        let v = [7u8; 9];
        let px = layout.to_pixels([&y, &u, &v], 3, 3);
        assert_eq!(Some(px.len()), PixelFormat::Yuv420p.frame_len(3, 3));
        assert_eq!(&px[9..13], &[25, 40, 100, 200]);
        assert!(px[13..].iter().all(|c| *c == 7));

        let layout = Layout::of(Colorspace::C422).expect("known");
        // 2x3 frame: 4:2:2 chroma is 1x3, 4:2:0 is 1x2.
        let u = [10u8, 20, 60];
        let px = layout.to_pixels([&[0; 6], &u, &u], 2, 3);
        assert_eq!(&px[6..8], &[15, 60]);
        assert_eq!(layout.file_frame_len(2, 3), Some(12));
    }

    #[test]
    fn mono_is_gray() {
        let layout = Layout::of(Colorspace::Cmono).expect("known");
        assert_eq!(layout.format(), PixelFormat::Gray8);
        assert_eq!(layout.to_pixels([&[1, 2], &[], &[]], 2, 1), vec![1, 2]);
        assert_eq!(
            Layout::of(Colorspace::C420p10)
                .expect("known")
                .file_frame_len(4, 4),
            Some(48)
        );
    }
}
