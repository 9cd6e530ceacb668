//! `audio.vad`: voice activity detection that emits one map per speech segment.
//!
//! The input (mixed down to mono) is cut into 16 ms frames. Each frame's energy is measured
//! against a noise floor (the minimum over the last 1.5 s, see [`noise_floor`]), and the
//! frame is voiced when:
//! - `method = "earshot"` (default): the `earshot` neural detector (a small convolutional +
//!   minGRU network on 40 mel bands, 256-sample frames at 16 kHz) scores it at least the
//!   threshold *and* its energy is at least a few dB over the floor. The energy test trims
//!   the network's slow decay after speech ends (its score stays high for 100-200 ms), so
//!   segment ends land on the last loud frame. Input must be 16 kHz (put `audio.resample`
//!   in front).
//! - `method = "energy"`: its energy is over the floor by a margin, with hysteresis (a
//!   higher margin to open a candidate than to stay in one). Any sample rate. Cheap and
//!   precise on clean recordings, but any loud non-speech sound counts.
//!
//! [`segmenter`] turns the frame decisions into segments (minimum speech, hangover, onset
//! look-back, maximum length). A segment is emitted when it ends, or at `flush` while still
//! open, as `{"start_s": float, "end_s": float, "audio": Audio}`: times in seconds of
//! stream time (the first chunk's timestamp plus the samples since), audio mono f32 at the
//! input rate, `pad_ms` wider on each side than the speech (within the stream and never
//! overlapping the previous segment). Chunks may have any size; the stream is taken to be
//! contiguous from its first chunk.
//!
//! # Events for barge-in
//!
//! Both are off by default, and then the output is segments only, as above.
//! - `events = true`: as soon as the segmenter confirms speech (its `min_speech_ms` of
//!   voiced frames are in), the node emits `{"event": "speech_start", "time_s": float}`,
//!   `time_s` being where the speech began (its onset, without padding); as soon as the
//!   hangover (`min_silence_ms`) has passed it emits `{"event": "speech_end", "time_s":
//!   float, "start_s": float}`, `time_s` being the end of the last voiced frame and
//!   `start_s` the same onset as the start event's. Each comes out of the `process` call
//!   whose input completed the deciding frame, before the segment map that follows (a
//!   speech_end comes right before its last segment). A segment cut at `max_segment_s` is
//!   not an end: the speech goes on. Speech still open at `flush` ends there (speech_end,
//!   then the segment); `interrupt` drops it silently.
//! - `probability = true`: after each input chunk's other outputs,
//!   `{"event": "probability", "time_s": float, "p": float}`: `time_s` is the chunk's start
//!   (stream time) and `p` in 0..=1 the highest frame probability among the frames the chunk
//!   completed (a chunk shorter than a frame may complete none: it repeats the last frame's
//!   `p`). For earshot `p` is the network's score (before the energy test). For energy it
//!   is a level, not a probability: the frame's margin over the noise floor divided by twice
//!   the margin that opens a candidate (6/9/12/15 dB by aggressiveness), clamped to 0..=1,
//!   so `p >= 0.5` exactly when the frame is loud enough to open one. Frames before the
//!   noise floor is known (the first one) or under -70 dBFS have `p = 0` in both methods.
//!
//! With either on, segment maps carry `"event": "segment"` as well, so a consumer branches
//! on the one key `event`.

mod event;
mod noise_floor;
mod segmenter;

use earshot::Detector;
use troupe_value::{Audio, Value};

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, Node, NodeError};
use crate::params::{ParamKind, ParamSpec, Params};

use self::event::ChunkScore;
use self::noise_floor::{NoiseFloor, energy_db};
use self::segmenter::{Change, Limits, Segmenter, Span};
use super::channel_mix::mix_to_mono;
use super::samples::{expect_audio, f32_to_i16, frames_to_ns, interleaved_f32, make_audio};

const NAME: &str = "audio.vad";
const METHODS: &[&str] = &["earshot", "energy"];
/// The only rate the earshot network takes, and its frame length there.
const EARSHOT_RATE: u32 = 16_000;
const EARSHOT_FRAME: usize = 256;
/// Frame length in milliseconds (256 samples at 16 kHz).
const FRAME_MS: u32 = 16;
/// How far back the noise floor looks.
const FLOOR_WINDOW_MS: u32 = 1500;
/// How far before its first voiced frame a segment may start (onset look-back).
const LOOKBACK_MS: u32 = 240;
/// Frames quieter than this (dBFS) are never speech, whatever the floor.
const MIN_SPEECH_DB: f32 = -70.0;

/// Per aggressiveness level 0..=3: earshot score threshold, energy margin over the floor
/// to open a candidate, and margin to stay voiced (also the earshot method's energy test).
const LEVELS: [(f32, f32, f32); 4] = [
    (0.4, 6.0, 3.0),
    (0.5, 9.0, 4.0),
    (0.6, 12.0, 5.0),
    (0.7, 15.0, 6.0),
];

