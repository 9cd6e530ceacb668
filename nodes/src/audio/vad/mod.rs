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

mod noise_floor;
mod segmenter;

use earshot::Detector;
use troupe_value::{Audio, Value};

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, Node, NodeError};
use crate::params::{ParamKind, ParamSpec, Params};

use self::noise_floor::{NoiseFloor, energy_db};
use self::segmenter::{Limits, Segmenter, Span};
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
    doc: "Detects speech; emits {start_s, end_s, audio} per segment (earshot NN or energy).",
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
    /// `Some(threshold)` for the earshot method.
    earshot_threshold: Option<f32>,
    open_db: f32,
    stay_db: f32,
    min_speech_ms: u32,
    min_silence_ms: u32,
    pad_ms: u32,
    max_segment_ms: u32,
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
        })
    }

    /// Adds mono samples and runs every whole frame now available.
    fn feed(&mut self, config: &Config, mono: &[f32], out: &mut Emitter) -> Result<(), NodeError> {
        self.history
            .extend(mono.iter().map(|&s| if s.is_finite() { s } else { 0.0 }));
        self.received += mono.len() as u64;
        let frame_len = self.frame_len as u64;
        while self.analysed + frame_len <= self.received {
            let at = (self.analysed - self.history_start) as usize;
            let voiced_active = self.classify(config, at);
            self.analysed += frame_len;
            if let Some(span) = self.segmenter.push(voiced_active.0, voiced_active.1) {
                self.emit(span, out)?;
            }
        }
        self.trim_history();
        Ok(())
    }

    /// Whether the frame at `history[at..]` is voiced, and whether it is loud enough to be
    /// part of an onset.
    fn classify(&mut self, config: &Config, at: usize) -> (bool, bool) {
        let frame = &self.history[at..at + self.frame_len];
        let energy = energy_db(frame);
        let floor = self.floor.level();
        self.floor.push(energy);
        let Some(floor) = floor else {
            return (false, false);
        };
        let loud = |margin: f32| energy >= MIN_SPEECH_DB && energy >= floor + margin;
        let active = loud(config.stay_db);
        let voiced = match &mut self.earshot {
            Some((detector, threshold)) => {
                for (dst, &src) in self.frame_i16.iter_mut().zip(frame) {
                    *dst = f32_to_i16(src);
                }
                let score = detector.predict_i16(&self.frame_i16);
                active && score >= *threshold
            }
            None if self.segmenter.in_speech() => active,
            None => loud(config.open_db),
        };
        (voiced, active)
    }

    /// Emits the segment `span` (in frames) with its padding and audio.
    fn emit(&mut self, span: Span, out: &mut Emitter) -> Result<(), NodeError> {
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
        let seconds =
            |sample: u64| self.start_ns as f64 / 1e9 + sample as f64 / f64::from(self.rate);
        let segment = Value::map([
            ("start_s", Value::Float(seconds(start))),
            ("end_s", Value::Float(seconds(end))),
            (
                "audio",
                Value::Audio(make_audio(NAME, samples, self.rate, 1, start_ns)?),
            ),
        ]);
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

    fn finish(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        if let Some(span) = self.segmenter.finish() {
            self.emit(span, out)?;
        }
        Ok(())
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
            Some(mut stream) => stream.finish(out),
            None => Ok(()),
        }
    }

    fn interrupt(&mut self) {
        self.stream = None;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{chunks, node, run};
    use super::*;

    /// Where [`bursts`] has sound, in seconds.
    const BURSTS: [(f32, f32); 2] = [(0.5, 1.5), (2.0, 3.9)];

    /// 4 s at `rate` of faint noise with 300 Hz tone bursts at `BURSTS`, modulated at 4 Hz
    /// down to silence (as syllables are).
    fn bursts(rate: u32) -> Vec<f32> {
        let mut seed = 1u32;
        (0..4 * rate as usize)
            .map(|i| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                let t = i as f32 / rate as f32;
                let tone = match BURSTS.iter().find(|(a, b)| (*a..*b).contains(&t)) {
                    Some((start, _)) => {
                        let syllable =
                            0.5 - 0.5 * (std::f32::consts::TAU * 4.0 * (t - start)).cos();
                        0.3 * syllable * (std::f32::consts::TAU * 300.0 * t).sin()
                    }
                    None => 0.0,
                };
                0.002 * noise + tone
            })
            .collect()
    }

    fn spans(values: &[Value]) -> Vec<(f64, f64)> {
        values
            .iter()
            .map(|v| {
                let start = v.get("start_s").and_then(Value::as_float).expect("start");
                let end = v.get("end_s").and_then(Value::as_float).expect("end");
                (start, end)
            })
            .collect()
    }

    /// Asserts that `found` matches `want` (seconds) within 20 ms.
    fn assert_near(found: &[(f64, f64)], want: &[(f64, f64)]) {
        assert_eq!(found.len(), want.len(), "{found:?}");
        for ((s, e), (ws, we)) in found.iter().zip(want) {
            assert!(
                (s - ws).abs() < 0.02 && (e - we).abs() < 0.02,
                "{found:?} != {want:?}"
            );
        }
    }

    fn energy(extra: &[(&str, Value)]) -> Box<dyn Node> {
        let mut params = vec![("method", Value::from("energy")), ("pad_ms", Value::Int(0))];
        params.extend(extra.iter().cloned());
        node(NAME, &params)
    }

    #[test]
    fn chunk_sizes_do_not_matter() {
        let input = bursts(16_000);
        let whole = run(
            energy(&[]).as_mut(),
            chunks(&input, 16_000, 1, &[64_000], 0),
        );
        let odd = run(
            energy(&[]).as_mut(),
            chunks(&input, 16_000, 1, &[1, 100, 255, 3_333], 0),
        );
        assert_near(&spans(&whole), &[(0.5, 1.5), (2.0, 3.9)]);
        assert_eq!(whole, odd);
    }

    #[test]
    fn padding_stereo_other_rates_and_timestamps() {
        // 44.1 kHz stereo, starting at t = 10 s, 100 ms of padding.
        let mono = bursts(44_100);
        let stereo: Vec<f32> = mono.iter().flat_map(|&s| [s, s]).collect();
        let out = run(
            energy(&[("pad_ms", Value::Int(100))]).as_mut(),
            chunks(&stereo, 44_100, 2, &[4410], 10_000_000_000),
        );
        let found = spans(&out);
        assert_near(&found, &[(10.4, 11.6), (11.9, 14.0)]);
        let audio = out[0]
            .get("audio")
            .and_then(Value::as_audio)
            .expect("audio");
        assert_eq!((audio.channels(), audio.sample_rate()), (1, 44_100));
        assert_eq!(audio.timestamp_ns(), (found[0].0 * 1e9).round() as u64);
        let frames = ((found[0].1 - found[0].0) * 44_100.0).round() as usize;
        assert_eq!(audio.frames(), frames);
    }

    #[test]
    fn flush_closes_an_open_segment_and_interrupt_forgets_it() {
        let input = &bursts(16_000)[..16_000 * 3];
        let out = run(energy(&[]).as_mut(), chunks(input, 16_000, 1, &[1000], 0));
        assert_near(&spans(&out), &[(0.5, 1.5), (2.0, 3.0)]);

        let mut vad = energy(&[]);
        let mut emitted = Emitter::new();
        for chunk in chunks(input, 16_000, 1, &[1000], 0) {
            vad.process(Value::Audio(chunk), &mut emitted)
                .expect("process");
        }
        vad.interrupt();
        vad.flush(&mut emitted).expect("flush");
        assert_near(&spans(emitted.items()), &[(0.5, 1.5)]);
    }

    #[test]
    fn a_steady_tone_becomes_background_after_the_floor_window() {
        // Minimum statistics: a sound with no pauses is background once the quiet before it
        // has left the 1.5 s window.
        let input: Vec<f32> = (0..16_000 * 4)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                if t >= 1.0 {
                    0.3 * (std::f32::consts::TAU * 300.0 * t).sin()
                } else {
                    0.0005 * (std::f32::consts::TAU * 3_000.0 * t).sin()
                }
            })
            .collect();
        let out = run(energy(&[]).as_mut(), chunks(&input, 16_000, 1, &[1600], 0));
        // The floor climbs over a few frames (smoothing) once the window is all tone.
        assert_near(&spans(&out), &[(1.0, 2.54)]);
    }

    #[test]
    fn silence_has_no_speech() {
        let out = run(
            node(NAME, &[]).as_mut(),
            chunks(&vec![0.0; 32_000], 16_000, 1, &[512], 0),
        );
        assert!(out.is_empty());
    }
}
