//! file_source -> resample 48 kHz -> 16 kHz -> vad finds speech-like bursts at known times.
//!
//! The file also holds a loud 1 kHz tone and a white-noise burst: the earshot method must
//! ignore them, the energy method (which only measures level) reports them too.

use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{Emitter, Node, Source, SourceState};
use troupe_value::{Map, Value};

/// Where the bursts are, in seconds.
const SPEECH: [(f64, f64); 4] = [(0.8, 2.3), (3.5, 4.3), (5.6, 7.6), (8.4, 9.0)];
/// A 1 kHz tone and a burst of white noise, both at -20 dBFS: loud, but not speech.
const TONE: (f64, f64) = (10.5, 11.3);
const HISS: (f64, f64) = (12.0, 12.8);
const TOTAL_S: f64 = 14.0;
const RATE: u32 = 48_000;
/// How far a detected boundary may be from the true one.
const TOLERANCE_S: f64 = 0.06;

/// Deterministic noise in [-1, 1].
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// A two-pole resonator (a formant).
struct Formant {
    a1: f32,
    a2: f32,
    gain: f32,
    y1: f32,
    y2: f32,
}

impl Formant {
    fn new() -> Formant {
        Formant {
            a1: 0.0,
            a2: 0.0,
            gain: 0.0,
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn tune(&mut self, freq: f32, bandwidth: f32) {
        let rate = RATE as f32;
        let r = (-std::f32::consts::PI * bandwidth / rate).exp();
        self.a1 = 2.0 * r * (2.0 * std::f32::consts::PI * freq / rate).cos();
        self.a2 = -r * r;
        self.gain = 1.0 - r;
    }

    fn run(&mut self, x: f32) -> f32 {
        let y = self.gain * x + self.a1 * self.y1 + self.a2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// Speech-like bursts at `SPEECH`: a glottal pulse train (110-200 Hz, gliding) through three
/// formants that move every 180 ms syllable, with a syllabic envelope and breath noise,
/// over background noise at about -55 dBFS; then `TONE` and `HISS`.
fn speech_like() -> Vec<f32> {
    const VOWELS: [(f32, f32, f32); 5] = [
        (730.0, 1090.0, 2440.0),
        (270.0, 2290.0, 3010.0),
        (530.0, 1840.0, 2480.0),
        (570.0, 840.0, 2410.0),
        (300.0, 870.0, 2240.0),
    ];
    let rate = f64::from(RATE);
    let mut noise = Noise(7);
    let mut formants = [Formant::new(), Formant::new(), Formant::new()];
    let mut phase = 0.0f64;
    let mut vowel = usize::MAX;
    (0..(TOTAL_S * rate) as usize)
        .map(|i| {
            let t = i as f64 / rate;
            let mut s = 0.0025 * noise.next();
            if let Some(&(start, end)) = SPEECH.iter().find(|(a, b)| t >= *a && t < *b) {
                let rel = t - start;
                let syllable = (rel / 0.18) as usize;
                if syllable % VOWELS.len() != vowel {
                    vowel = syllable % VOWELS.len();
                    let (f1, f2, f3) = VOWELS[vowel];
                    formants[0].tune(f1, 80.0);
                    formants[1].tune(f2, 100.0);
                    formants[2].tune(f3, 150.0);
                }
                let f0 = 150.0 + 40.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
                phase += f0 / rate;
                let pulse = if phase >= 1.0 {
                    phase -= 1.0;
                    12.0
                } else {
                    0.0
                };
                let source = pulse + 0.05 * noise.next();
                let syllabic = 0.55 - 0.45 * (2.0 * std::f64::consts::PI * rel / 0.18).cos();
                let ramp = (rel / 0.02).min(1.0) * ((end - t) / 0.02).min(1.0);
                let voice = formants[0].run(source)
                    + 0.6 * formants[1].run(source)
                    + 0.3 * formants[2].run(source);
                s += 0.3 * (syllabic * ramp) as f32 * voice;
            }
            if (TONE.0..TONE.1).contains(&t) {
                s += 0.1 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin() as f32;
            }
            if (HISS.0..HISS.1).contains(&t) {
                s += 0.1 * noise.next();
            }
            s
        })
        .collect()
}

fn write_wav(path: &std::path::Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(path, spec).expect("create wav");
    for &s in samples {
        wav.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)
            .expect("write");
    }
    wav.finalize().expect("finalize");
}

fn params(pairs: &[(&str, Value)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn node(name: &str, pairs: &[(&str, Value)]) -> Box<dyn Node> {
    match catalog::build(name, params(pairs)).expect(name) {
        Built::Node(node) => node,
        Built::Source(_) => panic!("{name} is a source"),
    }
}

fn source(name: &str, pairs: &[(&str, Value)]) -> Box<dyn Source> {
    match catalog::build(name, params(pairs)).expect(name) {
        Built::Source(source) => source,
        Built::Node(_) => panic!("{name} is not a source"),
    }
}

/// Feeds `items` through the chain of `nodes` and returns what the last one emits.
fn push(nodes: &mut [Box<dyn Node>], items: Vec<Value>) -> Vec<Value> {
    let mut items = items;
    for node in nodes.iter_mut() {
        let mut out = Emitter::new();
        for item in items {
            node.process(item, &mut out).expect("process");
        }
        items = out.drain().collect();
    }
    items
}

/// Runs the file through resample and vad; returns the vad's segments.
fn detect(path: &std::path::Path, method: &str) -> Vec<Value> {
    let mut src = source(
        "audio.file_source",
        &[
            ("path", Value::from(path.to_str().expect("utf-8 path"))),
            ("chunk_frames", Value::Int(1000)),
        ],
    );
    assert_eq!(src.media_seconds(), Some(TOTAL_S));
    let mut chain = [
        node("audio.resample", &[("rate", Value::Int(16_000))]),
        node(
            "audio.vad",
            &[("method", Value::from(method)), ("pad_ms", Value::Int(0))],
        ),
    ];
    let mut segments = Vec::new();
    loop {
        let mut out = Emitter::new();
        let state = src.pull(&mut out).expect("pull");
        segments.extend(push(&mut chain, out.drain().collect()));
        if state == SourceState::Done {
            break;
        }
    }
    let mut out = Emitter::new();
    chain[0].flush(&mut out).expect("flush resample");
    segments.extend(push(&mut chain[1..], out.drain().collect()));
    let mut out = Emitter::new();
    chain[1].flush(&mut out).expect("flush vad");
    segments.extend(out.drain());
    segments
}

fn check(method: &str, segments: &[Value], want: &[(f64, f64)]) {
    let found: Vec<(f64, f64)> = segments
        .iter()
        .map(|s| {
            let start = s.get("start_s").and_then(Value::as_float).expect("start_s");
            let end = s.get("end_s").and_then(Value::as_float).expect("end_s");
            let audio = s.get("audio").and_then(Value::as_audio).expect("audio");
            assert_eq!(audio.sample_rate(), 16_000);
            assert_eq!(audio.channels(), 1);
            let frames = ((end - start) * 16_000.0).round() as usize;
            assert_eq!(audio.frames(), frames);
            assert_eq!(audio.timestamp_ns(), (start * 1e9).round() as u64);
            (start, end)
        })
        .collect();
    println!("{method}: {found:.3?}");
    assert_eq!(found.len(), want.len(), "{method}: found {found:?}");
    for ((start, end), (want_start, want_end)) in found.iter().zip(want) {
        assert!(
            (start - want_start).abs() <= TOLERANCE_S && (end - want_end).abs() <= TOLERANCE_S,
            "{method}: found {found:?}, want {want:?} within {TOLERANCE_S} s"
        );
    }
}

#[test]
fn speech_bursts_are_found_within_60_ms_and_tones_are_not_speech() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("speech.wav");
    write_wav(&path, &speech_like());
    let earshot = detect(&path, "earshot");
    let energy = detect(&path, "energy");
    check("earshot", &earshot, &SPEECH);
    let mut loud = SPEECH.to_vec();
    loud.extend([TONE, HISS]);
    check("energy", &energy, &loud);
}