/// The catalog entry.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Detects speech; emits {start_s, end_s, audio} per segment (earshot NN or energy); \
          optionally speech_start/speech_end/probability events for barge-in, every map then \
          keyed by \"event\".",
    is_source: false,
    params: &[
        ParamSpec {
            name: "method",
            kind: ParamKind::Choice(METHODS),
            default: Some("earshot"),
            doc: "earshot: neural detector refined by energy (16 kHz input only); energy: \
                  level over an adaptive noise floor with hysteresis (any rate).",
        },
        ParamSpec {
            name: "aggressiveness",
            kind: ParamKind::Int { min: 0, max: 3 },
            default: Some("1"),
            doc: "0..=3, higher rejects more: earshot threshold 0.4/0.5/0.6/0.7, energy \
                  margin over the noise floor 6/9/12/15 dB to open (3/4/5/6 dB to stay).",
        },
        ParamSpec {
            name: "min_speech_ms",
            kind: ParamKind::Int {
                min: 0,
                max: 3_600_000,
            },
            default: Some("150"),
            doc: "Voiced time a segment needs before it counts; shorter bursts are dropped.",
        },
        ParamSpec {
            name: "min_silence_ms",
            kind: ParamKind::Int {
                min: 0,
                max: 3_600_000,
            },
            default: Some("300"),
            doc: "Hangover: unvoiced time that ends a segment; shorter pauses are bridged.",
        },
        ParamSpec {
            name: "pad_ms",
            kind: ParamKind::Int {
                min: 0,
                max: 3_600_000,
            },
            default: Some("30"),
            doc: "Extra audio kept before and after each segment (at most min_silence_ms).",
        },
        ParamSpec {
            name: "max_segment_s",
            kind: ParamKind::Float,
            default: Some("30.0"),
            doc: "Segments are cut at this length (and go on in a new segment).",
        },
        ParamSpec {
            name: "events",
            kind: ParamKind::Bool,
            default: Some("false"),
            doc: "Also emit {event: speech_start, time_s} once speech is confirmed and \
                  {event: speech_end, time_s, start_s} once the hangover has passed, before \
                  the segment; segments then carry event: segment.",
        },
        ParamSpec {
            name: "probability",
            kind: ParamKind::Bool,
            default: Some("false"),
            doc: "Also emit {event: probability, time_s, p} per input chunk: the highest \
                  frame score in it (earshot), or for energy the margin over the noise floor \
                  / (2 x open margin), 0..=1.",
        },
    ],
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let earshot = params.choice("method", METHODS, Some("earshot"))? == "earshot";
    let level = params.int("aggressiveness", Some(1))?;
    let (threshold, open_db, stay_db) = usize::try_from(level)
        .ok()
        .and_then(|l| LEVELS.get(l))
        .copied()
        .ok_or_else(|| {
            params.out_of_range("aggressiveness", format!("must be 0..=3, got {level}"))
        })?;
    let ms = |name: &'static str, default: i64| -> Result<u32, NodeError> {
        let v = params.int(name, Some(default))?;
        u32::try_from(v)
            .ok()
            .filter(|v| *v <= 60_000)
            .ok_or_else(|| {
                params
                    .out_of_range(name, format!("must be 0..=60000, got {v}"))
                    .into()
            })
    };
    let min_speech_ms = ms("min_speech_ms", 150)?;
    let min_silence_ms = ms("min_silence_ms", 300)?.max(1);
    let pad_ms = ms("pad_ms", 30)?;
    if pad_ms > min_silence_ms {
        return Err(params
            .out_of_range(
                "pad_ms",
                format!("must not exceed min_silence_ms ({min_silence_ms}), got {pad_ms}"),
            )
            .into());
    }
    let max_segment_s = params.float("max_segment_s", Some(30.0))?;
    if !(0.1..=3600.0).contains(&max_segment_s) {
        return Err(params
            .out_of_range(
                "max_segment_s",
                format!("must be 0.1..=3600, got {max_segment_s}"),
            )
            .into());
    }
    let config = Config {
        events: params.bool("events", Some(false))?,
        probability: params.bool("probability", Some(false))?,
        earshot_threshold: earshot.then_some(threshold),
        open_db,
        stay_db,
        min_speech_ms,
        min_silence_ms,
        pad_ms,
        max_segment_ms: (max_segment_s * 1000.0) as u32,
    };
    Ok(Built::Node(Box::new(Vad {
        config,
        stream: None,
    })))
}

