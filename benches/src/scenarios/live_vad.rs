//! `live-vad`: the live path's latency. Audio arrives in real time, 20 ms per message (as
//! a microphone or a `troupe listen` client sends it), into `audio.stream_source` ->
//! `audio.resample` (48 -> 16 kHz) -> `audio.vad` with a speech probability per chunk; a
//! sample is the time from the message that completes a VAD chunk's audio being handed in
//! to that chunk's `probability` event leaving the VAD.
//!
//! `troupe-pipeline` runs the nodes as a pipeline of actors, the source on its own thread
//! reading a channel of messages (what a `troupe listen` session does, less the socket);
//! `nodes-direct` calls the same nodes on the thread that receives the messages, with no
//! actors and no hand-off: the floor. The resampler holds audio back until it has a block
//! (its algorithmic delay, up to a message here), so the `-16k` rows feed 16 kHz audio
//! straight to the VAD: there the sample is the compute and, for troupe, the hand-offs.
//! The clip is `audio-resample-vad`'s (tone bursts in faint noise). The pacing makes the
//! scenario last as long as its audio, four times.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use troupe_nodes::{Emitter, Node, NodeError};
use troupe_pipeline::PipelineBuilder;
use troupe_value::{Map, Value};

use super::audio_resample_vad::{RATE, clip};
use crate::{BenchError, Effort, Measurement};

const SCENARIO: &str = "live-vad";
/// Media per message.
const MESSAGE: Duration = Duration::from_millis(20);

fn failed(reason: impl std::fmt::Display) -> BenchError {
    BenchError::Scenario {
        scenario: SCENARIO,
        reason: reason.to_string(),
    }
}

fn node(name: &str, params: &[(&str, Value)]) -> Result<Box<dyn Node>, BenchError> {
    super::catalog_node(SCENARIO, name, params)
}

fn resample() -> Result<Box<dyn Node>, BenchError> {
    node("audio.resample", &[("rate", Value::Int(16_000))])
}

fn vad() -> Result<Box<dyn Node>, BenchError> {
    node("audio.vad", &[("probability", Value::Bool(true))])
}

/// The clip at `rate` (48 kHz, or every third sample: 16 kHz) as f32le messages of 20 ms.
fn messages(seconds: usize, rate: u32) -> Result<Vec<Vec<u8>>, BenchError> {
    let mut samples: Vec<f32> = Vec::new();
    for chunk in clip(seconds)? {
        let floats = chunk
            .samples()
            .as_slice::<f32>()
            .ok_or_else(|| failed("the clip is not f32"))?;
        samples.extend_from_slice(floats);
    }
    let step = (RATE / rate) as usize;
    let samples: Vec<f32> = samples.into_iter().step_by(step).collect();
    let per_message = rate as usize * MESSAGE.as_millis() as usize / 1000;
    Ok(samples
        .chunks(per_message)
        .map(|piece| piece.iter().flat_map(|s| s.to_le_bytes()).collect())
        .collect())
}

/// When each probability event left the VAD: `(chunk start in seconds, when)`.
type Seen = Arc<Mutex<Vec<(f64, Instant)>>>;

/// Records the VAD's probability events as they come.
struct Stamp(Seen);

impl Node for Stamp {
    fn type_name(&self) -> &'static str {
        "bench.stamp"
    }

    fn process(&mut self, input: Value, _: &mut Emitter) -> Result<(), NodeError> {
        record(&self.0, &input);
        Ok(())
    }
}

fn record(seen: &Seen, output: &Value) {
    if let Value::Map(map) = output
        && map.get("event") == Some(&Value::from("probability"))
        && let Some(Value::Float(t)) = map.get("time_s")
    {
        seen.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((*t, Instant::now()));
    }
}

/// Hands `messages` to `send` in real time; returns when each was handed over.
fn feed(messages: &[Vec<u8>], mut send: impl FnMut(Vec<u8>)) -> Vec<Instant> {
    let start = Instant::now();
    messages
        .iter()
        .enumerate()
        .map(|(k, message)| {
            let due = start + MESSAGE * k as u32;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let at = Instant::now();
            send(message.clone());
            at
        })
        .collect()
}

