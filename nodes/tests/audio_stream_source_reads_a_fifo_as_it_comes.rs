//! audio.stream_source reads raw PCM and WAV from a FIFO while its writer is still
//! writing, paces a file to real time when asked, and refuses bad parameters and absurd
//! headers with typed errors.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{Emitter, NodeError, ParamError, Source, SourceState};
use troupe_value::{Audio, Map, Value};

mod support;

use support::sources::{mkfifo, samples};

fn params(pairs: &[(&str, Value)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn path_value(path: &Path) -> Value {
    Value::from(path.to_str().expect("utf-8 path"))
}

fn source(path: &Path, pairs: &[(&str, Value)]) -> Box<dyn Source> {
    let mut all = vec![("path", path_value(path))];
    all.extend(pairs.iter().cloned());
    match catalog::build("audio.stream_source", params(&all)).expect("stream_source") {
        Built::Source(source) => source,
        Built::Node(_) => panic!("stream_source is a source"),
    }
}

fn build_err(pairs: &[(&str, Value)]) -> NodeError {
    catalog::build("audio.stream_source", params(pairs)).expect_err("refused")
}

/// One pull's chunk (`None` when it gave none) and whether the source is done.
fn pull(source: &mut dyn Source) -> (Option<Audio>, bool) {
    let mut out = Emitter::new();
    let state = source.pull(&mut out).expect("pull");
    let mut items: Vec<Value> = out.drain().collect();
    assert!(items.len() <= 1);
    let chunk = items.pop().map(|v| v.as_audio().expect("audio").clone());
    (chunk, state == SourceState::Done)
}

/// Every chunk until the end.
fn drain(source: &mut dyn Source) -> Vec<Audio> {
    let mut chunks = Vec::new();
    loop {
        let (chunk, done) = pull(source);
        chunks.extend(chunk);
        if done {
            return chunks;
        }
    }
}

/// Writes `first` into the FIFO, waits for `go`, then writes each of `rest` with a short
/// sleep before it, and closes.
fn writer(
    fifo: &Path,
    first: Vec<u8>,
    rest: Vec<Vec<u8>>,
    go: mpsc::Receiver<()>,
) -> JoinHandle<()> {
    let fifo = fifo.to_owned();
    std::thread::spawn(move || {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .expect("open the fifo");
        file.write_all(&first).expect("write");
        file.flush().expect("flush");
        go.recv().expect("go");
        for piece in rest {
            std::thread::sleep(Duration::from_millis(10));
            file.write_all(&piece).expect("write");
        }
    })
}

/// Cuts `bytes` at `cuts` (byte offsets, in order).
fn cut(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut at = 0;
    for &c in cuts.iter().chain([&bytes.len()]) {
        pieces.push(bytes[at..c].to_vec());
        at = c;
    }
    pieces
}

/// `frames` of a ramp, as i16.
fn ramp(frames: usize) -> Vec<i16> {
    (0..frames)
        .map(|i| (i as i32 * 7 % 60_000 - 30_000) as i16)
        .collect()
}

#[test]
fn raw_pcm_chunks_come_out_while_the_writer_still_waits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = mkfifo(dir.path(), "live.pcm");
    // 16 kHz mono s16le, 20 ms = 320 frames = 640 bytes per chunk.
    let input = ramp(2000);
    let bytes: Vec<u8> = input.iter().flat_map(|s| s.to_le_bytes()).collect();
    // The first piece holds one chunk and a half; the rest come in pieces cut mid-sample.
    let (first, rest) = bytes.split_at(960);
    let (go, wait) = mpsc::channel();
    let handle = writer(
        &fifo,
        first.to_vec(),
        cut(rest, &[1, 333, 1001, 2500]),
        wait,
    );
    let mut src = source(&fifo, &[("sample_rate", Value::Int(16_000))]);
    // The writer is blocked on `go`: this chunk can only have come from the first piece.
    let (chunk, done) = pull(src.as_mut());
    let chunk = chunk.expect("the first chunk");
    assert!(!done && !handle.is_finished());
    assert_eq!((chunk.frames(), chunk.timestamp_ns()), (320, 0));
    go.send(()).expect("writer waits");
    let mut chunks = vec![chunk];
    chunks.extend(drain(src.as_mut()));
    handle.join().expect("writer");
    // 2000 frames: six chunks of 320 and the 80 left.
    let frames: Vec<usize> = chunks.iter().map(Audio::frames).collect();
    assert_eq!(frames, [320, 320, 320, 320, 320, 320, 80]);
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.timestamp_ns(), i as u64 * 20_000_000);
        assert_eq!((c.sample_rate(), c.channels()), (16_000, 1));
    }
    let want: Vec<f32> = input.iter().map(|&s| f32::from(s) / 32_768.0).collect();
    assert_eq!(samples(&chunks), want);
}

