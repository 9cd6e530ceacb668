//! RGB -> Yuv420p -> RGB through `video.convert` stays close on smooth images.
//!
//! Tolerance: on a smooth image (neighbouring pixels differ by at most 2 levels per
//! channel), every channel of every pixel comes back within 5 levels of 255 and the mean
//! error is under 1 level, in limited and full range (measured: 4 and 0.7-0.8). 4:2:0
//! keeps one chroma sample per 2x2 block and the decoder repeats it, so the error grows
//! with how fast colour changes: that is the format, not the conversion.

use troupe_nodes::Emitter;
use troupe_nodes::catalog::{self, Built};
use troupe_nodes::video::{ColorRange, Convert};
use troupe_value::{Array, PixelFormat, Value, VideoFrame};

const W: u32 = 64;
const H: u32 = 48;

/// Smooth colours away from the corners of the RGB cube (where 4:2:0 clips).
fn smooth_rgb(channels: usize) -> Vec<u8> {
    let mut px = Vec::with_capacity((W * H) as usize * channels);
    for y in 0..H {
        for x in 0..W {
            let (fx, fy) = (f64::from(x) / f64::from(W), f64::from(y) / f64::from(H));
            let r = 40.0 + 120.0 * fx;
            let g = 50.0 + 100.0 * fy;
            let b = 128.0 + 60.0 * (2.0 * fx + fy).sin();
            px.extend([r, g, b].map(|c| c.round() as u8));
            if channels == 4 {
                px.push(200);
            }
        }
    }
    px
}

fn frame(format: PixelFormat, pixels: Vec<u8>) -> VideoFrame {
    VideoFrame::new(Array::from_vec(pixels), W, H, format, 42).expect("a valid frame")
}

/// Largest and mean absolute difference over the R, G and B channels.
fn error(a: &[u8], b: &[u8], channels: usize) -> (u8, f64) {
    let diffs: Vec<u8> = a
        .chunks(channels)
        .zip(b.chunks(channels))
        .flat_map(|(p, q)| (0..3).map(move |c| p[c].abs_diff(q[c])))
        .collect();
    let max = diffs.iter().copied().max().unwrap_or(0);
    let mean = diffs.iter().map(|d| f64::from(*d)).sum::<f64>() / diffs.len() as f64;
    (max, mean)
}

#[test]
fn rgb_round_trips_through_yuv420p() {
    for (format, channels) in [(PixelFormat::Rgb24, 3), (PixelFormat::Rgba32, 4)] {
        for range in [ColorRange::Limited, ColorRange::Full] {
            let original = smooth_rgb(channels);
            let yuv = Convert::new(PixelFormat::Yuv420p, range)
                .convert(&frame(format, original.clone()))
                .expect("to yuv420p");
            assert_eq!(yuv.format(), PixelFormat::Yuv420p);
            assert_eq!(yuv.timestamp_ns(), 42);
            let back = Convert::new(format, range)
                .convert(&yuv)
                .expect("back to rgb");
            let (max, mean) = error(&original, back.pixels().data().as_slice(), channels);
            assert!(
                max <= 5 && mean < 1.0,
                "{format:?} {range:?}: max error {max}, mean {mean:.2}"
            );
        }
    }
}

#[test]
fn the_catalog_node_converts_and_refuses_non_video() {
    let params = [("format".to_owned(), Value::from("rgb24"))]
        .into_iter()
        .collect();
    let Ok(Built::Node(mut node)) = catalog::build("video.convert", params) else {
        panic!("video.convert did not build");
    };
    let gray = frame(PixelFormat::Gray8, (0..W * H).map(|i| i as u8).collect());
    let mut out = Emitter::new();
    node.process(gray.into(), &mut out).expect("gray to rgb");
    let rgb = out.items()[0].as_video().expect("video");
    assert_eq!(rgb.format(), PixelFormat::Rgb24);
    assert_eq!(rgb.pixels().data().as_slice()[3..6], [1, 1, 1]);
    assert!(node.process(Value::Int(1), &mut out).is_err());
}
