//! Audio nodes: pure processing of [`Audio`](troupe_value::Audio) chunks.
//!
//! | node | does |
//! |---|---|
//! | `audio.file_source` | decodes WAV (hound), MP3, FLAC, OGG/Vorbis (symphonia) into f32 chunks |
//! | `audio.wav_sink` | writes the stream to a WAV file, passes chunks on |
//! | `audio.resample` | streaming rate conversion (rubato FFT or sinc) |
//! | `audio.channel_mix` | mono / stereo / one channel |
//! | `audio.chunker` | exact `frames`-sized chunks, remainder at flush |
//! | `audio.gain` | gain in dB or per-chunk peak normalisation |
//! | `audio.vad` | speech segments `{start_s, end_s, audio}` |
//!
//! Nodes take f32 or i16 audio of any channel count and emit f32 (a chunk a node would not
//! change passes on as it came). Each file documents its node's timing and edge cases;
//! nodes are built through [`catalog`](crate::catalog).

mod channel_mix;
mod chunker;
mod file_source;
mod gain;
mod resample;
mod samples;
#[cfg(test)]
mod testing;
mod vad;
mod wav_sink;

use crate::catalog::NodeType;

/// The audio node types.
pub(crate) const TYPES: &[NodeType] = &[
    file_source::TYPE,
    wav_sink::TYPE,
    resample::TYPE,
    channel_mix::TYPE,
    chunker::TYPE,
    gain::TYPE,
    vad::TYPE,
];
