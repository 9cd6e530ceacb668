//! file_source -> resample 48 kHz -> 16 kHz -> vad finds speech-like bursts at known times.
//!
//! The file also holds a loud 1 kHz tone and a white-noise burst: the earshot method must
//! ignore them, the energy method (which only measures level) reports them too.

use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{Emitter, Node, Source, SourceState};
use troupe_value::{Map, Value};

mod support;

use support::speech::{HISS, SPEECH, TONE, TOTAL_S, speech_like};

const RATE: u32 = 48_000;
/// How far a detected boundary may be from the true one.
const TOLERANCE_S: f64 = 0.06;

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
    write_wav(&path, &speech_like(RATE));
    let earshot = detect(&path, "earshot");
    let energy = detect(&path, "energy");
    check("earshot", &earshot, &SPEECH);
    let mut loud = SPEECH.to_vec();
    loud.extend([TONE, HISS]);
    check("energy", &energy, &loud);
}
