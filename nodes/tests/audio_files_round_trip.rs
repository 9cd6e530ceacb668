//! Audio files: wav_sink writes what file_source reads back; a FLAC file decodes exactly.

use std::path::Path;

use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{Emitter, Node, NodeError, Source};
use troupe_value::{Audio, Map, Value};

mod support;

use support::sources::{feed, mkfifo, read_all, samples};

fn params(pairs: &[(&str, Value)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn sink(path: &Path, format: &str) -> Box<dyn Node> {
    let p = params(&[
        ("path", Value::from(path.to_str().expect("utf-8 path"))),
        ("format", Value::from(format)),
    ]);
    match catalog::build("audio.wav_sink", p).expect("wav_sink") {
        Built::Node(node) => node,
        Built::Source(_) => panic!("wav_sink is a source"),
    }
}

fn open(path: &Path, chunk_frames: i64) -> Box<dyn Source> {
    let p = params(&[
        ("path", Value::from(path.to_str().expect("utf-8 path"))),
        ("chunk_frames", Value::Int(chunk_frames)),
    ]);
    match catalog::build("audio.file_source", p).expect("file_source") {
        Built::Source(source) => source,
        Built::Node(_) => panic!("file_source is not a source"),
    }
}

/// 0.75 s of stereo: a 440 Hz sine left, a 1 kHz one right.
fn stereo() -> Vec<f32> {
    (0..33_075)
        .flat_map(|i| {
            let t = i as f32 / 44_100.0;
            [
                0.7 * (2.0 * std::f32::consts::PI * 440.0 * t).sin(),
                -0.4 * (2.0 * std::f32::consts::PI * 1000.0 * t).sin(),
            ]
        })
        .collect()
}

fn write(path: &Path, format: &str, input: &[f32]) {
    let mut node = sink(path, format);
    let mut out = Emitter::new();
    for (i, chunk) in input.chunks(2 * 4000).enumerate() {
        let audio = Audio::from_interleaved(chunk.to_vec(), 44_100, 2, i as u64).expect("audio");
        node.process(Value::Audio(audio.clone()), &mut out)
            .expect("write");
        // The sink passes each chunk on unchanged.
        assert_eq!(out.drain().collect::<Vec<_>>(), vec![Value::Audio(audio)]);
    }
    node.flush(&mut out).expect("finalize");
    node.shutdown();
}

#[test]
fn f32_wav_round_trips_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("f32.wav");
    let input = stereo();
    write(&path, "f32", &input);
    let mut source = open(&path, 1000);
    assert_eq!(source.media_seconds(), Some(0.75));
    let chunks = read_all(source.as_mut());
    assert_eq!(chunks.len(), 34);
    assert!(chunks[..33].iter().all(|c| c.frames() == 1000));
    assert_eq!(chunks[33].frames(), 75);
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!((c.sample_rate(), c.channels()), (44_100, 2));
        assert_eq!(c.timestamp_ns(), i as u64 * 1000 * 1_000_000_000 / 44_100);
    }
    assert_eq!(samples(&chunks), input);
}

#[test]
fn i16_wav_round_trips_within_one_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("i16.wav");
    let input = stereo();
    write(&path, "i16", &input);
    let output = samples(&read_all(open(&path, 4096).as_mut()));
    assert_eq!(output.len(), input.len());
    let worst = input
        .iter()
        .zip(&output)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst <= 0.5 / 32768.0 + 1e-7, "worst error {worst}");
}

#[test]
fn a_wav_cut_short_reads_up_to_the_cut() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cut.wav");
    let input = stereo();
    write(&path, "i16", &input);
    let bytes = std::fs::read(&path).expect("read");
    // Drop the last 1000 frames (4 bytes each) and half a frame.
    std::fs::write(&path, &bytes[..bytes.len() - 4002]).expect("cut");
    let mut source = open(&path, 1024);
    // The length it holds, not the 0.75 s its header claims.
    assert_eq!(
        source.media_seconds(),
        Some((33_075 - 1_001) as f64 / 44_100.0)
    );
    let output = samples(&read_all(source.as_mut()));
    assert_eq!(output.len(), input.len() - 2 * 1001);
}

