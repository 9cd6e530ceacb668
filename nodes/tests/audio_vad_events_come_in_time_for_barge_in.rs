//! audio.vad with `events` and `probability` on, fed speech-like bursts at 16 kHz in 20 ms
//! chunks as a live capture would be: each speech_start comes out of the chunk that
//! confirms the speech, about `min_speech_ms` after it began, and each speech_end about
//! `min_silence_ms` after it ended; a tone and a hiss raise none.

use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{Emitter, Node};
use troupe_value::{Audio, Map, Value};

mod support;

use support::speech::{SPEECH, speech_like};

const RATE: u32 = 16_000;
const CHUNK: usize = 320;
const MIN_SPEECH_S: f64 = 0.150;
const MIN_SILENCE_S: f64 = 0.300;
/// One detector frame.
const FRAME_S: f64 = 0.016;
/// How far an event's time may be from the true boundary.
const TOLERANCE_S: f64 = 0.05;

fn vad() -> Box<dyn Node> {
    let params: Map = [
        ("events", Value::Bool(true)),
        ("probability", Value::Bool(true)),
        ("min_speech_ms", Value::Int(150)),
        ("min_silence_ms", Value::Int(300)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    match catalog::build("audio.vad", params).expect("audio.vad") {
        Built::Node(node) => node,
        Built::Source(_) => panic!("audio.vad is not a source"),
    }
}

/// One output with the end (seconds) of the chunk whose `process` call emitted it.
struct Out {
    chunk_end: f64,
    value: Value,
}

impl Out {
    fn event(&self) -> &str {
        self.value
            .get("event")
            .and_then(Value::as_str)
            .expect("every output has an event key")
    }

    fn float(&self, key: &str) -> f64 {
        self.value.get(key).and_then(Value::as_float).expect(key)
    }
}

fn run_live(input: &[f32]) -> Vec<Out> {
    let mut vad = vad();
    let mut out = Emitter::new();
    let mut found = Vec::new();
    for (i, piece) in input.chunks(CHUNK).enumerate() {
        let start = (i * CHUNK) as u64 * 1_000_000_000 / u64::from(RATE);
        let audio = Audio::from_interleaved(piece.to_vec(), RATE, 1, start).expect("audio");
        vad.process(Value::Audio(audio), &mut out).expect("process");
        let chunk_end = (i * CHUNK + piece.len()) as f64 / f64::from(RATE);
        found.extend(out.drain().map(|value| Out { chunk_end, value }));
    }
    vad.flush(&mut out).expect("flush");
    found.extend(out.drain().map(|value| Out {
        chunk_end: f64::INFINITY,
        value,
    }));
    found
}

#[test]
fn speech_start_and_end_arrive_within_min_speech_and_hangover_of_the_truth() {
    let out = run_live(&speech_like(RATE));
    let speech: Vec<&Out> = out
        .iter()
        .filter(|o| matches!(o.event(), "speech_start" | "speech_end"))
        .collect();
    for o in &speech {
        println!(
            "{:<12} at {:.3} s, out of the chunk ending {:.3} s",
            o.event(),
            o.float("time_s"),
            o.chunk_end
        );
    }
    // Four bursts; the tone and the hiss after them raise nothing.
    assert_eq!(speech.len(), 2 * SPEECH.len());
    let mut last = f64::NEG_INFINITY;
    for (pair, (start, end)) in speech.chunks(2).zip(SPEECH) {
        let (on, off) = (pair[0], pair[1]);
        assert_eq!((on.event(), off.event()), ("speech_start", "speech_end"));
        let (on_time, off_time) = (on.float("time_s"), off.float("time_s"));
        assert!(last < on_time && on_time < off_time, "out of order");
        last = off_time;
        assert!(
            (on_time - start).abs() <= TOLERANCE_S,
            "start {on_time} for {start}"
        );
        assert!(
            (off_time - end).abs() <= TOLERANCE_S,
            "end {off_time} for {end}"
        );
        assert_eq!(off.float("start_s"), on_time);
        // Decided once min_speech (or the hangover) has passed, in the frame that ends
        // then, whose chunk may end up to one chunk later.
        let chunk_s = CHUNK as f64 / f64::from(RATE);
        let slack = FRAME_S + chunk_s + TOLERANCE_S;
        assert!(
            on.chunk_end <= start + MIN_SPEECH_S + slack,
            "speech_start for {start} s came at {} s",
            on.chunk_end
        );
        assert!(
            off.chunk_end <= end + MIN_SILENCE_S + slack,
            "speech_end for {end} s came at {} s",
            off.chunk_end
        );
    }
    // Each speech_end comes right before its segment, out of the same call.
    let ends: Vec<usize> = (0..out.len())
        .filter(|&i| out[i].event() == "speech_end")
        .collect();
    for i in ends {
        assert_eq!(out[i + 1].event(), "segment");
        assert_eq!(out[i + 1].chunk_end, out[i].chunk_end);
    }
}

#[test]
fn probability_is_high_in_speech_and_low_in_the_noise_between() {
    let out = run_live(&speech_like(RATE));
    let probs: Vec<(f64, f64)> = out
        .iter()
        .filter(|o| o.event() == "probability")
        .map(|o| (o.float("time_s"), o.float("p")))
        .collect();
    let chunks = speech_like(RATE).len().div_ceil(CHUNK);
    assert_eq!(probs.len(), chunks, "one per chunk");
    let mean = |from: f64, to: f64| {
        let inside: Vec<f64> = probs
            .iter()
            .filter(|(t, _)| (from..to).contains(t))
            .map(|(_, p)| *p)
            .collect();
        inside.iter().sum::<f64>() / inside.len() as f64
    };
    // Inside the bursts, and well away from them (the score decays slowly after sound).
    let speech = SPEECH
        .iter()
        .map(|(a, b)| mean(a + 0.1, b - 0.1))
        .fold(f64::INFINITY, f64::min);
    let quiet = mean(0.1, 0.7).max(mean(2.8, 3.4));
    println!("lowest mean p in a burst {speech:.2}, highest in the noise {quiet:.2}");
    assert!(speech > 0.5, "{speech}");
    assert!(quiet < 0.3, "{quiet}");
}
