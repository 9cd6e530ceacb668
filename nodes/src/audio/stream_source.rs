//! `audio.stream_source`: live audio from a FIFO, stdin or a file, chunk by chunk as it
//! arrives.
//!
//! The input is raw PCM (`format = "s16le"` or `"f32le"`, with `sample_rate` and
//! `channels`) or a WAV stream (`format = "wav"`: rate, channels and sample layout come
//! from its header, read from the stream without seeking; its length is not needed). Each
//! pull blocks until `chunk_ms` of audio has come and emits it as an f32 chunk stamped with
//! stream time from 0; at the end of the stream the bytes left make a last, shorter chunk
//! (a part of a frame is dropped) and the source is done. The reading is
//! [`PcmStream`], which other code can feed from any `Read`.
//!
//! `path` may be a regular file, a FIFO, `-` or `/dev/stdin`. Building the node only checks
//! that the path exists; it is opened at the first pull, because opening a FIFO waits for
//! its writer and that wait belongs to the source's turn, not to the building of the
//! pipeline.
//!
//! `realtime = true` paces the output to real time: a chunk is not emitted before its
//! media time has passed since the first chunk was (measured on the monotonic clock, by
//! sleeping, never spinning), for playing a file as if it were live. With `realtime =
//! false` chunks go as fast as the data comes: the natural mode for a live FIFO, which sets
//! its own pace.
//!
//! A pull blocks (in `read`, or in the pacing sleep): run the source where blocking is
//! allowed (its own thread or arbiter).

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, NodeError, Source, SourceState};
use crate::params::{ParamError, ParamKind, ParamSpec, Params};

use super::pcm_stream::{
    ChunkSize, MAX_CHANNELS, MAX_SAMPLE_RATE, PcmError, PcmSpec, PcmStream, SampleFormat,
};

const NAME: &str = "audio.stream_source";
const FORMATS: &[&str] = &["s16le", "f32le", "wav"];
/// The longest chunk asked for, in milliseconds.
const MAX_CHUNK_MS: u32 = 10_000;

/// The catalog entry.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Reads live raw PCM (s16le/f32le) or a WAV stream from a FIFO, stdin (-) or a file, \
          emitting f32 chunks as they arrive; optionally paced to real time.",
    is_source: true,
    params: &[
        ParamSpec {
            name: "path",
            kind: ParamKind::Path,
            default: None,
            doc: "What to read: a FIFO, a file, or - (also /dev/stdin) for standard input.",
        },
        ParamSpec {
            name: "format",
            kind: ParamKind::Choice(FORMATS),
            default: Some("s16le"),
            doc: "s16le or f32le: raw interleaved samples; wav: a WAV stream (its header \
                  gives rate, channels and layout).",
        },
        ParamSpec {
            name: "sample_rate",
            kind: ParamKind::Int {
                min: 1,
                max: MAX_SAMPLE_RATE as i64,
            },
            default: Some("16000"),
            doc: "Frames per second of raw PCM (not with format=wav).",
        },
        ParamSpec {
            name: "channels",
            kind: ParamKind::Int {
                min: 1,
                max: MAX_CHANNELS as i64,
            },
            default: Some("1"),
            doc: "Interleaved channels of raw PCM (not with format=wav).",
        },
        ParamSpec {
            name: "chunk_ms",
            kind: ParamKind::Int {
                min: 1,
                max: MAX_CHUNK_MS as i64,
            },
            default: Some("20"),
            doc: "Milliseconds per emitted chunk (the last may be shorter).",
        },
        ParamSpec {
            name: "realtime",
            kind: ParamKind::Bool,
            default: Some("false"),
            doc: "Emit no chunk before its media time since the first chunk (to play a file \
                  as if live); false: as fast as data comes.",
        },
    ],
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let path = params.str("path", None)?;
    let (layout, chunk, realtime) = configure(params)?;
    let input = if path == "-" || path == "/dev/stdin" {
        Input::Stdin
    } else {
        let path = PathBuf::from(path);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                return Err(params
                    .out_of_range("path", format!("{} is a directory", path.display()))
                    .into());
            }
            Ok(_) => Input::Path(path),
            Err(source) => {
                return Err(NodeError::Io {
                    node: NAME,
                    path: path.display().to_string(),
                    source,
                });
            }
        }
    };
    Ok(Built::Source(Box::new(StreamSource::new(
        input, layout, chunk, realtime,
    ))))
}

/// An `audio.stream_source` with `params` (its `path` ignored) that reads `reader` instead:
/// how a network ingress feeds the bytes a client sends into a pipeline.
///
/// # Errors
/// The parameters' errors, as for the node.
pub fn stream_source_reading(
    reader: Box<dyn Read + Send>,
    params: troupe_value::Map,
) -> Result<Box<dyn Source>, NodeError> {
    let params = Params::new(NAME, params);
    let (layout, chunk, realtime) = configure(&params)?;
    Ok(Box::new(StreamSource::new(
        Input::Reader(reader),
        layout,
        chunk,
        realtime,
    )))
}

