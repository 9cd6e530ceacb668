//! `examples/video_resize.toml` run as a pipeline turns a generated 96x64 Y4M clip into a
//! 48x32 one with every frame.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "support/examples.rs"]
mod examples;

use std::io::Write;
use std::path::Path;

use examples::example;

const WIDTH: usize = 96;
const HEIGHT: usize = 64;
const FRAMES: usize = 24;

/// Writes a 4:2:0 Y4M clip of a diagonal gradient moving 4 pixels per frame.
fn write_clip(path: &Path) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(file, "YUV4MPEG2 W{WIDTH} H{HEIGHT} F24:1 Ip A1:1 C420jpeg").unwrap();
    for n in 0..FRAMES {
        file.write_all(b"FRAME\n").unwrap();
        let luma: Vec<u8> = (0..HEIGHT)
            .flat_map(|y| (0..WIDTH).map(move |x| ((x + y + 4 * n) * 2 % 220 + 16) as u8))
            .collect();
        file.write_all(&luma).unwrap();
        let chroma = |phase: usize| -> Vec<u8> {
            (0..HEIGHT / 2)
                .flat_map(|y| (0..WIDTH / 2).map(move |x| ((x * 3 + y + phase) % 200 + 28) as u8))
                .collect()
        };
        file.write_all(&chroma(n)).unwrap();
        file.write_all(&chroma(100 + n)).unwrap();
    }
    file.flush().unwrap();
}

fn run_example(input: &Path, output: &Path) {
    let vars = [("TROUPE_VIDEO_IN", input), ("TROUPE_VIDEO_OUT", output)];
    let summary = examples::run_example("video_resize.toml", "video_resize", &vars);
    assert_eq!(summary.node("resize").unwrap().items_out, FRAMES as u64);
    assert!((summary.media_seconds - (FRAMES as f64 / 24.0)).abs() < 1e-9);
}

#[test]
fn every_frame_is_resized() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("clip.y4m"), dir.path().join("small.y4m"));
    write_clip(&input);
    run_example(&input, &output);
    let written = std::fs::read(&output).unwrap();
    let header_end = written.iter().position(|&b| b == b'\n').unwrap();
    let header = std::str::from_utf8(&written[..header_end]).unwrap();
    assert!(header.contains(" W48 H32 "), "{header}");
    let frame_bytes = b"FRAME\n".len() + 48 * 32 * 3 / 2;
    assert_eq!(written.len() - header_end - 1, FRAMES * frame_bytes);
}

/// The committed example input, `examples/data/clip.y4m` (221 KB):
/// `cargo test -p troupe-manifest --test manifest_video_example_resizes -- --ignored`.
#[test]
#[ignore = "rewrites examples/data/clip.y4m"]
fn write_the_example_input() {
    write_clip(&example("data/clip.y4m"));
}
