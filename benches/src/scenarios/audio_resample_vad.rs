//! `audio-resample-vad`: 48 kHz mono audio resampled to 16 kHz and run through voice
//! activity detection (`audio.resample` -> `audio.vad`, the earshot method), on one core.
//!
//! The clip is synthetic (tone bursts with a syllable-rate envelope between stretches of
//! faint noise), made once and cut into 100 ms chunks. `troupe-pipeline` runs the two nodes
//! as a pipeline of actors on one arbiter (a source replays the chunks); `nodes-direct` calls
//! the same nodes in a loop with no actors: the floor. A sample is one pass over the clip;
//! each row carries `media_seconds` (the clip's length) and `realtime_factor` (media seconds
//! per second of the median pass). Target: >= 1000x real time.

use std::time::Instant;

use troupe_nodes::{Emitter, Node, NodeError, Source, SourceState};
use troupe_pipeline::PipelineBuilder;
use troupe_value::{Audio, Value};

use crate::{BenchError, Effort, Measurement};

const SCENARIO: &str = "audio-resample-vad";
pub(super) const RATE: u32 = 48_000;
const CHUNK_FRAMES: usize = 4_800;

/// Replays pre-made chunks.
struct Replay {
    chunks: Vec<Audio>,
    next: usize,
}

impl Source for Replay {
    fn type_name(&self) -> &'static str {
        "bench.replay"
    }

    fn pull(&mut self, out: &mut Emitter) -> Result<SourceState, NodeError> {
        match self.chunks.get(self.next) {
            Some(chunk) => {
                out.emit(Value::Audio(chunk.clone()));
                self.next += 1;
                Ok(SourceState::More)
            }
            None => Ok(SourceState::Done),
        }
    }
}

/// `seconds` of 48 kHz audio in chunks: 1.5 s bursts of a 180 Hz harmonic tone under a
/// 4 Hz envelope, every 2.5 s, over noise at about -60 dBFS.
pub(super) fn clip(seconds: usize) -> Result<Vec<Audio>, BenchError> {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let samples: Vec<f32> = (0..seconds * RATE as usize)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.002;
            let burst = t % 2.5 < 1.5;
            let tone: f32 = (1..=8)
                .map(|k| (std::f32::consts::TAU * 180.0 * k as f32 * t).sin() / k as f32)
                .sum();
            let envelope = 0.5 - 0.5 * (std::f32::consts::TAU * 4.0 * t).cos();
            noise + if burst { 0.1 * envelope * tone } else { 0.0 }
        })
        .collect();
    samples
        .chunks(CHUNK_FRAMES)
        .enumerate()
        .map(|(n, chunk)| {
            let timestamp_ns = (n * CHUNK_FRAMES) as u64 * 1_000_000_000 / u64::from(RATE);
            Audio::from_interleaved(chunk.to_vec(), RATE, 1, timestamp_ns).map_err(|e| {
                BenchError::Scenario {
                    scenario: SCENARIO,
                    reason: e.to_string(),
                }
            })
        })
        .collect()
}

fn node(name: &str, params: &[(&str, Value)]) -> Result<Box<dyn Node>, BenchError> {
    super::catalog_node(SCENARIO, name, params)
}

fn failed(reason: impl std::fmt::Display) -> BenchError {
    BenchError::Scenario {
        scenario: SCENARIO,
        reason: reason.to_string(),
    }
}

fn resample() -> Result<Box<dyn Node>, BenchError> {
    node("audio.resample", &[("rate", Value::Int(16_000))])
}

fn vad() -> Result<Box<dyn Node>, BenchError> {
    node("audio.vad", &[("method", Value::from("earshot"))])
}

/// One pass through the nodes called directly; returns (ns, segments).
fn direct(chunks: &[Audio]) -> Result<(u64, usize), BenchError> {
    let (mut resample, mut vad) = (resample()?, vad()?);
    let (mut resampled, mut segments) = (Emitter::new(), Emitter::new());
    let start = Instant::now();
    for chunk in chunks {
        resample
            .process(Value::Audio(chunk.clone()), &mut resampled)
            .map_err(failed)?;
        for item in resampled.drain() {
            vad.process(item, &mut segments).map_err(failed)?;
        }
    }
    resample.flush(&mut resampled).map_err(failed)?;
    for item in resampled.drain() {
        vad.process(item, &mut segments).map_err(failed)?;
    }
    vad.flush(&mut segments).map_err(failed)?;
    Ok((start.elapsed().as_nanos() as u64, segments.len()))
}

/// One pass through a pipeline of actors on this arbiter; returns (ns, segments).
async fn pipeline(chunks: &[Audio]) -> Result<(u64, usize), BenchError> {
    let replay = Replay {
        chunks: chunks.to_vec(),
        next: 0,
    };
    let pipeline = PipelineBuilder::new()
        .source("input", Box::new(replay))
        .node("resample", resample()?)
        .node("vad", vad()?)
        .edge("input", "resample")
        .edge("resample", "vad")
        .build()
        .map_err(failed)?;
    let start = Instant::now();
    let summary = pipeline.run().await.map_err(failed)?;
    let segments = summary.node("vad").map_or(0, |n| n.items_out as usize);
    Ok((start.elapsed().as_nanos() as u64, segments))
}

/// Runs the scenario.
pub(super) fn run(effort: Effort) -> Result<Vec<Measurement>, BenchError> {
    let seconds = effort.pick(120, 600);
    let runs = effort.pick(3, 7);
    let chunks = clip(seconds)?;
    let want_segments = seconds.div_ceil(5) * 2;
    let mut rows = Vec::new();
    let system = actix::System::new();
    let mut troupe = Vec::new();
    let mut floor = Vec::new();
    for _ in 0..runs {
        let (ns, segments) = system.block_on(pipeline(&chunks))?;
        check_segments(segments, want_segments)?;
        troupe.push(ns);
        let (ns, segments) = direct(&chunks)?;
        check_segments(segments, want_segments)?;
        floor.push(ns);
    }
    for (name, samples) in [
        ("troupe-pipeline", &mut troupe),
        ("nodes-direct", &mut floor),
    ] {
        let m = Measurement::from_samples(SCENARIO, name, (CHUNK_FRAMES * 4) as u64, 1, samples);
        let factor = seconds as f64 / (m.median_ns.max(1) as f64 / 1e9);
        rows.push(
            m.with("media_seconds", seconds as u64)
                .with("realtime_factor", factor.round())
                .with("cores", 1),
        );
    }
    Ok(rows)
}

/// The bursts come every 2.5 s; the detector should find about one segment per burst.
fn check_segments(found: usize, want: usize) -> Result<(), BenchError> {
    if found.abs_diff(want) > want / 10 + 1 {
        return Err(failed(format!(
            "the detector found {found} segments, expected about {want}"
        )));
    }
    Ok(())
}
