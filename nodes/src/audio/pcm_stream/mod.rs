//! Audio chunks from a byte stream that arrives as it is made: raw PCM or a WAV stream.
//!
//! [`PcmStream`] reads from any [`Read`] (a FIFO, stdin, a socket, a channel of network
//! packets behind a `Read`) and hands out f32 [`Audio`] chunks of a fixed length, stamped
//! with stream time from 0. It never seeks and never needs the stream's length. A read
//! blocks until the bytes of a whole chunk have come (or the stream ends: the bytes there
//! make a last, shorter chunk; a trailing part of a frame is dropped).
//!
//! ```
//! use troupe_nodes::audio::{ChunkSize, PcmSpec, PcmStream, SampleFormat};
//!
//! // 3 frames of 16-bit mono PCM at 8 kHz, in chunks of 2 frames.
//! let bytes: &[u8] = &[0x00, 0x40, 0x00, 0xC0, 0xFF, 0x7F];
//! let spec = PcmSpec { format: SampleFormat::S16Le, sample_rate: 8000, channels: 1 };
//! let mut stream = PcmStream::raw(bytes, spec, ChunkSize::Frames(2))?;
//! let first = stream.next_chunk()?.expect("a chunk");
//! assert_eq!(first.samples().to_vec::<f32>().unwrap(), [0.5, -0.5]);
//! let last = stream.next_chunk()?.expect("the rest");
//! assert_eq!((last.frames(), last.timestamp_ns()), (1, 250_000));
//! assert!(stream.next_chunk()?.is_none());
//! # Ok::<(), troupe_nodes::audio::PcmError>(())
//! ```

mod channel_reader;
mod error;
mod wav_header;

use std::io::{ErrorKind, Read};

use troupe_value::Audio;

pub use self::channel_reader::ChannelReader;
pub use self::error::PcmError;
use super::samples::frames_to_ns;

/// The highest sample rate taken.
pub const MAX_SAMPLE_RATE: u32 = 768_000;
/// The most channels taken.
pub const MAX_CHANNELS: u16 = 64;
/// The most bytes one chunk may take in the stream (its f32 copy takes up to 4x this).
pub const MAX_CHUNK_BYTES: u64 = 16 << 20;

/// How samples are laid out in the stream (interleaved, little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// Unsigned 8-bit, 128 = silence (WAV only).
    U8,
    /// Signed 16-bit.
    S16Le,
    /// Signed 24-bit in 3 bytes (WAV only).
    S24Le,
    /// Signed 32-bit (WAV only).
    S32Le,
    /// 32-bit float in [-1, 1].
    F32Le,
}

impl SampleFormat {
    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        match self {
            SampleFormat::U8 => 1,
            SampleFormat::S16Le => 2,
            SampleFormat::S24Le => 3,
            SampleFormat::S32Le | SampleFormat::F32Le => 4,
        }
    }

    /// The sample in `b` (`self.bytes()` long) as f32 in [-1, 1].
    fn decode(self, b: &[u8]) -> f32 {
        match self {
            SampleFormat::U8 => (f32::from(b[0]) - 128.0) / 128.0,
            SampleFormat::S16Le => f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0,
            SampleFormat::S24Le => {
                // Into the top three bytes of an i32, so the sign comes along.
                i32::from_le_bytes([0, b[0], b[1], b[2]]) as f32 / 2_147_483_648.0
            }
            SampleFormat::S32Le => {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0
            }
            SampleFormat::F32Le => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        }
    }
}

/// What the bytes of a stream are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcmSpec {
    /// Sample layout.
    pub format: SampleFormat,
    /// Frames per second, 1..=[`MAX_SAMPLE_RATE`].
    pub sample_rate: u32,
    /// Interleaved channels, 1..=[`MAX_CHANNELS`].
    pub channels: u16,
}

impl PcmSpec {
    /// Refuses a rate or channel count out of range.
    pub fn check(&self) -> Result<(), PcmError> {
        if !(1..=MAX_SAMPLE_RATE).contains(&self.sample_rate) {
            return Err(PcmError::SampleRate(self.sample_rate));
        }
        if !(1..=MAX_CHANNELS).contains(&self.channels) {
            return Err(PcmError::Channels(self.channels));
        }
        Ok(())
    }

    /// Bytes per frame (one sample of every channel).
    pub fn frame_bytes(&self) -> usize {
        self.format.bytes() * usize::from(self.channels)
    }

    /// Frames per chunk of size `chunk` (at least one), if the spec is in range and the
    /// chunk within [`MAX_CHUNK_BYTES`].
    pub fn chunk_frames(&self, chunk: ChunkSize) -> Result<usize, PcmError> {
        self.check()?;
        let frames = match chunk {
            ChunkSize::Frames(frames) => u64::from(frames),
            ChunkSize::Millis(ms) => u64::from(ms) * u64::from(self.sample_rate) / 1000,
        }
        .max(1);
        let bytes = frames * self.frame_bytes() as u64;
        if bytes > MAX_CHUNK_BYTES {
            return Err(PcmError::ChunkTooLarge { frames, bytes });
        }
        Ok(frames as usize)
    }
}

/// How long each chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkSize {
    /// This many frames.
    Frames(u32),
    /// This many milliseconds (rounded down to whole frames).
    Millis(u32),
}

