//! `audio.wav_sink`: writes the audio stream to a WAV file.
//!
//! The file is created when the first chunk arrives (its rate and channel count set the
//! header); every later chunk must match them. The header is finalized at `flush`, or at
//! `shutdown` when the stream ends without a flush. A stream with no audio writes no file.
//! Each chunk passes on unchanged, so the sink can also tap a pipeline mid-way.

use std::fs::File;
use std::io::BufWriter;

use troupe_value::{Audio, Value};

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, Node, NodeError};
use crate::params::{ParamKind, ParamSpec, Params};

use super::samples::{expect_audio, f32_to_i16, interleaved_f32};

const NAME: &str = "audio.wav_sink";
const FORMATS: &[&str] = &["f32", "i16"];

/// The catalog entry.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Writes audio to a WAV file (f32 or i16) and passes each chunk on unchanged.",
    is_source: false,
    params: &[
        ParamSpec {
            name: "path",
            kind: ParamKind::Path,
            default: None,
            doc: "The WAV file to create (replaced if it exists).",
        },
        ParamSpec {
            name: "format",
            kind: ParamKind::Choice(FORMATS),
            default: Some("f32"),
            doc: "Sample format in the file: 32-bit float or 16-bit integer (clamped, rounded).",
        },
    ],
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let path = params.str("path", None)?;
    let float = params.choice("format", FORMATS, Some("f32"))? == "f32";
    Ok(Built::Node(Box::new(WavSink {
        path,
        float,
        writer: None,
    })))
}

/// Writes chunks to a WAV file.
pub(crate) struct WavSink {
    path: String,
    float: bool,
    writer: Option<Writer>,
}

struct Writer {
    wav: hound::WavWriter<BufWriter<File>>,
    sample_rate: u32,
    channels: u16,
}

impl WavSink {
    fn hound_error(&self, e: hound::Error) -> NodeError {
        match e {
            hound::Error::IoError(source) => NodeError::Io {
                node: NAME,
                path: self.path.clone(),
                source,
            },
            e => NodeError::Format {
                node: NAME,
                reason: format!("{}: {e}", self.path),
            },
        }
    }

    fn open(&self, audio: &Audio) -> Result<Writer, NodeError> {
        let spec = hound::WavSpec {
            channels: audio.channels(),
            sample_rate: audio.sample_rate(),
            bits_per_sample: if self.float { 32 } else { 16 },
            sample_format: if self.float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let wav = hound::WavWriter::create(&self.path, spec).map_err(|e| self.hound_error(e))?;
        Ok(Writer {
            wav,
            sample_rate: audio.sample_rate(),
            channels: audio.channels(),
        })
    }

    fn write(&mut self, audio: &Audio) -> Result<(), NodeError> {
        if self.writer.is_none() {
            self.writer = Some(self.open(audio)?);
        }
        let float = self.float;
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        if audio.sample_rate() != writer.sample_rate || audio.channels() != writer.channels {
            return Err(NodeError::InvalidInput {
                node: NAME,
                reason: format!(
                    "the file is {} Hz x {}, a chunk is {} Hz x {}",
                    writer.sample_rate,
                    writer.channels,
                    audio.sample_rate(),
                    audio.channels()
                ),
            });
        }
        let i16_direct = audio.samples().as_slice::<i16>().filter(|_| !float);
        let result = match i16_direct {
            Some(samples) => samples.iter().try_for_each(|&s| writer.wav.write_sample(s)),
            None => {
                let samples = interleaved_f32(audio);
                if float {
                    samples.iter().try_for_each(|&s| writer.wav.write_sample(s))
                } else {
                    samples
                        .iter()
                        .try_for_each(|&s| writer.wav.write_sample(f32_to_i16(s)))
                }
            }
        };
        result.map_err(|e| self.hound_error(e))
    }

    fn finalize(&mut self) -> Result<(), NodeError> {
        match self.writer.take() {
            Some(writer) => writer.wav.finalize().map_err(|e| self.hound_error(e)),
            None => Ok(()),
        }
    }
}

impl Node for WavSink {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let audio = expect_audio(NAME, input)?;
        self.write(&audio)?;
        out.emit(audio);
        Ok(())
    }

    fn flush(&mut self, _out: &mut Emitter) -> Result<(), NodeError> {
        self.finalize()
    }

    fn shutdown(&mut self) {
        // Nobody is left to hear about a failure here; flush reports it when it runs.
        let _ = self.finalize();
    }
}
