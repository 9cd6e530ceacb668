//! `audio.chunker`: re-cuts the stream into chunks of exactly `frames` frames.
//!
//! Input of any chunk size is buffered; every full chunk goes out at once and the remainder
//! (shorter) at `flush`. Output is f32. A chunk's timestamp is that of the input frame it
//! starts with: the buffer's time is taken from the input whenever the buffer is empty, so a
//! gap in the input timestamps carries over to the output. A change of rate or channel count
//! first emits what is buffered (short), then starts afresh.

use troupe_value::{Audio, Value};

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, Node, NodeError};
use crate::params::{ParamKind, ParamSpec, Params};

use super::samples::{expect_audio, frames_to_ns, interleaved_f32, make_audio};

const NAME: &str = "audio.chunker";
/// Largest chunk (2^24 frames, about 6 minutes at 48 kHz).
const MAX_FRAMES: u32 = 1 << 24;

/// The catalog entry.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Re-cuts audio into chunks of exactly `frames` frames; the remainder comes at flush.",
    is_source: false,
    params: &[ParamSpec {
        name: "frames",
        kind: ParamKind::Int {
            min: 1,
            max: MAX_FRAMES as i64,
        },
        default: Some("1024"),
        doc: "Frames (samples per channel) in each chunk, at most 2^24.",
    }],
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let frames = params.positive_u32("frames", Some(1024))?;
    if frames > MAX_FRAMES {
        return Err(params
            .out_of_range(
                "frames",
                format!("must be at most {MAX_FRAMES}, got {frames}"),
            )
            .into());
    }
    let frames = frames as usize;
    Ok(Built::Node(Box::new(Chunker {
        frames,
        buffer: Vec::new(),
        format: None,
        anchor_ns: 0,
        frames_since_anchor: 0,
    })))
}

/// Buffers audio and emits it in fixed-size chunks.
pub(crate) struct Chunker {
    frames: usize,
    /// Interleaved samples not yet emitted (less than one chunk between calls).
    buffer: Vec<f32>,
    /// Sample rate and channels of what is buffered.
    format: Option<(u32, u16)>,
    /// Timestamp of some earlier input frame, and how many frames were emitted since it.
    anchor_ns: u64,
    frames_since_anchor: u64,
}

impl Chunker {
    fn emit_chunk(&mut self, samples: Vec<f32>, out: &mut Emitter) -> Result<(), NodeError> {
        let Some((rate, channels)) = self.format else {
            return Ok(());
        };
        let frames = (samples.len() / usize::from(channels)) as u64;
        let ts = self
            .anchor_ns
            .saturating_add(frames_to_ns(self.frames_since_anchor, rate));
        self.frames_since_anchor += frames;
        out.emit(make_audio(NAME, samples, rate, channels, ts)?);
        Ok(())
    }

    fn emit_rest(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer);
            self.emit_chunk(rest, out)?;
        }
        Ok(())
    }

    fn start(&mut self, audio: &Audio) {
        self.format = Some((audio.sample_rate(), audio.channels()));
        self.anchor_ns = audio.timestamp_ns();
        self.frames_since_anchor = 0;
    }
}

impl Node for Chunker {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let audio = expect_audio(NAME, input)?;
        if self.format != Some((audio.sample_rate(), audio.channels())) {
            self.emit_rest(out)?;
        }
        if self.buffer.is_empty() {
            self.start(&audio);
        }
        let chunk_len = self.frames * usize::from(audio.channels());
        let samples = interleaved_f32(&audio);
        let mut rest = &samples[..];
        // Top the buffer up to one chunk first, then cut whole chunks straight from the input.
        if !self.buffer.is_empty() {
            let take = (chunk_len - self.buffer.len()).min(rest.len());
            self.buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buffer.len() == chunk_len {
                let full = std::mem::replace(&mut self.buffer, Vec::with_capacity(chunk_len));
                self.emit_chunk(full, out)?;
            }
        }
        while rest.len() >= chunk_len {
            self.emit_chunk(rest[..chunk_len].to_vec(), out)?;
            rest = &rest[chunk_len..];
        }
        self.buffer.extend_from_slice(rest);
        Ok(())
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        self.emit_rest(out)
    }

    fn interrupt(&mut self) {
        self.buffer.clear();
        self.format = None;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{audio_of, chunks, concat, node, run};
    use super::*;

    #[test]
    fn exact_chunks_then_the_remainder_at_flush() {
        let input: Vec<f32> = (0..2 * 1000).map(|i| i as f32).collect();
        let mut n = node("audio.chunker", &[("frames", Value::Int(300))]);
        let out = run(
            n.as_mut(),
            chunks(&input, 8000, 2, &[7, 450, 1, 120], 1_000),
        );
        let chunks = audio_of(&out);
        let sizes: Vec<usize> = chunks.iter().map(|c| c.frames()).collect();
        assert_eq!(sizes, [300, 300, 300, 100]);
        assert_eq!(concat(&chunks), input);
        let stamps: Vec<u64> = chunks.iter().map(|c| c.timestamp_ns()).collect();
        assert_eq!(stamps, [1_000, 37_501_000, 75_001_000, 112_501_000]);
    }

    #[test]
    fn the_remainder_comes_only_at_flush() {
        let mut n = node("audio.chunker", &[("frames", Value::Int(4))]);
        let mut out = Emitter::new();
        let audio = Audio::from_interleaved(vec![0.5; 6], 16_000, 1, 0).expect("audio");
        n.process(Value::Audio(audio), &mut out).expect("process");
        assert_eq!(out.len(), 1);
        n.flush(&mut out).expect("flush");
        assert_eq!(audio_of(out.items())[1].frames(), 2);
    }
}
