use thiserror::Error;
use troupe_value::MediaError;

use super::{MAX_CHANNELS, MAX_CHUNK_BYTES, MAX_SAMPLE_RATE};

/// Why a [`PcmStream`](super::PcmStream) could not start or go on.
#[derive(Debug, Error)]
pub enum PcmError {
    /// Reading the stream failed.
    #[error("reading the stream: {0}")]
    Io(#[from] std::io::Error),
    /// The stream does not start with a RIFF (or RF64) WAVE header.
    #[error("not a WAV stream (no RIFF/RF64 WAVE header)")]
    NotWav,
    /// The stream ended inside the WAV header, before its data chunk.
    #[error("the stream ends inside the WAV header")]
    HeaderEnded,
    /// A WAV header field is impossible (what is wrong is said).
    #[error("bad WAV header: {0}")]
    BadHeader(&'static str),
    /// The WAV samples are in an encoding this reader does not take.
    #[error(
        "unsupported WAV samples: format tag {tag:#06x} with {bits} bits (supported: 8, 16, \
         24 and 32-bit integer PCM, 32-bit float)"
    )]
    UnsupportedEncoding {
        /// The WAVE format tag (1 = integer PCM, 3 = float, 0xFFFE = extensible).
        tag: u16,
        /// Bits per sample.
        bits: u16,
    },
    /// The sample rate is 0 or over [`MAX_SAMPLE_RATE`].
    #[error("sample rate {0} Hz is not in 1..={MAX_SAMPLE_RATE}")]
    SampleRate(u32),
    /// The channel count is 0 or over [`MAX_CHANNELS`].
    #[error("{0} channels is not in 1..={MAX_CHANNELS}")]
    Channels(u16),
    /// One chunk would take more than [`MAX_CHUNK_BYTES`] bytes.
    #[error("a chunk of {frames} frames would take {bytes} bytes, over {MAX_CHUNK_BYTES}")]
    ChunkTooLarge {
        /// Frames per chunk asked for.
        frames: u64,
        /// Bytes they take in the stream.
        bytes: u64,
    },
    /// The samples read do not make an [`Audio`](troupe_value::Audio) chunk.
    #[error(transparent)]
    Audio(#[from] MediaError),
}
