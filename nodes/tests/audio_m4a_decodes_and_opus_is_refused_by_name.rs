//! audio.file_source decodes AAC in an M4A (or .mp4) file into the tones it was made from,
//! and refuses Ogg Opus, or a file it cannot read, with a format error naming what it
//! reads. The fixtures in tests/data are made with ffmpeg (see the README there).

use std::path::{Path, PathBuf};

use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{NodeError, Source};
use troupe_value::{Map, Value};

mod support;

use support::sources::{feed, mkfifo, read_all, samples};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn open(path: &Path) -> Result<Box<dyn Source>, NodeError> {
    let params: Map = [
        (
            "path".to_owned(),
            Value::from(path.to_str().expect("utf-8 path")),
        ),
        ("chunk_frames".to_owned(), Value::Int(4096)),
    ]
    .into_iter()
    .collect();
    match catalog::build("audio.file_source", params)? {
        Built::Source(source) => Ok(source),
        Built::Node(_) => panic!("file_source is a source"),
    }
}

/// Frequency of `signal` at `rate` from its rising zero crossings.
fn frequency(signal: &[f32], rate: f64) -> f64 {
    let rising: Vec<usize> = signal
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
        .map(|(i, _)| i)
        .collect();
    let (first, last) = (rising[0], rising[rising.len() - 1]);
    (rising.len() - 1) as f64 * rate / (last - first) as f64
}

fn rms(signal: &[f32]) -> f32 {
    (signal.iter().map(|s| s * s).sum::<f32>() / signal.len() as f32).sqrt()
}

/// The fixture: 1 s of stereo at 44.1 kHz, 440 Hz left and 1 kHz right, at 1/8 of full
/// scale, in AAC-LC at 64 kb/s.
fn check_tones(path: &Path) {
    let mut source = open(path).expect("opens");
    let chunks = read_all(source.as_mut());
    assert!(
        chunks
            .iter()
            .all(|c| c.sample_rate() == 44_100 && c.channels() == 2)
    );
    let samples = samples(&chunks);
    let frames = samples.len() / 2;
    let seconds = frames as f64 / 44_100.0;
    println!(
        "{}: {frames} frames ({seconds:.3} s), media_seconds {:?}",
        path.display(),
        source.media_seconds()
    );
    // 1 s, give or take the encoder's priming and padding (a few 1024-frame packets).
    assert!((seconds - 1.0).abs() < 0.1, "{seconds} s");
    // Away from the edges, where the codec's onset and padding sit.
    let middle = |channel: usize| -> Vec<f32> {
        samples[2 * 4410..2 * (frames - 4410)]
            .iter()
            .skip(channel)
            .step_by(2)
            .copied()
            .collect()
    };
    let (left, right) = (middle(0), middle(1));
    let (f_left, f_right) = (frequency(&left, 44_100.0), frequency(&right, 44_100.0));
    println!(
        "left {f_left:.1} Hz, rms {:.4}; right {f_right:.1} Hz, rms {:.4}",
        rms(&left),
        rms(&right)
    );
    assert!((f_left - 440.0).abs() < 2.0, "{f_left}");
    assert!((f_right - 1000.0).abs() < 2.0, "{f_right}");
    // A sine of amplitude 1/8 has an rms of 0.0884.
    for level in [rms(&left), rms(&right)] {
        assert!((level - 0.0884).abs() < 0.01, "rms {level}");
    }
}

#[test]
fn an_m4a_decodes_into_its_tones() {
    check_tones(&fixture("tone_440_1000.m4a"));
}

#[test]
fn the_same_file_named_mp4_decodes_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mp4 = dir.path().join("tone.mp4");
    std::fs::copy(fixture("tone_440_1000.m4a"), &mp4).expect("copy");
    check_tones(&mp4);
}

/// A fast-start M4A (index first) decodes from a FIFO, which cannot seek, as from the file.
#[test]
fn a_fast_start_m4a_decodes_through_a_fifo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = mkfifo(dir.path(), "live.m4a");
    let writer = feed(
        &fifo,
        std::fs::read(fixture("tone_440_1000.m4a")).expect("read"),
    );
    let streamed = read_all(open(&fifo).expect("opens").as_mut());
    writer.join().expect("writer");
    let from_file = read_all(open(&fixture("tone_440_1000.m4a")).expect("opens").as_mut());
    assert_eq!(streamed, from_file);
}

fn format_reason(result: Result<Box<dyn Source>, NodeError>) -> String {
    match result {
        Err(NodeError::Format { node, reason }) => {
            assert_eq!(node, "audio.file_source");
            reason
        }
        Err(other) => panic!("not a format error: {other:?}"),
        Ok(_) => panic!("opened"),
    }
}

#[test]
fn ogg_opus_is_a_format_error_naming_the_supported_formats() {
    let reason = format_reason(open(&fixture("tone_440.opus")));
    println!("{reason}");
    assert!(reason.contains("Opus"), "{reason}");
    for name in ["WAV", "MP3", "FLAC", "Ogg Vorbis", "AAC", "M4A"] {
        assert!(reason.contains(name), "{reason} does not name {name}");
    }
}

#[test]
fn an_unknown_container_names_the_supported_formats_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("noise.bin");
    std::fs::write(&path, [0x5Au8; 4096]).expect("write");
    let reason = format_reason(open(&path));
    println!("{reason}");
    assert!(
        reason.contains("supported: WAV, MP3, FLAC, Ogg Vorbis, AAC"),
        "{reason}"
    );
}