/// A WAV header of f32 stereo at 44.1 kHz whose lengths are unknown (0xFFFFFFFF), as live
/// writers put it.
fn live_wav_header() -> Vec<u8> {
    let mut h = b"RIFF\xff\xff\xff\xffWAVEfmt \x10\0\0\0\x03\0\x02\0".to_vec();
    h.extend(44_100u32.to_le_bytes());
    h.extend((44_100u32 * 8).to_le_bytes());
    h.extend([8, 0, 32, 0]);
    h.extend(b"data\xff\xff\xff\xff");
    h
}

#[test]
fn a_wav_stream_through_a_fifo_is_read_from_its_header_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = mkfifo(dir.path(), "live.wav");
    let input: Vec<f32> = (0..5000)
        .flat_map(|i| {
            let t = i as f32 / 44_100.0;
            [(440.0 * t).sin() * 0.5, -0.25]
        })
        .collect();
    let mut bytes = live_wav_header();
    let header_len = bytes.len();
    bytes.extend(input.iter().flat_map(|s| s.to_le_bytes()));
    // First piece: the header cut short, then the rest in pieces.
    let (go, wait) = mpsc::channel();
    let rest = cut(&bytes[20..], &[30, 4000, 4001, 20_000]);
    let handle = writer(&fifo, bytes[..20].to_vec(), rest, wait);
    go.send(()).expect("writer waits");
    let mut src = source(
        &fifo,
        &[("format", Value::from("wav")), ("chunk_ms", Value::Int(10))],
    );
    let chunks = drain(src.as_mut());
    handle.join().expect("writer");
    assert!(header_len < 100);
    // 441 frames per 10 ms.
    assert_eq!(chunks.len(), 12);
    assert!(chunks[..11].iter().all(|c| c.frames() == 441));
    assert_eq!(chunks[11].frames(), 5000 - 11 * 441);
    assert!(
        chunks
            .iter()
            .all(|c| c.sample_rate() == 44_100 && c.channels() == 2)
    );
    assert_eq!(chunks[3].timestamp_ns(), 30_000_000);
    assert_eq!(samples(&chunks), input);
    assert_eq!(src.media_seconds(), None);
}

#[test]
fn realtime_takes_at_least_the_media_time_of_the_stream() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("second.f32");
    // 1 s of 8 kHz mono f32: ten chunks of 100 ms.
    let bytes: Vec<u8> = (0..8000)
        .flat_map(|i| ((i % 100) as f32 / 100.0).to_le_bytes())
        .collect();
    std::fs::write(&path, bytes).expect("write");
    let mut src = source(
        &path,
        &[
            ("format", Value::from("f32le")),
            ("sample_rate", Value::Int(8000)),
            ("chunk_ms", Value::Int(100)),
            ("realtime", Value::Bool(true)),
        ],
    );
    let mut emitted = Vec::new();
    let mut first = None;
    loop {
        let (chunk, done) = pull(src.as_mut());
        if let Some(chunk) = chunk {
            let at = *first.get_or_insert_with(Instant::now);
            emitted.push((chunk.timestamp_ns(), at.elapsed()));
        }
        if done {
            break;
        }
    }
    assert_eq!(emitted.len(), 10);
    // No chunk before its media time since the first one (a lower bound only).
    for (media_ns, after_first) in &emitted {
        assert!(
            after_first.as_nanos() + 2_000_000 >= u128::from(*media_ns),
            "a chunk at {media_ns} ns of media came {after_first:?} after the first"
        );
    }
    let last = emitted.last().expect("chunks").1;
    println!("realtime: 1 s of media (last chunk at 0.9 s) took {last:?} after the first chunk");
    assert!(last >= Duration::from_millis(898));
}

