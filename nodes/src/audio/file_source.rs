//! `audio.file_source`: decodes an audio file into f32 chunks.
//!
//! WAV goes through `hound` (8/16/24/32-bit integer PCM and 32-bit float); MP3, FLAC,
//! Ogg/Vorbis and AAC in MP4/M4A go through `symphonia`. Anything else (Opus among them: no
//! maintained pure-Rust decoder) is refused with a format error that names what is
//! supported. A file is read as WAV when its name ends in `.wav` or
//! `.wave` or when it starts with a RIFF header, and handed to symphonia's probe otherwise.
//! Chunks carry the time of their first frame, counted from 0 at the start of the file, and
//! all chunks but the last hold `chunk_frames` frames. A WAV cut short (its header promises
//! more data than it holds) ends where its data ends; a corrupt MP3/OGG/FLAC packet is
//! skipped, as players do. A stream whose rate or channel count changes mid-way is refused
//! with a format error when the change comes. The file is opened once: a FIFO or
//! `/dev/stdin` is read as it comes (no seeking), and a WAV's length is what the file holds
//! when that is less than its header says. An M4A read that way must have its index
//! (`moov`) before its samples, as "fast start" files do. Symphonia does not read MP4 edit
//! lists, so an AAC file keeps its encoder's priming (1024 frames from ffmpeg, 2112 from
//! Apple's encoders) at its start: its audio comes that much later than in a player.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, ReadOnlySource};
use symphonia::core::meta::MetadataOptions;

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, NodeError, Source, SourceState};
use crate::params::{ParamKind, ParamSpec, Params};

use super::samples::{frames_to_ns, make_audio};

const NAME: &str = "audio.file_source";
/// What a file may hold, for errors about what it holds instead.
const SUPPORTED: &str = "supported: WAV, MP3, FLAC, Ogg Vorbis, AAC (M4A/MP4)";
/// Largest chunk (2^24 frames, about 6 minutes at 48 kHz).
const MAX_CHUNK_FRAMES: u32 = 1 << 24;

/// The catalog entry.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Decodes a WAV, MP3, FLAC, Ogg/Vorbis or AAC (M4A/MP4) file into f32 audio chunks.",
    is_source: true,
    params: &[
        ParamSpec {
            name: "path",
            kind: ParamKind::Path,
            default: None,
            doc: "The file to read (.wav, .mp3, .flac, .ogg, .m4a, .mp4); a FIFO or /dev/stdin is \
                  read as it comes.",
        },
        ParamSpec {
            name: "chunk_frames",
            kind: ParamKind::Int {
                min: 1,
                max: MAX_CHUNK_FRAMES as i64,
            },
            default: Some("1024"),
            doc: "Frames per emitted chunk, at most 2^24 (the last chunk may be shorter).",
        },
    ],
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let path = params.str("path", None)?;
    let chunk_frames = params.positive_u32("chunk_frames", Some(1024))?;
    if chunk_frames > MAX_CHUNK_FRAMES {
        return Err(params
            .out_of_range(
                "chunk_frames",
                format!("must be at most {MAX_CHUNK_FRAMES}, got {chunk_frames}"),
            )
            .into());
    }
    let chunk_frames = chunk_frames as usize;
    Ok(Built::Source(Box::new(FileSource::open(
        Path::new(&path),
        chunk_frames,
    )?)))
}

/// Reads audio from a file, `chunk_frames` frames at a time.
pub(crate) struct FileSource {
    decoder: Decoder,
    path: String,
    sample_rate: u32,
    channels: u16,
    chunk_frames: usize,
    frames_emitted: u64,
    total_frames: Option<u64>,
    /// Decoded samples not yet emitted (symphonia decodes whole packets).
    pending: Vec<f32>,
    done: bool,
}

/// What the file is read through: the file itself when it can seek (a regular file), else
/// (a pipe, a FIFO, `/dev/stdin`) a stream that starts with the bytes already looked at.
enum Input {
    Seekable(File),
    Stream(Box<dyn Read + Send + Sync>),
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Input::Seekable(file) => file.read(buf),
            Input::Stream(stream) => stream.read(buf),
        }
    }
}

enum Decoder {
    Wav(Box<hound::WavReader<BufReader<Input>>>),
    Symphonia {
        format: Box<dyn FormatReader>,
        decoder: Box<dyn AudioDecoder>,
        track_id: u32,
        /// Reused buffer for one decoded packet.
        scratch: Vec<f32>,
    },
}

