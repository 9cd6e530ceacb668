use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::array::{Array, ArrayError};
use crate::codec::{DecodeError, Stashed, stash_invalid};
use crate::dtype::DType;

/// Why an audio or video value could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MediaError {
    /// Sample rate, channel count, width or height is zero.
    #[error("{0} must be positive")]
    Zero(&'static str),
    /// Audio samples are not `[frames]` (mono) or `[frames, channels]` of f32 or i16.
    #[error(
        "audio samples must be f32 or i16 shaped [frames, {channels}], got {dtype:?} {shape:?}"
    )]
    AudioShape {
        /// Channels declared.
        channels: u16,
        /// Samples' dtype.
        dtype: DType,
        /// Samples' shape.
        shape: Vec<usize>,
    },
    /// Pixels are not u8 or their byte count does not match the format and size.
    #[error(
        "{format:?} {width}x{height} needs {expected} u8 pixels bytes, got {actual} of {dtype:?}"
    )]
    VideoSize {
        /// Pixel format.
        format: PixelFormat,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Bytes the format and size need.
        expected: usize,
        /// Bytes given.
        actual: usize,
        /// Pixels' dtype.
        dtype: DType,
    },
    /// A frame's width or height is above [`MAX_VIDEO_SIDE`].
    #[error("a {width}x{height} frame is larger than {MAX_VIDEO_SIDE} pixels on a side")]
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// Building the samples or pixels array failed.
    #[error(transparent)]
    Array(#[from] ArrayError),
}

/// The longest side of a video frame, in pixels (32768: twice 16K video). Sizes come from
/// peers, manifests and Python values: bounding them keeps every frame's byte count far
/// from overflow (at most 4 GiB).
pub const MAX_VIDEO_SIDE: u32 = 1 << 15;

/// A chunk of audio: interleaved samples with their rate, channel count and start time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AudioRepr")]
pub struct Audio {
    samples: Array,
    sample_rate: u32,
    channels: u16,
    timestamp_ns: u64,
}

#[derive(Deserialize)]
struct AudioRepr {
    samples: Array,
    sample_rate: u32,
    channels: u16,
    timestamp_ns: u64,
}

impl TryFrom<AudioRepr> for Audio {
    type Error = Stashed;

    fn try_from(r: AudioRepr) -> Result<Self, Self::Error> {
        Audio::new(r.samples, r.sample_rate, r.channels, r.timestamp_ns)
            .map_err(|e| stash_invalid(DecodeError::InvalidMedia(e)))
    }
}

impl Audio {
    /// Audio from `samples` shaped `[frames, channels]` (or `[frames]` when mono), f32 or i16.
    pub fn new(
        samples: Array,
        sample_rate: u32,
        channels: u16,
        timestamp_ns: u64,
    ) -> Result<Audio, MediaError> {
        if sample_rate == 0 {
            return Err(MediaError::Zero("sample rate"));
        }
        if channels == 0 {
            return Err(MediaError::Zero("channel count"));
        }
        let shape_ok = match samples.shape() {
            [_] => channels == 1,
            [_, c] => *c == usize::from(channels),
            _ => false,
        };
        if !shape_ok || !matches!(samples.dtype(), DType::F32 | DType::I16) {
            return Err(MediaError::AudioShape {
                channels,
                dtype: samples.dtype(),
                shape: samples.shape().to_vec(),
            });
        }
        Ok(Audio {
            samples,
            sample_rate,
            channels,
            timestamp_ns,
        })
    }

    /// Audio from interleaved f32 samples, without copying them.
    pub fn from_interleaved(
        samples: Vec<f32>,
        sample_rate: u32,
        channels: u16,
        timestamp_ns: u64,
    ) -> Result<Audio, MediaError> {
        let frames = samples.len() / usize::from(channels.max(1));
        let array = Array::from_vec(samples).reshape(vec![frames, usize::from(channels)])?;
        Audio::new(array, sample_rate, channels, timestamp_ns)
    }

    /// The samples, `[frames, channels]` or `[frames]`.
    pub fn samples(&self) -> &Array {
        &self.samples
    }

    pub(crate) fn samples_mut(&mut self) -> &mut Array {
        &mut self.samples
    }

    /// Samples per second per channel.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Number of interleaved channels.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Start of the chunk, in nanoseconds from the start of the stream.
    pub fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }

    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.shape()[0]
    }

    /// How long the chunk plays.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.frames() as f64 / f64::from(self.sample_rate))
    }
}

/// How a video frame's pixels are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PixelFormat {
    /// One byte per pixel, luma only.
    Gray8,
    /// Three bytes per pixel, R G B.
    Rgb24,
    /// Four bytes per pixel, R G B A.
    Rgba32,
    /// Planar Y, then U and V at half width and half height (I420).
    Yuv420p,
}

impl PixelFormat {
    /// Every format, in the order of [`PixelFormat::NAMES`].
    pub const ALL: [PixelFormat; 4] = [
        PixelFormat::Gray8,
        PixelFormat::Rgb24,
        PixelFormat::Rgba32,
        PixelFormat::Yuv420p,
    ];