#[derive(Debug, Clone, Copy)]
struct Config {
    /// Emit speech_start and speech_end events.
    events: bool,
    /// Emit a probability event per chunk.
    probability: bool,
    /// `Some(threshold)` for the earshot method.
    earshot_threshold: Option<f32>,
    open_db: f32,
    stay_db: f32,
    min_speech_ms: u32,
    min_silence_ms: u32,
    pad_ms: u32,
    max_segment_ms: u32,
}

impl Config {
    /// Whether maps carry an `"event"` key.
    fn tagged(&self) -> bool {
        self.events || self.probability
    }
}

/// What the detector made of one frame.
struct Verdict {
    /// Speech, for the segmenter.
    voiced: bool,
    /// Loud enough to be part of an onset.
    active: bool,
    /// Speech probability (see the module docs).
    p: f32,
}

/// Finds speech segments in a stream.
pub(crate) struct Vad {
    config: Config,
    stream: Option<Stream>,
}

/// Detector state for one stream at one sample rate.
struct Stream {
    rate: u32,
    frame_len: usize,
    pad: u64,
    start_ns: u64,
    earshot: Option<(Box<Detector>, f32)>,
    /// Reused i16 copy of a frame for earshot.
    frame_i16: Vec<i16>,
    floor: NoiseFloor,
    segmenter: Segmenter,
    /// Mono samples from absolute sample index `history_start` on.
    history: Vec<f32>,
    history_start: u64,
    /// Samples received, and samples already cut into frames.
    received: u64,
    analysed: u64,
    /// End (sample) of the last emitted segment with its padding.
    last_emitted_end: u64,
    /// Probability of the chunk being fed.
    score: ChunkScore,
}

fn ms_to_frames(ms: u32) -> u64 {
    u64::from(ms.div_ceil(FRAME_MS))
}

impl Stream {
    fn new(config: &Config, audio: &Audio) -> Result<Stream, NodeError> {
        let rate = audio.sample_rate();
        let earshot = match config.earshot_threshold {
            Some(threshold) if rate == EARSHOT_RATE => Some((Detector::default_boxed(), threshold)),
            Some(_) => {
                return Err(NodeError::InvalidInput {
                    node: NAME,
                    reason: format!(
                        "method=earshot needs {EARSHOT_RATE} Hz audio, got {rate} Hz \
                         (put audio.resample with rate={EARSHOT_RATE} in front, or use \
                         method=energy)"
                    ),
                });
            }
            None => None,
        };
        let frame_len = if earshot.is_some() {
            EARSHOT_FRAME
        } else {
            ((u64::from(rate) * u64::from(FRAME_MS)).div_ceil(1000) as usize).max(1)
        };
        let limits = Limits {
            min_speech: ms_to_frames(config.min_speech_ms).max(1),
            min_silence: ms_to_frames(config.min_silence_ms).max(1),
            max_segment: ms_to_frames(config.max_segment_ms).max(1),
            lookback: ms_to_frames(LOOKBACK_MS) as usize,
        };
        Ok(Stream {
            rate,
            frame_len,
            pad: u64::from(config.pad_ms) * u64::from(rate) / 1000,
            start_ns: audio.timestamp_ns(),
            earshot,
            frame_i16: vec![0; EARSHOT_FRAME],
            floor: NoiseFloor::new(ms_to_frames(FLOOR_WINDOW_MS) as usize),
            segmenter: Segmenter::new(limits),
            history: Vec::new(),
            history_start: 0,
            received: 0,
            analysed: 0,
            last_emitted_end: 0,
            score: ChunkScore::default(),
        })
    }

    /// Adds mono samples and runs every whole frame now available.
    fn feed(&mut self, config: &Config, mono: &[f32], out: &mut Emitter) -> Result<(), NodeError> {
        let chunk_start = self.received;
        self.history
            .extend(mono.iter().map(|&s| if s.is_finite() { s } else { 0.0 }));
        self.received += mono.len() as u64;
        let frame_len = self.frame_len as u64;
        while self.analysed + frame_len <= self.received {
            let at = (self.analysed - self.history_start) as usize;
            let verdict = self.classify(config, at);
            self.analysed += frame_len;
            self.score.frame(verdict.p);
            if let Some(change) = self.segmenter.push(verdict.voiced, verdict.active) {
                self.report(config, change, out)?;
            }
        }
        let p = self.score.take();
        if config.probability {
            out.emit(event::probability(self.seconds(chunk_start), p));
        }
        self.trim_history();
        Ok(())
    }