impl FileSource {
    /// Opens `path` and reads its format, rate, channels and length.
    pub(crate) fn open(path: &Path, chunk_frames: usize) -> Result<FileSource, NodeError> {
        let shown = path.display().to_string();
        let io_err = |source| NodeError::Io {
            node: NAME,
            path: shown.clone(),
            source,
        };
        // Opened once: a FIFO or stdin cannot be opened twice.
        let mut file = File::open(path).map_err(io_err)?;
        let mut magic = [0u8; 4];
        let got = read_up_to(&mut file, &mut magic).map_err(io_err)?;
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let file = if regular {
            file.seek(SeekFrom::Start(0)).map_err(io_err)?;
            Input::Seekable(file)
        } else {
            Input::Stream(Box::new(Cursor::new(magic[..got].to_vec()).chain(file)))
        };
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let is_wav = matches!(ext.as_deref(), Some("wav" | "wave"))
            || (got == 4 && (&magic == b"RIFF" || &magic == b"RF64"));
        if is_wav {
            open_wav(file, shown, chunk_frames)
        } else {
            open_symphonia(file, ext.as_deref(), shown, chunk_frames)
        }
    }

    /// Decodes more samples into `pending`; false at end of file.
    fn decode_more(&mut self) -> Result<bool, NodeError> {
        let want = self.chunk_frames * usize::from(self.channels);
        let path = &self.path;
        match &mut self.decoder {
            Decoder::Wav(reader) => {
                let spec = reader.spec();
                let before = self.pending.len();
                let result = match spec.sample_format {
                    hound::SampleFormat::Float => reader
                        .samples::<f32>()
                        .take(want)
                        .try_for_each(|s| s.map(|s| self.pending.push(s))),
                    hound::SampleFormat::Int => {
                        let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
                        reader
                            .samples::<i32>()
                            .take(want)
                            .try_for_each(|s| s.map(|s| self.pending.push(s as f32 * scale)))
                    }
                };
                let read = self.pending.len() - before;
                match result {
                    Ok(()) => Ok(read > 0),
                    // A recording cut short (its header promises more): keep what is there.
                    Err(hound::Error::IoError(e)) if is_short_read(&e) => Ok(read > 0),
                    Err(e) => Err(hound_error(path, e)),
                }
            }
            Decoder::Symphonia {
                format,
                decoder,
                track_id,
                scratch,
            } => loop {
                let packet = match format.next_packet() {
                    Ok(Some(packet)) => packet,
                    Ok(None) => return Ok(false),
                    Err(SymphoniaError::IoError(e))
                        if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                    {
                        return Ok(false);
                    }
                    Err(SymphoniaError::IoError(source)) => {
                        return Err(NodeError::Io {
                            node: NAME,
                            path: path.clone(),
                            source,
                        });
                    }
                    Err(e) => return Err(format_error(path, e)),
                };
                if packet.track_id != *track_id {
                    continue;
                }
                let decoded = match decoder.decode(&packet) {
                    Ok(decoded) => decoded,
                    // A corrupt packet: skip it, as players do.
                    Err(SymphoniaError::DecodeError(_)) => continue,
                    Err(e) => return Err(format_error(path, e)),
                };
                let spec = decoded.spec();
                if spec.rate() != self.sample_rate
                    || spec.channels().count() != usize::from(self.channels)
                {
                    let (rate, channels) = (spec.rate(), spec.channels().count());
                    return Err(format_error(
                        path,
                        format!(
                            "the stream changes from {} Hz x {} to {rate} Hz x {channels} mid-way",
                            self.sample_rate, self.channels
                        ),
                    ));
                }
                decoded.copy_to_vec_interleaved(scratch);
                self.pending.extend_from_slice(scratch);
                if !scratch.is_empty() {
                    return Ok(true);
                }
            },
        }
    }
}

impl Source for FileSource {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn pull(&mut self, out: &mut Emitter) -> Result<SourceState, NodeError> {
        if self.done {
            return Ok(SourceState::Done);
        }
        let channels = usize::from(self.channels);
        let want = self.chunk_frames * channels;
        while self.pending.len() < want {
            if !self.decode_more()? {
                self.done = true;
                break;
            }
        }
        let take = self.pending.len().min(want) / channels * channels;
        if take > 0 {
            let rest = self.pending.split_off(take);
            let samples = std::mem::replace(&mut self.pending, rest);
            let timestamp_ns = frames_to_ns(self.frames_emitted, self.sample_rate);
            self.frames_emitted += (take / channels) as u64;
            out.emit(make_audio(
                NAME,
                samples,
                self.sample_rate,
                self.channels,
                timestamp_ns,
            )?);
        }
        Ok(if self.done {
            SourceState::Done
        } else {
            SourceState::More
        })
    }

