//! Helpers for the audio nodes' unit tests.

use troupe_value::{Audio, Map, Value};

use crate::catalog::{self, Built};
use crate::node::{Emitter, Node};

/// Builds processing node `name` from `params`, panicking on error (tests only).
pub(crate) fn node(name: &str, params: &[(&str, Value)]) -> Box<dyn Node> {
    let map: Map = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    match catalog::build(name, map) {
        Ok(Built::Node(node)) => node,
        other => panic!("{name}: {other:?}"),
    }
}

/// Runs `chunks` through `node`, then flush; returns every output in order.
pub(crate) fn run(node: &mut dyn Node, chunks: impl IntoIterator<Item = Audio>) -> Vec<Value> {
    let mut out = Emitter::new();
    for chunk in chunks {
        node.process(Value::Audio(chunk), &mut out)
            .expect("process");
    }
    node.flush(&mut out).expect("flush");
    out.drain().collect()
}

/// The audio outputs, in order.
pub(crate) fn audio_of(values: &[Value]) -> Vec<&Audio> {
    values.iter().filter_map(Value::as_audio).collect()
}

/// The f32 samples of all `chunks`, concatenated.
pub(crate) fn concat(chunks: &[&Audio]) -> Vec<f32> {
    chunks
        .iter()
        .flat_map(|a| a.samples().to_vec::<f32>().expect("f32 samples"))
        .collect()
}

/// `frames` of a sine at `freq` Hz and amplitude `amp`, mono.
pub(crate) fn sine(freq: f64, amp: f32, rate: u32, frames: usize) -> Vec<f32> {
    (0..frames)
        .map(|i| {
            amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() as f32
        })
        .collect()
}

/// Cuts interleaved `samples` into chunks of the given frame counts (cycled), with
/// timestamps that follow on from `start_ns`.
pub(crate) fn chunks(
    samples: &[f32],
    rate: u32,
    channels: u16,
    sizes: &[usize],
    start_ns: u64,
) -> Vec<Audio> {
    let ch = usize::from(channels);
    let mut out = Vec::new();
    let mut at = 0;
    for &size in sizes.iter().cycle() {
        if at >= samples.len() {
            break;
        }
        let end = (at + size * ch).min(samples.len());
        let ts = start_ns + super::samples::frames_to_ns((at / ch) as u64, rate);
        out.push(
            Audio::from_interleaved(samples[at..end].to_vec(), rate, channels, ts).expect("audio"),
        );
        at = end;
    }
    out
}