    /// What the frame at `history[at..]` is.
    fn classify(&mut self, config: &Config, at: usize) -> Verdict {
        let frame = &self.history[at..at + self.frame_len];
        let energy = energy_db(frame);
        let floor = self.floor.level();
        self.floor.push(energy);
        let Some(floor) = floor else {
            return Verdict {
                voiced: false,
                active: false,
                p: 0.0,
            };
        };
        let audible = energy >= MIN_SPEECH_DB;
        let loud = |margin: f32| audible && energy >= floor + margin;
        let active = loud(config.stay_db);
        let (voiced, p) = match &mut self.earshot {
            Some((detector, threshold)) => {
                for (dst, &src) in self.frame_i16.iter_mut().zip(frame) {
                    *dst = f32_to_i16(src);
                }
                let score = detector.predict_i16(&self.frame_i16);
                (active && score >= *threshold, score)
            }
            None => {
                let voiced = if self.segmenter.in_speech() {
                    active
                } else {
                    loud(config.open_db)
                };
                (
                    voiced,
                    event::energy_probability(energy - floor, config.open_db),
                )
            }
        };
        Verdict {
            voiced,
            active,
            p: if audible { p } else { 0.0 },
        }
    }

    /// Stream time in seconds of absolute sample index `sample`.
    fn seconds(&self, sample: u64) -> f64 {
        self.start_ns as f64 / 1e9 + sample as f64 / f64::from(self.rate)
    }

    /// Emits what a change of the segmenter means: events (when on) and segments.
    fn report(
        &mut self,
        config: &Config,
        change: Change,
        out: &mut Emitter,
    ) -> Result<(), NodeError> {
        let frame_len = self.frame_len as u64;
        match change {
            Change::Started { start } => {
                if config.events {
                    out.emit(event::speech_start(self.seconds(start * frame_len)));
                }
                Ok(())
            }
            Change::Ended {
                segment,
                speech_start,
            } => {
                if config.events {
                    out.emit(event::speech_end(
                        self.seconds(segment.end * frame_len),
                        self.seconds(speech_start * frame_len),
                    ));
                }
                self.emit(config, segment, out)
            }
            Change::Cut(segment) => self.emit(config, segment, out),
        }
    }

    /// Emits the segment `span` (in frames) with its padding and audio.
    fn emit(&mut self, config: &Config, span: Span, out: &mut Emitter) -> Result<(), NodeError> {
        let frame_len = self.frame_len as u64;
        let start = (span.start * frame_len)
            .saturating_sub(self.pad)
            .max(self.last_emitted_end)
            .max(self.history_start);
        let end = (span.end * frame_len + self.pad).min(self.received);
        if end <= start {
            return Ok(());
        }
        self.last_emitted_end = end;
        let from = (start - self.history_start) as usize;
        let to = (end - self.history_start) as usize;
        let samples = self.history[from..to].to_vec();
        let start_ns = self.start_ns.saturating_add(frames_to_ns(start, self.rate));
        let tag = config
            .tagged()
            .then(|| (event::KEY, Value::from(event::SEGMENT)));
        let segment = Value::map(tag.into_iter().chain([
            ("start_s", Value::Float(self.seconds(start))),
            ("end_s", Value::Float(self.seconds(end))),
            (
                "audio",
                Value::Audio(make_audio(NAME, samples, self.rate, 1, start_ns)?),
            ),
        ]));
        out.emit(segment);
        Ok(())
    }

    /// Drops history no future segment can reach (amortised: only in large steps).
    fn trim_history(&mut self) {
        let keep_from = (self.segmenter.earliest_needed() * self.frame_len as u64)
            .saturating_sub(self.pad)
            .max(self.history_start);
        let drop = (keep_from - self.history_start) as usize;
        if drop >= 16_384 && drop * 2 >= self.history.len() {
            self.history.drain(..drop);
            self.history_start = keep_from;
        }
    }

    fn finish(&mut self, config: &Config, out: &mut Emitter) -> Result<(), NodeError> {
        match self.segmenter.finish() {
            Some(change) => self.report(config, change, out),
            None => Ok(()),
        }
    }
}

impl Node for Vad {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let audio = expect_audio(NAME, input)?;
        let stream = match &mut self.stream {
            Some(stream) if stream.rate != audio.sample_rate() => {
                return Err(NodeError::InvalidInput {
                    node: NAME,
                    reason: format!(
                        "the sample rate changed mid-stream from {} Hz to {} Hz",
                        stream.rate,
                        audio.sample_rate()
                    ),
                });
            }
            Some(stream) => stream,
            None => self.stream.insert(Stream::new(&self.config, &audio)?),
        };
        let samples = interleaved_f32(&audio);
        let channels = usize::from(audio.channels());
        if channels == 1 {
            stream.feed(&self.config, &samples, out)
        } else {
            stream.feed(&self.config, &mix_to_mono(&samples, channels), out)
        }
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        match self.stream.take() {
            Some(mut stream) => stream.finish(&self.config, out),
            None => Ok(()),
        }
    }

    fn interrupt(&mut self) {
        self.stream = None;
    }
}

#[cfg(test)]
mod tests;