    fn media_seconds(&self) -> Option<f64> {
        self.total_frames
            .map(|frames| frames as f64 / f64::from(self.sample_rate))
    }
}

fn format_error(path: &str, reason: impl std::fmt::Display) -> NodeError {
    NodeError::Format {
        node: NAME,
        reason: format!("{path}: {reason}"),
    }
}

/// A hound error as a node error: a file that ends early is a format error.
fn hound_error(path: &str, e: hound::Error) -> NodeError {
    match e {
        hound::Error::IoError(e) if is_short_read(&e) => format_error(path, "the file ends early"),
        hound::Error::IoError(source) => NodeError::Io {
            node: NAME,
            path: path.to_owned(),
            source,
        },
        e => format_error(path, e),
    }
}

/// Whether hound hit the end of the file early (hound 3.5 reports most short reads as
/// `ErrorKind::Other` with this text, some as `UnexpectedEof`).
fn is_short_read(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::UnexpectedEof || e.to_string() == "Failed to read enough bytes."
}

/// The shortest WAV header (RIFF, fmt and data chunk headers): what a file's size is
/// bounded by before its samples.
const WAV_HEADER_LEN: u64 = 44;

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

fn open_wav(file: Input, path: String, chunk_frames: usize) -> Result<FileSource, NodeError> {
    // A file cut short says more in its header than it holds: its size bounds the length.
    let file_len = match &file {
        Input::Seekable(file) => file.metadata().ok().map(|m| m.len()),
        Input::Stream(_) => None,
    };
    let reader = hound::WavReader::new(BufReader::new(file)).map_err(|e| hound_error(&path, e))?;
    let spec = reader.spec();
    if spec.sample_rate == 0 || spec.channels == 0 {
        return Err(format_error(&path, "zero sample rate or channel count"));
    }
    let supported = match spec.sample_format {
        hound::SampleFormat::Float => spec.bits_per_sample == 32,
        hound::SampleFormat::Int => (1..=32).contains(&spec.bits_per_sample),
    };
    if !supported {
        return Err(format_error(
            &path,
            format!(
                "unsupported {:?} samples of {} bits",
                spec.sample_format, spec.bits_per_sample
            ),
        ));
    }
    let block = u64::from(spec.channels) * u64::from(spec.bits_per_sample.div_ceil(8));
    let held = file_len.map(|len| len.saturating_sub(WAV_HEADER_LEN) / block.max(1));
    let total_frames = Some(match held {
        Some(held) => u64::from(reader.duration()).min(held),
        None => u64::from(reader.duration()),
    });
    Ok(FileSource {
        decoder: Decoder::Wav(Box::new(reader)),
        path,
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        chunk_frames,
        frames_emitted: 0,
        total_frames,
        pending: Vec::new(),
        done: false,
    })
}

fn open_symphonia(
    file: Input,
    ext: Option<&str>,
    path: String,
    chunk_frames: usize,
) -> Result<FileSource, NodeError> {
    let source: Box<dyn MediaSource> = match file {
        Input::Seekable(file) => Box::new(file),
        Input::Stream(stream) => Box::new(ReadOnlySource::new(stream)),
    };
    let mss = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = ext {
        hint.with_extension(ext);
    }
    let format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| {
            format_error(
                &path,
                format!("not a supported audio file ({e}); {SUPPORTED}"),
            )
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| format_error(&path, "no audio track"))?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| format_error(&path, "the audio track has no codec parameters"))?;
    let decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| {
            let codec = match params.codec {
                CODEC_ID_OPUS => "Opus audio".to_owned(),
                codec => format!("its audio codec ({codec})"),
            };
            format_error(
                &path,
                format!("{codec} is not supported ({e}); {SUPPORTED}"),
            )
        })?;
    let sample_rate = params
        .sample_rate
        .filter(|r| *r > 0)
        .ok_or_else(|| format_error(&path, "unknown sample rate"))?;
    let channels = params
        .channels
        .as_ref()
        .map(|c| c.count())
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c > 0)
        .ok_or_else(|| format_error(&path, "unknown channel count"))?;
    let track_id = track.id;
    let total_frames = track.num_frames;
    Ok(FileSource {
        decoder: Decoder::Symphonia {
            format,
            decoder,
            track_id,
            scratch: Vec::new(),
        },
        path,
        sample_rate,
        channels,
        chunk_frames,
        frames_emitted: 0,
        total_frames,
        pending: Vec::new(),
        done: false,
    })
}
