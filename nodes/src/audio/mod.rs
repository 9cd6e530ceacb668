//! Audio nodes: pure processing of [`Audio`](troupe_value::Audio) chunks.
//!
//! | node | does |
//! |---|---|
//! | `audio.file_source` | decodes WAV (hound), MP3, FLAC, Ogg/Vorbis, AAC in M4A/MP4 (symphonia) into f32 chunks |
//! | `audio.stream_source` | live raw PCM or WAV from a FIFO or stdin, chunk by chunk as it comes |
//! | `audio.wav_sink` | writes the stream to a WAV file, passes chunks on |
//! | `audio.resample` | streaming rate conversion (rubato FFT or sinc) |
//! | `audio.channel_mix` | mono / stereo / one channel |
//! | `audio.chunker` | exact `frames`-sized chunks, remainder at flush |
//! | `audio.gain` | gain in dB or per-chunk peak normalisation |
//! | `audio.vad` | speech segments `{start_s, end_s, audio}`; speech_start/end events for barge-in |
//!
//! Nodes take f32 or i16 audio of any channel count and emit f32 (a chunk a node would not
//! change passes on as it came). Each file documents its node's timing and edge cases;
//! nodes are built through [`catalog`](crate::catalog).
//!
//! [`PcmStream`] is the reader behind `audio.stream_source`, public so that other code (a
//! network ingress, say) can turn any byte stream of PCM or WAV into chunks the same way.

mod channel_mix;
mod chunker;
mod file_source;
mod gain;
mod pcm_stream;
mod resample;
mod samples;
mod stream_source;
#[cfg(test)]
mod testing;
mod vad;
mod wav_sink;

pub use self::pcm_stream::{
    ChannelReader, ChunkSize, MAX_CHANNELS, MAX_CHUNK_BYTES, MAX_SAMPLE_RATE, PcmError, PcmSpec,
    PcmStream, SampleFormat,
};
pub use self::stream_source::stream_source_reading;
use crate::catalog::NodeType;

/// The audio node types.
pub(crate) const TYPES: &[NodeType] = &[
    file_source::TYPE,
    stream_source::TYPE,
    wav_sink::TYPE,
    resample::TYPE,
    channel_mix::TYPE,
    chunker::TYPE,
    gain::TYPE,
    vad::TYPE,
];