#[test]
fn the_sink_refuses_a_change_of_format() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = sink(&dir.path().join("x.wav"), "f32");
    let mut out = Emitter::new();
    let a = Audio::from_interleaved(vec![0.0; 8], 16_000, 1, 0).expect("audio");
    let b = Audio::from_interleaved(vec![0.0; 8], 8_000, 1, 0).expect("audio");
    node.process(Value::Audio(a), &mut out).expect("first");
    assert!(matches!(
        node.process(Value::Audio(b), &mut out),
        Err(NodeError::InvalidInput { .. })
    ));
}

/// CRC-8 (poly 0x07) of a FLAC frame header.
fn crc8(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |mut crc, &b| {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// CRC-16 (poly 0x8005) of a FLAC frame.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, &b| {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// A FLAC file of 16-bit stereo at 8 kHz with VERBATIM subframes (no encoder needed), in
/// blocks of 1000 frames (the last one shorter).
fn flac(left: &[i16], right: &[i16]) -> Vec<u8> {
    const BLOCK: usize = 1000;
    let total = left.len() as u64;
    let mut file = b"fLaC".to_vec();
    // STREAMINFO, the last metadata block: header, then 34 bytes.
    file.extend([0x80, 0, 0, 34]);
    file.extend((BLOCK as u16).to_be_bytes());
    file.extend((BLOCK as u16).to_be_bytes());
    file.extend([0; 6]); // frame sizes unknown
    // 20 bits rate, 3 bits channels - 1, 5 bits bits - 1, 36 bits total frames.
    let packed: u64 = (8000u64 << 44) | (1 << 41) | (15 << 36) | total;
    file.extend(packed.to_be_bytes());
    file.extend([0; 16]); // no MD5
    for (n, (l, r)) in left.chunks(BLOCK).zip(right.chunks(BLOCK)).enumerate() {
        let mut frame = vec![
            0xFF, 0xF8,    // sync, fixed block size
            0x74,    // block size: 16 bits follow; rate: 8 kHz
            0x18,    // independent stereo, 16 bits per sample
            n as u8, // frame number (UTF-8 coded, < 128)
        ];
        frame.extend(((l.len() - 1) as u16).to_be_bytes());
        frame.push(crc8(&frame));
        for channel in [l, r] {
            frame.push(0x02); // VERBATIM subframe, no wasted bits
            for s in channel {
                frame.extend(s.to_be_bytes());
            }
        }
        let crc = crc16(&frame);
        frame.extend(crc.to_be_bytes());
        file.extend(frame);
    }
    file
}

#[test]
fn flac_decodes_exactly() {
    let left: Vec<i16> = (0..2500)
        .map(|i| ((i * 37) % 20_000 - 10_000) as i16)
        .collect();
    let right: Vec<i16> = (0..2500).map(|i| (i * 13 % 3000) as i16).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("verbatim.flac");
    std::fs::write(&path, flac(&left, &right)).expect("write flac");
    let mut source = open(&path, 512);
    assert_eq!(source.media_seconds(), Some(2500.0 / 8000.0));
    let chunks = read_all(source.as_mut());
    assert!(
        chunks
            .iter()
            .all(|c| c.sample_rate() == 8000 && c.channels() == 2)
    );
    assert_eq!(chunks[1].timestamp_ns(), 64_000_000);
    let want: Vec<f32> = left
        .iter()
        .zip(&right)
        .flat_map(|(l, r)| [f32::from(*l) / 32768.0, f32::from(*r) / 32768.0])
        .collect();
    assert_eq!(samples(&chunks), want);
}

/// A FIFO (or stdin) cannot be opened twice nor seeked: the source reads it once, as it
/// comes, with the same samples as from the file.
#[test]
fn a_wav_streamed_through_a_fifo_reads_the_same_samples() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("f32.wav");
    let input = stereo();
    write(&path, "f32", &input);
    let fifo = mkfifo(dir.path(), "live.wav");
    let writer = feed(&fifo, std::fs::read(&path).expect("read"));
    let mut source = open(&fifo, 1000);
    let chunks = read_all(source.as_mut());
    writer.join().expect("writer");
    assert_eq!(samples(&chunks), input);
}
