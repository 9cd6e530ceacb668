//! A Y4M file made with the `y4m` encoder goes through `video.y4m_source`, `video.resize`
//! and `video.y4m_sink`, and the written file reads back with the right size, frame count,
//! timestamps and plausible pixels.

use std::path::Path;

use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{Emitter, Node, Source, SourceState};
use troupe_value::{Map, PixelFormat, Value, VideoFrame};

const W: usize = 64;
const H: usize = 48;
const FRAMES: usize = 10;
/// This frame is uniform; the others are a gradient moving with time.
const UNIFORM: usize = 5;
const UNIFORM_YUV: [u8; 3] = [90, 100, 150];

fn planes(t: usize) -> [Vec<u8>; 3] {
    let (cw, ch) = (W / 2, H / 2);
    if t == UNIFORM {
        return [
            vec![UNIFORM_YUV[0]; W * H],
            vec![UNIFORM_YUV[1]; cw * ch],
            vec![UNIFORM_YUV[2]; cw * ch],
        ];
    }
    let y = (0..W * H).map(|i| (16 + 2 * (i % W) + i / W + 4 * t) as u8);
    let u = (0..cw * ch).map(|i| (64 + i % cw + t) as u8);
    let v = (0..cw * ch).map(|i| (192 - i / cw - t) as u8);
    [y.collect(), u.collect(), v.collect()]
}

fn write_input(path: &Path) {
    let file = std::fs::File::create(path).expect("create input");
    let mut encoder = y4m::encode(W, H, y4m::Ratio::new(30, 1))
        .with_colorspace(y4m::Colorspace::C420)
        .write_header(file)
        .expect("header");
    for t in 0..FRAMES {
        let [y, u, v] = planes(t);
        encoder
            .write_frame(&y4m::Frame::new([&y, &u, &v], None))
            .expect("frame");
    }
}

fn params(pairs: &[(&str, Value)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn source(path: &Path) -> Box<dyn Source> {
    let path = Value::from(path.to_str().expect("utf-8 path"));
    match catalog::build("video.y4m_source", params(&[("path", path)])) {
        Ok(Built::Source(source)) => source,
        other => panic!("video.y4m_source did not build: {other:?}"),
    }
}

fn node(name: &str, pairs: &[(&str, Value)]) -> Box<dyn Node> {
    match catalog::build(name, params(pairs)) {
        Ok(Built::Node(node)) => node,
        other => panic!("{name} did not build: {other:?}"),
    }
}

fn read_all(source: &mut dyn Source) -> Vec<VideoFrame> {
    let mut out = Emitter::new();
    while source.pull(&mut out).expect("pull") == SourceState::More {}
    out.drain()
        .map(|v| v.as_video().expect("video").clone())
        .collect()
}

fn mean(bytes: &[u8]) -> f64 {
    bytes.iter().map(|b| f64::from(*b)).sum::<f64>() / bytes.len() as f64
}

/// Y, U, V of a 4:2:0 frame.
fn split(frame: &VideoFrame) -> (&[u8], &[u8], &[u8]) {
    let bytes = frame.pixels().data().as_slice();
    let luma = (frame.width() * frame.height()) as usize;
    let chroma = (frame.width().div_ceil(2) * frame.height().div_ceil(2)) as usize;
    (
        &bytes[..luma],
        &bytes[luma..luma + chroma],
        &bytes[luma + chroma..],
    )
}

#[test]
fn y4m_survives_read_resize_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.y4m");
    let output = dir.path().join("out.y4m");
    write_input(&input);

    let mut src = source(&input);
    assert_eq!(src.media_seconds(), Some(FRAMES as f64 / 30.0));
    let frames = read_all(src.as_mut());
    assert_eq!(frames.len(), FRAMES);
    for (t, frame) in frames.iter().enumerate() {
        assert_eq!((frame.width(), frame.height()), (W as u32, H as u32));
        assert_eq!(frame.format(), PixelFormat::Yuv420p);
        assert_eq!(frame.timestamp_ns(), t as u64 * 1_000_000_000 / 30);
        assert_eq!(frame.pixels().data().as_slice(), planes(t).concat());
    }

    let mut resize = node(
        "video.resize",
        &[("width", Value::Int(32)), ("height", Value::Int(24))],
    );
    let out_path = Value::from(output.to_str().expect("utf-8 path"));
    let mut sink = node(
        "video.y4m_sink",
        &[("path", out_path), ("fps_num", 30.into())],
    );
    let mut resized = Emitter::new();
    let mut nothing = Emitter::new();
    sink.initialize().expect("sink initialize");
    for frame in frames.iter().cloned() {
        resize.process(frame.into(), &mut resized).expect("resize");
    }
    for frame in resized.drain() {
        sink.process(frame, &mut nothing).expect("write");
    }
    sink.flush(&mut nothing).expect("flush");
    sink.shutdown();
    assert!(nothing.is_empty(), "a sink emits nothing");

    let mut reread = source(&output);
    assert_eq!(reread.media_seconds(), Some(FRAMES as f64 / 30.0));
    let small = read_all(reread.as_mut());
    assert_eq!(small.len(), FRAMES);
    for (t, (big, small)) in frames.iter().zip(&small).enumerate() {
        assert_eq!((small.width(), small.height()), (32, 24));
        assert_eq!(small.format(), PixelFormat::Yuv420p);
        assert_eq!(small.timestamp_ns(), big.timestamp_ns());
        let (by, bu, bv) = split(big);
        let (sy, su, sv) = split(small);
        for (name, b, s) in [("Y", by, sy), ("U", bu, su), ("V", bv, sv)] {
            let (mb, ms) = (mean(b), mean(s));
            assert!(
                (mb - ms).abs() <= 1.5,
                "frame {t} {name}: mean {mb} became {ms}"
            );
        }
        if t == UNIFORM {
            for (plane, want) in [sy, su, sv].into_iter().zip(UNIFORM_YUV) {
                assert!(plane.iter().all(|p| p.abs_diff(want) <= 1), "frame {t}");
            }
        } else {
            // Halving a linear gradient: each output pixel is about its 2x2 block's mean.
            for (i, p) in sy.iter().enumerate() {
                let (x, y) = (2 * (i % 32), 2 * (i / 32));
                let block = [(x, y), (x + 1, y), (x, y + 1), (x + 1, y + 1)];
                let want = block
                    .iter()
                    .map(|(x, y)| f64::from(by[y * W + x]))
                    .sum::<f64>()
                    / 4.0;
                assert!(
                    (f64::from(*p) - want).abs() <= 3.0,
                    "frame {t} luma ({x},{y}): {p} vs {want}"
                );
            }
        }
    }
}