/// Reads fixed-length audio chunks from a PCM or WAV byte stream as it arrives.
#[derive(Debug)]
pub struct PcmStream<R> {
    reader: R,
    spec: PcmSpec,
    chunk_frames: usize,
    /// Bytes of one chunk, reused.
    buf: Vec<u8>,
    /// Sample bytes still to read, `None` until the end of the stream.
    remaining: Option<u64>,
    frames_read: u64,
    finished: bool,
}

impl<R: Read> PcmStream<R> {
    /// A stream of raw samples laid out as `spec` says.
    pub fn raw(reader: R, spec: PcmSpec, chunk: ChunkSize) -> Result<PcmStream<R>, PcmError> {
        PcmStream::new(reader, spec, chunk, None)
    }

    /// A WAV stream: reads its header now (blocking until it has come), then its samples
    /// as they come. Integer PCM of 8, 16, 24 or 32 bits and 32-bit float are taken.
    pub fn wav(mut reader: R, chunk: ChunkSize) -> Result<PcmStream<R>, PcmError> {
        let header = wav_header::read(&mut reader)?;
        PcmStream::new(reader, header.spec, chunk, header.data_len)
    }

    fn new(
        reader: R,
        spec: PcmSpec,
        chunk: ChunkSize,
        remaining: Option<u64>,
    ) -> Result<PcmStream<R>, PcmError> {
        let chunk_frames = spec.chunk_frames(chunk)?;
        Ok(PcmStream {
            reader,
            spec,
            chunk_frames,
            buf: vec![0; chunk_frames * spec.frame_bytes()],
            remaining,
            frames_read: 0,
            finished: false,
        })
    }

    /// What the samples are (for WAV, what its header said).
    pub fn spec(&self) -> PcmSpec {
        self.spec
    }

    /// Frames in every chunk but the last.
    pub fn chunk_frames(&self) -> usize {
        self.chunk_frames
    }

    /// Frames handed out so far.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// Whether the stream has ended (the last chunk, if any, was handed out).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The next chunk: blocks until a whole chunk has come; at the end of the stream, what
    /// came (a shorter chunk), then `None`.
    pub fn next_chunk(&mut self) -> Result<Option<Audio>, PcmError> {
        if self.finished {
            return Ok(None);
        }
        let want = match self.remaining {
            Some(left) => self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX)),
            None => self.buf.len(),
        };
        let mut got = 0;
        while got < want {
            match self.reader.read(&mut self.buf[got..want]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(left) = &mut self.remaining {
            *left -= got as u64;
        }
        if got < self.buf.len() {
            self.finished = true;
        }
        let frame_bytes = self.spec.frame_bytes();
        let frames = got / frame_bytes;
        if frames == 0 {
            self.finished = true;
            return Ok(None);
        }
        let format = self.spec.format;
        let samples: Vec<f32> = self.buf[..frames * frame_bytes]
            .chunks_exact(format.bytes())
            .map(|b| format.decode(b))
            .collect();
        let timestamp_ns = frames_to_ns(self.frames_read, self.spec.sample_rate);
        self.frames_read += frames as u64;
        let audio = Audio::from_interleaved(
            samples,
            self.spec.sample_rate,
            self.spec.channels,
            timestamp_ns,
        )?;
        Ok(Some(audio))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_decodes_to_f32() {
        let cases: [(SampleFormat, &[u8], f32); 6] = [
            (SampleFormat::U8, &[0], -1.0),
            (SampleFormat::U8, &[192], 0.5),
            (SampleFormat::S16Le, &[0x00, 0x80], -1.0),
            (SampleFormat::S24Le, &[0x00, 0x00, 0xC0], -0.5),
            (SampleFormat::S32Le, &[0, 0, 0, 0x40], 0.5),
            (SampleFormat::F32Le, &0.25f32.to_le_bytes(), 0.25),
        ];
        for (format, bytes, want) in cases {
            assert_eq!(format.decode(bytes), want, "{format:?}");
        }
    }

    #[test]
    fn chunks_are_bounded_before_anything_is_allocated() {
        let spec = PcmSpec {
            format: SampleFormat::F32Le,
            sample_rate: MAX_SAMPLE_RATE,
            channels: MAX_CHANNELS,
        };
        assert!(matches!(
            spec.chunk_frames(ChunkSize::Millis(1000)),
            Err(PcmError::ChunkTooLarge { .. })
        ));
        assert_eq!(spec.chunk_frames(ChunkSize::Millis(0)).expect("ok"), 1);
        let stereo = PcmSpec {
            sample_rate: 44_100,
            channels: 2,
            ..spec
        };
        assert_eq!(stereo.chunk_frames(ChunkSize::Millis(20)).expect("ok"), 882);
    }

    #[test]
    fn a_wav_data_length_stops_the_stream_before_what_follows() {
        let mut bytes =
            b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0"
                .to_vec();
        bytes.extend(b"data\x06\0\0\0");
        bytes.extend([0x00, 0x40, 0x00, 0x40, 0x00, 0x40]);
        bytes.extend(b"LIST\x04\0\0\0abcd");
        let mut stream = PcmStream::wav(bytes.as_slice(), ChunkSize::Frames(2)).expect("wav");
        assert_eq!(stream.spec().sample_rate, 8000);
        let mut frames = 0;
        while let Some(chunk) = stream.next_chunk().expect("chunk") {
            assert!(
                chunk
                    .samples()
                    .to_vec::<f32>()
                    .expect("f32")
                    .iter()
                    .all(|s| *s == 0.5)
            );
            frames += chunk.frames();
        }
        assert_eq!(frames, 3);
        assert!(stream.is_finished());
    }
}
