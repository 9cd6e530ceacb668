//! Unit tests of `audio.vad`: segments, and the events for barge-in.

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
                    let syllable = 0.5 - 0.5 * (std::f32::consts::TAU * 4.0 * (t - start)).cos();
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

/// Feeds `input` (mono, 16 kHz) in 20 ms chunks and flushes; returns each output with the
/// end (seconds) of the chunk whose `process` call emitted it (`None` for `flush`).
fn by_chunk(vad: &mut dyn Node, input: &[f32]) -> Vec<(Option<f64>, Value)> {
    let mut found = Vec::new();
    let mut out = Emitter::new();
    for chunk in chunks(input, 16_000, 1, &[320], 0) {
        let end = chunk.timestamp_ns() as f64 / 1e9 + chunk.frames() as f64 / 16_000.0;
        vad.process(Value::Audio(chunk), &mut out).expect("process");
        found.extend(out.drain().map(|v| (Some(end), v)));
    }
    vad.flush(&mut out).expect("flush");
    found.extend(out.drain().map(|v| (None, v)));
    found
}

fn kind(value: &Value) -> &str {
    value
        .get("event")
        .and_then(Value::as_str)
        .expect("event key")
}

fn float(value: &Value, key: &str) -> f64 {
    value.get(key).and_then(Value::as_float).expect(key)
}

#[test]
fn speech_start_and_end_come_as_soon_as_decided_and_in_order() {
    // Half a second more of the noise after the last burst, for its hangover to pass.
    let mut input = bursts(16_000);
    input.extend_from_within(..8000);
    let mut vad = energy(&[("events", Value::Bool(true))]);
    let out = by_chunk(vad.as_mut(), &input);
    let events: Vec<(Option<f64>, &Value)> = out
        .iter()
        .filter(|(_, v)| kind(v) != "segment")
        .map(|(at, v)| (*at, v))
        .collect();
    assert_eq!(events.len(), 4, "{events:?}");
    for (at, event) in &events {
        let time = float(event, "time_s");
        println!(
            "{} at {time:.3} s, out of the chunk ending {at:.3?} s",
            kind(event)
        );
    }
    // min_speech_ms 150 and one 16 ms frame, plus the chunk the deciding frame ends in.
    let start_lag = 0.150 + 0.016 + 0.020;
    // min_silence_ms 300, the same way.
    let end_lag = 0.300 + 0.016 + 0.020;
    let mut last = -1.0;
    for ((at, event), (start, end)) in events.chunks(2).map(|p| (p[0], p[1])).zip(BURSTS) {
        let (start, end) = (f64::from(start), f64::from(end));
        let (start_at, start_event) = at;
        assert_eq!(kind(start_event), "speech_start");
        let time = float(start_event, "time_s");
        assert!((time - start).abs() < 0.05, "start {time} for {start}");
        let start_at = start_at.expect("during the stream");
        assert!(start_at <= start + start_lag, "start came at {start_at}");
        assert!(time > last);
        let (end_at, end_event) = event;
        assert_eq!(kind(end_event), "speech_end");
        let end_time = float(end_event, "time_s");
        assert!((end_time - end).abs() < 0.05, "end {end_time} for {end}");
        assert_eq!(float(end_event, "start_s"), time);
        let end_at = end_at.expect("during the stream");
        assert!(end_at <= end + end_lag, "end came at {end_at}");
        assert!(end_time > time);
        last = end_time;
    }
    // Each speech_end comes right before its segment, in the same call.
    for (i, (at, value)) in out.iter().enumerate() {
        if kind(value) == "speech_end" {
            let (seg_at, segment) = &out[i + 1];
            assert_eq!((kind(segment), seg_at), ("segment", at));
        }
    }
}

#[test]
fn with_events_off_the_output_is_segments_only_as_before() {
    let input = bursts(16_000);
    let plain = run(energy(&[]).as_mut(), chunks(&input, 16_000, 1, &[320], 0));
    let tagged = run(
        energy(&[
            ("events", Value::Bool(true)),
            ("probability", Value::Bool(true)),
        ])
        .as_mut(),
        chunks(&input, 16_000, 1, &[320], 0),
    );
    assert!(plain.iter().all(|v| v.get("event").is_none()));
    let untagged: Vec<Value> = tagged
        .into_iter()
        .filter(|v| kind(v) == "segment")
        .map(|v| match v {
            Value::Map(mut map) => {
                map.shift_remove("event");
                Value::Map(map)
            }
            other => other,
        })
        .collect();
    assert_eq!(plain.len(), 2);
    assert_eq!(plain, untagged);
}

#[test]
fn speech_open_at_flush_ends_there() {
    let input = &bursts(16_000)[..16_000 * 3];
    let mut vad = energy(&[("events", Value::Bool(true))]);
    let out = by_chunk(vad.as_mut(), input);
    let tail: Vec<(Option<f64>, &str)> = out[out.len() - 2..]
        .iter()
        .map(|(at, v)| (*at, kind(v)))
        .collect();
    assert_eq!(tail, [(None, "speech_end"), (None, "segment")]);
    assert!((float(&out[out.len() - 2].1, "time_s") - 3.0).abs() < 0.02);
}

#[test]
fn probability_comes_once_per_chunk_and_follows_the_bursts() {
    let input = bursts(16_000);
    // The earshot score decays slowly after sound (100-200 ms): the quiet measured is
    // before the first burst and 100 ms after it.
    for method in METHODS {
        let mut vad = node(
            NAME,
            &[
                ("method", Value::from(*method)),
                ("probability", Value::Bool(true)),
            ],
        );
        let out = by_chunk(vad.as_mut(), &input);
        let probs: Vec<(f64, f64)> = out
            .iter()
            .filter(|(_, v)| kind(v) == "probability")
            .map(|(_, v)| (float(v, "time_s"), float(v, "p")))
            .collect();
        assert_eq!(probs.len(), 200, "{method}: one per 20 ms chunk");
        for (i, (time, p)) in probs.iter().enumerate() {
            assert!((time - i as f64 * 0.02).abs() < 1e-9);
            assert!((0.0..=1.0).contains(p));
        }
        // Share of chunks at p >= 0.5 (for energy: loud enough to open a candidate)
        // mid-burst, and in the quiet before and between the bursts.
        let share_over_half = |from: f64, to: f64| {
            let (over, all) = probs
                .iter()
                .filter(|(t, _)| (from..to).contains(t))
                .fold((0, 0), |(over, all), (_, p)| {
                    (over + usize::from(*p >= 0.5), all + 1)
                });
            over as f64 / all as f64
        };
        let speech = share_over_half(0.6, 1.4);
        let quiet = share_over_half(0.1, 0.45).max(share_over_half(1.6, 1.9));
        println!("{method}: chunks at p >= 0.5: {speech:.2} in bursts, {quiet:.2} in quiet");
        if *method == "energy" {
            assert!(
                speech > 0.9 && quiet == 0.0,
                "{method}: {speech} vs {quiet}"
            );
        }
    }
}