/// Latency of each event whose chunk's end is known (the next event's start): from the
/// hand-over of the message completing that audio to the event.
fn latencies(seen: &[(f64, Instant)], sent: &[Instant]) -> Vec<u64> {
    seen.windows(2)
        .filter_map(|pair| {
            let ((_, left), (end, _)) = (pair[0], pair[1]);
            let message = (end / MESSAGE.as_secs_f64()).ceil() as usize;
            let completed = sent.get(message.checked_sub(1)?)?;
            Some(left.saturating_duration_since(*completed).as_nanos() as u64)
        })
        .collect()
}

/// The live path through a pipeline of actors, for audio at `rate`.
fn pipeline(messages: &[Vec<u8>], rate: u32) -> Result<Vec<u64>, BenchError> {
    let seen: Seen = Arc::default();
    let (tx, rx): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = channel();
    let params: Map = [
        ("format", Value::from("f32le")),
        ("sample_rate", Value::Int(i64::from(rate))),
        ("chunk_ms", Value::Int(MESSAGE.as_millis() as i64)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let source = troupe_nodes::audio::stream_source_reading(
        Box::new(troupe_nodes::audio::ChannelReader::new(rx)),
        params,
    )
    .map_err(failed)?;
    let mut builder = PipelineBuilder::new()
        .source("input", source)
        .node("vad", vad()?)
        .node("stamp", Box::new(Stamp(seen.clone())))
        .edge("vad", "stamp");
    builder = if rate == RATE {
        builder
            .node("resample", resample()?)
            .edge("input", "resample")
            .edge("resample", "vad")
    } else {
        builder.edge("input", "vad")
    };
    let pipeline = builder.build().map_err(failed)?;
    let messages = messages.to_vec();
    let feeder = std::thread::spawn(move || feed(&messages, |m| drop(tx.send(m))));
    actix::System::new()
        .block_on(pipeline.run())
        .map_err(failed)?;
    let sent = feeder
        .join()
        .map_err(|_| failed("the feeder thread panicked"))?;
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    Ok(latencies(&seen, &sent))
}

/// The same nodes called as each message comes, on the receiving thread.
fn direct(messages: &[Vec<u8>], rate: u32) -> Result<Vec<u64>, BenchError> {
    let seen: Seen = Arc::default();
    let mut resample = if rate == RATE {
        Some(resample()?)
    } else {
        None
    };
    let mut vad = vad()?;
    let (mut resampled, mut outputs) = (Emitter::new(), Emitter::new());
    let mut timestamp_ns = 0u64;
    let mut error = None;
    let sent = feed(messages, |bytes| {
        let samples: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let frames = samples.len() as u64;
        let chunk = match troupe_value::Audio::from_interleaved(samples, rate, 1, timestamp_ns) {
            Ok(chunk) => chunk,
            Err(e) => return error = Some(failed(e)),
        };
        timestamp_ns += frames * 1_000_000_000 / u64::from(rate);
        match &mut resample {
            Some(resample) => {
                if let Err(e) = resample.process(Value::Audio(chunk), &mut resampled) {
                    return error = Some(failed(e));
                }
            }
            None => resampled.emit(chunk),
        }
        for item in resampled.drain() {
            if let Err(e) = vad.process(item, &mut outputs) {
                return error = Some(failed(e));
            }
        }
        for output in outputs.drain() {
            record(&seen, &output);
        }
    });
    if let Some(error) = error {
        return Err(error);
    }
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    Ok(latencies(&seen, &sent))
}

/// Runs the scenario.
pub(super) fn run(effort: Effort) -> Result<Vec<Measurement>, BenchError> {
    let seconds = effort.pick(5, 20);
    let mut rows = Vec::new();
    for (rate, suffix) in [(RATE, ""), (16_000, "-16k")] {
        let messages = messages(seconds, rate)?;
        let bytes = messages.first().map_or(0, Vec::len) as u64;
        for (system, mut samples) in [
            ("troupe-pipeline", pipeline(&messages, rate)?),
            ("nodes-direct", direct(&messages, rate)?),
        ] {
            let name = format!("{system}{suffix}");
            if samples.len() < seconds * 10 {
                return Err(failed(format!(
                    "{name}: only {} probability events in {seconds} s",
                    samples.len()
                )));
            }
            rows.push(
                Measurement::from_samples(SCENARIO, &name, bytes, 1, &mut samples)
                    .with("media_seconds", seconds as u64),
            );
        }
    }
    Ok(rows)
}