    /// The lower-case names parameters, summaries and Python use, in the order of
    /// [`PixelFormat::ALL`].
    pub const NAMES: &'static [&'static str] = &["gray8", "rgb24", "rgba32", "yuv420p"];

    /// The lower-case name of this format (`"rgb24"`).
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Gray8 => "gray8",
            PixelFormat::Rgb24 => "rgb24",
            PixelFormat::Rgba32 => "rgba32",
            PixelFormat::Yuv420p => "yuv420p",
        }
    }

    /// The format called `name` (one of [`PixelFormat::NAMES`]).
    pub fn from_name(name: &str) -> Option<PixelFormat> {
        PixelFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Bytes one frame of this format needs at `width` x `height`; `None` when a side is
    /// above [`MAX_VIDEO_SIDE`].
    pub fn frame_len(self, width: u32, height: u32) -> Option<usize> {
        if width > MAX_VIDEO_SIDE || height > MAX_VIDEO_SIDE {
            return None;
        }
        // At most 2^15 x 2^15 x 4 bytes: no overflow even on 32-bit targets' u64.
        let (w, h) = (u64::from(width), u64::from(height));
        let len = match self {
            PixelFormat::Gray8 => w * h,
            PixelFormat::Rgb24 => w * h * 3,
            PixelFormat::Rgba32 => w * h * 4,
            PixelFormat::Yuv420p => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
        };
        usize::try_from(len).ok()
    }
}

/// One video frame: u8 pixels in a [`PixelFormat`], its size and presentation time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "VideoRepr")]
pub struct VideoFrame {
    pixels: Array,
    width: u32,
    height: u32,
    format: PixelFormat,
    timestamp_ns: u64,
}

#[derive(Deserialize)]
struct VideoRepr {
    pixels: Array,
    width: u32,
    height: u32,
    format: PixelFormat,
    timestamp_ns: u64,
}

impl TryFrom<VideoRepr> for VideoFrame {
    type Error = Stashed;

    fn try_from(r: VideoRepr) -> Result<Self, Self::Error> {
        VideoFrame::new(r.pixels, r.width, r.height, r.format, r.timestamp_ns)
            .map_err(|e| stash_invalid(DecodeError::InvalidMedia(e)))
    }
}

impl VideoFrame {
    /// A frame over `pixels` (u8, any shape, `format.frame_len(width, height)` bytes).
    pub fn new(
        pixels: Array,
        width: u32,
        height: u32,
        format: PixelFormat,
        timestamp_ns: u64,
    ) -> Result<VideoFrame, MediaError> {
        if width == 0 || height == 0 {
            return Err(MediaError::Zero("frame size"));
        }
        let expected = format
            .frame_len(width, height)
            .ok_or(MediaError::TooLarge { width, height })?;
        if pixels.dtype() != DType::U8 || pixels.data().len() != expected {
            return Err(MediaError::VideoSize {
                format,
                width,
                height,
                expected,
                actual: pixels.data().len(),
                dtype: pixels.dtype(),
            });
        }
        Ok(VideoFrame {
            pixels,
            width,
            height,
            format,
            timestamp_ns,
        })
    }

    /// The pixels.
    pub fn pixels(&self) -> &Array {
        &self.pixels
    }

    pub(crate) fn pixels_mut(&mut self) -> &mut Array {
        &mut self.pixels
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Pixel layout.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// Presentation time in nanoseconds from the start of the stream.
    pub fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_checks_its_shape() {
        let a = Audio::from_interleaved(vec![0.0; 960], 48_000, 2, 0).unwrap();
        assert_eq!(a.frames(), 480);
        assert_eq!(a.duration(), std::time::Duration::from_millis(10));
        let bad = Array::from_vec(vec![0u8; 4]);
        assert!(matches!(
            Audio::new(bad, 8000, 1, 0),
            Err(MediaError::AudioShape { .. })
        ));
        assert!(Audio::from_interleaved(vec![0.0; 4], 0, 1, 0).is_err());
    }

    #[test]
    fn video_checks_its_size() {
        let px = Array::from_vec(vec![0u8; 4 * 2 + 2 * 2]);
        assert!(VideoFrame::new(px.clone(), 4, 2, PixelFormat::Yuv420p, 0).is_ok());
        assert!(VideoFrame::new(px, 4, 2, PixelFormat::Rgb24, 0).is_err());
    }

    #[test]
    fn absurd_frame_sizes_are_typed_errors_never_an_overflow() {
        let empty = Array::from_vec(Vec::<u8>::new());
        for (w, h) in [
            (1 << 31, 1 << 31),
            (u32::MAX, u32::MAX),
            (MAX_VIDEO_SIDE + 1, 1),
        ] {
            for format in PixelFormat::ALL {
                assert_eq!(format.frame_len(w, h), None);
                assert!(matches!(
                    VideoFrame::new(empty.clone(), w, h, format, 0),
                    Err(MediaError::TooLarge { .. })
                ));
            }
        }
        let side = MAX_VIDEO_SIDE;
        assert_eq!(
            PixelFormat::Rgba32.frame_len(side, side),
            Some(4 << 30),
            "the largest frame is 4 GiB"
        );
    }
}