/// The layout, chunk size and pacing `params` ask for.
fn configure(params: &Params) -> Result<(Layout, ChunkSize, bool), NodeError> {
    let chunk_ms = params.int_within("chunk_ms", Some(20), 1, MAX_CHUNK_MS)?;
    let chunk = ChunkSize::Millis(chunk_ms);
    let layout = match params.choice("format", FORMATS, Some("s16le"))? {
        "wav" => {
            for param in ["sample_rate", "channels"] {
                if params.raw(param).is_some() {
                    return Err(params
                        .out_of_range(param, "comes from the WAV header with format=wav")
                        .into());
                }
            }
            Layout::Wav
        }
        raw => {
            let format = if raw == "f32le" {
                SampleFormat::F32Le
            } else {
                SampleFormat::S16Le
            };
            let spec = raw_spec(params, format)?;
            spec.chunk_frames(chunk)
                .map_err(|e| params.out_of_range("chunk_ms", e.to_string()))?;
            Layout::Raw(spec)
        }
    };
    Ok((layout, chunk, params.bool("realtime", Some(false))?))
}

/// The raw PCM spec the parameters give.
fn raw_spec(params: &Params, format: SampleFormat) -> Result<PcmSpec, ParamError> {
    let sample_rate = params.int_within("sample_rate", Some(16_000), 1, MAX_SAMPLE_RATE)?;
    let channels = params.int_within("channels", Some(1), 1, MAX_CHANNELS)?;
    Ok(PcmSpec {
        format,
        sample_rate,
        channels,
    })
}

/// Where the bytes come from.
enum Input {
    Stdin,
    Path(PathBuf),
    /// Given by the caller ([`stream_source_reading`]).
    Reader(Box<dyn Read + Send>),
}

impl Input {
    fn shown(&self) -> String {
        match self {
            Input::Stdin => "-".to_owned(),
            Input::Path(path) => path.display().to_string(),
            Input::Reader(_) => "the stream".to_owned(),
        }
    }

    /// Opens it: for a FIFO, waits for a writer.
    fn open(self) -> Result<Box<dyn Read + Send>, NodeError> {
        match self {
            Input::Stdin => Ok(Box::new(std::io::stdin())),
            Input::Reader(reader) => Ok(reader),
            Input::Path(path) => match File::open(&path) {
                Ok(file) => Ok(Box::new(file)),
                Err(source) => Err(NodeError::Io {
                    node: NAME,
                    path: path.display().to_string(),
                    source,
                }),
            },
        }
    }
}

/// How the bytes are laid out.
#[derive(Debug, Clone, Copy)]
enum Layout {
    Raw(PcmSpec),
    Wav,
}

enum State {
    /// Not opened yet (the first pull opens it).
    Unopened,
    Reading {
        stream: PcmStream<Box<dyn Read + Send>>,
        /// When the first chunk went out (for `realtime`).
        first_out: Option<Instant>,
    },
    Done,
}

/// Reads a live PCM or WAV stream, one chunk per pull.
pub(crate) struct StreamSource {
    /// Taken by the first pull.
    input: Option<Input>,
    /// What `input` is, for errors.
    shown: String,
    layout: Layout,
    chunk: ChunkSize,
    realtime: bool,
    state: State,
}

impl StreamSource {
    /// A source that opens `input` at its first pull.
    fn new(input: Input, layout: Layout, chunk: ChunkSize, realtime: bool) -> StreamSource {
        StreamSource {
            shown: input.shown(),
            input: Some(input),
            layout,
            chunk,
            realtime,
            state: State::Unopened,
        }
    }

    fn error(&self, e: PcmError) -> NodeError {
        match e {
            PcmError::Io(source) => NodeError::Io {
                node: NAME,
                path: self.shown.clone(),
                source,
            },
            e => NodeError::Format {
                node: NAME,
                reason: format!("{}: {e}", self.shown),
            },
        }
    }

    fn open(&mut self) -> Result<PcmStream<Box<dyn Read + Send>>, NodeError> {
        let Some(input) = self.input.take() else {
            return Err(NodeError::InvalidInput {
                node: NAME,
                reason: format!("{}: opened twice", self.shown),
            });
        };
        let reader = input.open()?;
        match self.layout {
            Layout::Raw(spec) => PcmStream::raw(reader, spec, self.chunk),
            Layout::Wav => PcmStream::wav(reader, self.chunk),
        }
        .map_err(|e| self.error(e))
    }
}

impl Source for StreamSource {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn is_live(&self) -> bool {
        true
    }

    fn pull(&mut self, out: &mut Emitter) -> Result<SourceState, NodeError> {
        if let State::Unopened = self.state {
            let stream = self.open()?;
            self.state = State::Reading {
                stream,
                first_out: None,
            };
        }
        let State::Reading { stream, first_out } = &mut self.state else {
            return Ok(SourceState::Done);
        };
        let chunk = match stream.next_chunk() {
            Ok(chunk) => chunk,
            Err(e) => {
                self.state = State::Done;
                return Err(self.error(e));
            }
        };
        let finished = stream.is_finished();
        if let Some(chunk) = chunk {
            if self.realtime {
                let first = *first_out.get_or_insert_with(Instant::now);
                let due = first + Duration::from_nanos(chunk.timestamp_ns());
                // Sleeps until then; a late chunk goes at once.
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            out.emit(chunk);
        }
        if finished {
            self.state = State::Done;
            return Ok(SourceState::Done);
        }
        Ok(SourceState::More)
    }
}
