//! `examples/audio_vad.toml` run as a pipeline finds speech-like bursts at their known
//! times: each segment's start and end within `TOLERANCE_S` of the burst's, widened by the
//! manifest's 30 ms padding.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "support/examples.rs"]
mod examples;
#[path = "support/speech.rs"]
mod speech;

use std::path::Path;

use examples::example;

/// Where the bursts are, in seconds.
const BURSTS: [(f64, f64); 5] = [(0.8, 2.3), (3.4, 4.2), (5.5, 7.4), (8.3, 9.0), (10.2, 11.1)];
const SECONDS: f64 = 12.0;
const RATE: u32 = 48_000;
/// The example's `pad_ms`.
const PAD_S: f64 = 0.03;
/// How far a detected boundary may be from the true one (padding aside).
const TOLERANCE_S: f64 = 0.06;

/// Runs `examples/audio_vad.toml` on `input`; returns the segments written, as
/// (start_s, end_s).
fn run_example(input: &Path, output: &Path) -> Vec<(f64, f64)> {
    let vars = [("TROUPE_AUDIO_IN", input), ("TROUPE_AUDIO_OUT", output)];
    let summary = examples::run_example("audio_vad.toml", "audio_vad", &vars);
    assert_eq!(summary.lost(), 0);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(output)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // The Python extension's flush writes one summary line after the segments.
    let (summary, segments) = lines.split_last().expect("a summary line");
    assert_eq!(summary["segments"].as_u64(), Some(segments.len() as u64));
    // ... and counted them in the manifest's `kv` singleton, through the host.
    assert_eq!(summary["segments_in_store"], summary["segments"]);
    segments
        .iter()
        .enumerate()
        .map(|(i, segment)| {
            assert_eq!(segment["index"].as_u64(), Some(i as u64));
            assert_eq!(segment["sample_rate"], 16_000);
            // Speech-like bursts are loud and voiced: numpy saw the samples themselves.
            let rms_db = segment["rms_db"].as_f64().unwrap();
            assert!(rms_db > -40.0, "segment {i}: {segment}");
            let centroid = segment["spectral_centroid_hz"].as_f64().unwrap();
            assert!(
                centroid > 50.0 && centroid < 8_000.0,
                "segment {i}: {segment}"
            );
            (
                segment["start_s"].as_f64().unwrap(),
                segment["end_s"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn speech_bursts_are_found_within_60_ms() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("speech.wav");
    speech::write_wav(&input, RATE, &speech::speech_like(RATE, SECONDS, &BURSTS));
    let found = run_example(&input, &dir.path().join("segments.jsonl"));
    println!("found {found:.3?}");
    assert_eq!(
        found.len(),
        BURSTS.len(),
        "found {found:?}, want {BURSTS:?}"
    );
    for (&(start, end), &(want_start, want_end)) in found.iter().zip(&BURSTS) {
        let (want_start, want_end) = (want_start - PAD_S, want_end + PAD_S);
        assert!(
            (start - want_start).abs() <= TOLERANCE_S && (end - want_end).abs() <= TOLERANCE_S,
            "found {found:.3?}, want {BURSTS:?} padded by {PAD_S} s within {TOLERANCE_S} s"
        );
    }
}

/// The committed example input, `examples/data/speech.wav` (22.05 kHz, 8 s, 353 KB), made
/// by this generator: `cargo test -p troupe-manifest --test manifest_vad_finds_speech_boundaries
/// -- --ignored`.
const EXAMPLE_BURSTS: [(f64, f64); 4] = [(0.6, 1.9), (2.7, 3.5), (4.4, 6.2), (7.0, 7.6)];

#[test]
#[ignore = "rewrites examples/data/speech.wav"]
fn write_the_example_input() {
    let rate = 22_050;
    let samples = speech::speech_like(rate, 8.0, &EXAMPLE_BURSTS);
    speech::write_wav(&example("data/speech.wav"), rate, &samples);
}

#[test]
fn the_committed_example_input_gives_its_bursts() {
    let dir = tempfile::tempdir().unwrap();
    let found = run_example(
        &example("data/speech.wav"),
        &dir.path().join("segments.jsonl"),
    );
    assert_eq!(found.len(), EXAMPLE_BURSTS.len(), "found {found:?}");
    for (&(start, end), &(want_start, want_end)) in found.iter().zip(&EXAMPLE_BURSTS) {
        assert!(
            (start - (want_start - PAD_S)).abs() <= TOLERANCE_S
                && (end - (want_end + PAD_S)).abs() <= TOLERANCE_S,
            "found {found:.3?}, want {EXAMPLE_BURSTS:?}"
        );
    }
}