#[test]
fn bad_parameters_are_typed_param_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("x.pcm");
    std::fs::write(&file, [0u8; 4]).expect("write");
    let p = path_value(&file);
    let out_of_range = |pairs: &[(&str, Value)], want: &str| match build_err(pairs) {
        NodeError::Params(ParamError::OutOfRange { param, .. }) => assert_eq!(param, want),
        other => panic!("{want}: {other:?}"),
    };
    out_of_range(
        &[
            ("path", p.clone()),
            ("format", Value::from("wav")),
            ("sample_rate", Value::Int(8000)),
        ],
        "sample_rate",
    );
    out_of_range(
        &[
            ("path", p.clone()),
            ("format", Value::from("wav")),
            ("channels", Value::Int(2)),
        ],
        "channels",
    );
    out_of_range(
        &[("path", p.clone()), ("sample_rate", Value::Int(0))],
        "sample_rate",
    );
    out_of_range(
        &[("path", p.clone()), ("channels", Value::Int(65))],
        "channels",
    );
    out_of_range(
        &[("path", p.clone()), ("chunk_ms", Value::Int(0))],
        "chunk_ms",
    );
    out_of_range(
        &[("path", p.clone()), ("format", Value::from("mp3"))],
        "format",
    );
    // 10 s of 64 channels at 768 kHz: over the chunk byte limit.
    out_of_range(
        &[
            ("path", p.clone()),
            ("format", Value::from("f32le")),
            ("sample_rate", Value::Int(768_000)),
            ("channels", Value::Int(64)),
            ("chunk_ms", Value::Int(10_000)),
        ],
        "chunk_ms",
    );
    out_of_range(&[("path", path_value(dir.path()))], "path");
    assert!(matches!(
        build_err(&[("path", path_value(&dir.path().join("absent")))]),
        NodeError::Io { .. }
    ));
    assert!(matches!(
        build_err(&[("path", p.clone()), ("realtime", Value::Int(1))]),
        NodeError::Params(ParamError::WrongType {
            param: "realtime",
            ..
        })
    ));
    assert!(matches!(
        build_err(&[]),
        NodeError::Params(ParamError::Missing { param: "path", .. })
    ));
    // Standard input is named, not read, when the node is built.
    catalog::build("audio.stream_source", params(&[("path", Value::from("-"))]))
        .expect("stdin source builds");
}

#[test]
fn absurd_wav_headers_are_format_errors_not_allocations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut huge_channels = live_wav_header();
    huge_channels[22..24].copy_from_slice(&0xFFFFu16.to_le_bytes());
    let mut huge_rate = live_wav_header();
    huge_rate[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut huge_fmt = b"RIFF\0\0\0\0WAVEfmt \xff\xff\xff\x7f".to_vec();
    huge_fmt.extend([0; 100]);
    let mut huge_skip = b"RIFF\0\0\0\0WAVEjunk\xff\xff\xff\xff".to_vec();
    huge_skip.extend([0; 100]);
    let cases: [(&str, Vec<u8>); 5] = [
        ("channels", huge_channels),
        ("rate", huge_rate),
        ("fmt", huge_fmt),
        ("skip", huge_skip),
        ("cut", live_wav_header()[..30].to_vec()),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(format!("{name}.wav"));
        std::fs::write(&path, bytes).expect("write");
        let mut src = source(&path, &[("format", Value::from("wav"))]);
        let err = src.pull(&mut Emitter::new()).expect_err(name);
        println!("{name}: {err}");
        assert!(matches!(err, NodeError::Format { .. }), "{name}: {err:?}");
    }
}

/// Set in the child process of [`standard_input_is_read_with_path_dash`].
const STDIN_CHILD: &str = "TROUPE_STREAM_SOURCE_STDIN_CHILD";

/// In the child: reads its standard input through the source and prints what it got.
/// Run alone (no variable set) it does nothing.
#[test]
fn stdin_child() {
    if std::env::var_os(STDIN_CHILD).is_none() {
        return;
    }
    let params = params(&[
        ("path", Value::from("-")),
        ("format", Value::from("wav")),
        ("chunk_ms", Value::Int(5)),
    ]);
    let Ok(Built::Source(mut src)) = catalog::build("audio.stream_source", params) else {
        panic!("stdin source");
    };
    let chunks = drain(src.as_mut());
    let total: f32 = samples(&chunks).iter().sum();
    println!("stdin: {} chunks, sum {total}", chunks.len());
}

#[test]
fn standard_input_is_read_with_path_dash() {
    // 1000 frames of f32 stereo at 44.1 kHz, every sample 0.25.
    let mut bytes = live_wav_header();
    bytes.extend((0..2000).flat_map(|_| 0.25f32.to_le_bytes()));
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "stdin_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(STDIN_CHILD, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&bytes).expect("write");
    drop(stdin);
    let output = child.wait_with_output().expect("child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    // 220 frames per 5 ms: four whole chunks and 120 frames.
    assert!(stdout.contains("stdin: 5 chunks, sum 500"), "{stdout}");
}
