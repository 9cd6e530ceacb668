//! `video.y4m_sink`: writes frames to a YUV4MPEG2 (`.y4m`) file.

use std::fs::File;
use std::path::{Path, PathBuf};

use troupe_value::{PixelFormat, Value};

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, Node, NodeError};
use crate::params::{ParamKind, ParamSpec, Params};
use crate::video::color::{self, ColorRange};
use crate::video::frame::{expect_video, yuv_planes};

const NAME: &str = "video.y4m_sink";

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "path",
        kind: ParamKind::Path,
        default: None,
        doc: "The .y4m file to write (created at the first frame, replaced if it exists).",
    },
    ParamSpec {
        name: "fps_num",
        kind: ParamKind::Int {
            min: 1,
            max: 1_000_000,
        },
        default: Some("25"),
        doc: "Frame rate written in the header: numerator (30000 for 29.97 fps).",
    },
    ParamSpec {
        name: "fps_den",
        kind: ParamKind::Int {
            min: 1,
            max: 1_000_000,
        },
        default: Some("1"),
        doc: "Frame rate written in the header: denominator (1001 for 29.97 fps).",
    },
];

/// The `video.y4m_sink` node type.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Writes video frames to a Y4M file as 4:2:0 (converting gray8, rgb24, rgba32).",
    is_source: false,
    params: PARAMS,
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let path = params.str("path", None)?;
    let num = params.positive_u32("fps_num", Some(25))?;
    let den = params.positive_u32("fps_den", Some(1))?;
    Ok(Built::Node(Box::new(Y4mSink::new(path, (num, den)))))
}

/// Writes every frame it gets to one Y4M file, 8-bit 4:2:0, and emits nothing.
///
/// The header takes its size from the first frame; a later frame of another size is a
/// [`NodeError::InvalidInput`] error. Gray8, Rgb24 and Rgba32 frames are converted to
/// limited-range BT.601 Yuv420p first. Frames go to the file as they come, unbuffered, so
/// nothing is pending at flush. With no frames, no file is made.
#[derive(Debug)]
pub struct Y4mSink {
    path: PathBuf,
    rate: (u32, u32),
    out: Option<Output>,
    frames: u64,
}

struct Output {
    encoder: y4m::Encoder<File>,
    width: u32,
    height: u32,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl Y4mSink {
    /// A sink writing `path` at `rate` frames per second (numerator, denominator; zeros are
    /// taken as 1).
    pub fn new(path: impl AsRef<Path>, rate: (u32, u32)) -> Y4mSink {
        Y4mSink {
            path: path.as_ref().to_owned(),
            rate: (rate.0.max(1), rate.1.max(1)),
            out: None,
            frames: 0,
        }
    }

    /// Number of frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames
    }

    fn io(&self, source: std::io::Error) -> NodeError {
        NodeError::Io {
            node: NAME,
            path: self.path.display().to_string(),
            source,
        }
    }

    fn encode_error(&self, e: y4m::Error) -> NodeError {
        match e {
            y4m::Error::IoError(source) => self.io(source),
            other => NodeError::Format {
                node: NAME,
                reason: format!("{}: {other}", self.path.display()),
            },
        }
    }

    fn open(&self, width: u32, height: u32) -> Result<Output, NodeError> {
        let file = File::create(&self.path).map_err(|e| self.io(e))?;
        let rate = y4m::Ratio::new(self.rate.0 as usize, self.rate.1 as usize);
        let encoder = y4m::encode(width as usize, height as usize, rate)
            .with_colorspace(y4m::Colorspace::C420)
            .write_header(file)
            .map_err(|e| self.encode_error(e))?;
        Ok(Output {
            encoder,
            width,
            height,
        })
    }
}

impl Node for Y4mSink {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn process(&mut self, input: Value, _out: &mut Emitter) -> Result<(), NodeError> {
        let frame = expect_video(NAME, input)?;
        let frame = color::convert(NAME, &frame, PixelFormat::Yuv420p, ColorRange::Limited)?;
        let (width, height) = (frame.width(), frame.height());
        let out = match self.out.take() {
            Some(out) => out,
            None => self.open(width, height)?,
        };
        let out = self.out.insert(out);
        if (width, height) != (out.width, out.height) {
            return Err(NodeError::InvalidInput {
                node: NAME,
                reason: format!(
                    "frame is {width}x{height} but {} is {}x{}",
                    self.path.display(),
                    out.width,
                    out.height
                ),
            });
        }
        let (y, u, v) = yuv_planes(frame.pixels().data().as_slice(), width, height);
        let written = out.encoder.write_frame(&y4m::Frame::new([y, u, v], None));
        written.map_err(|e| self.encode_error(e))?;
        self.frames += 1;
        Ok(())
    }

    fn shutdown(&mut self) {
        // Dropping the encoder closes the file.
        self.out = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::frame::make_frame;

    #[test]
    fn a_frame_of_another_size_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.y4m");
        let mut sink = Y4mSink::new(&path, (30, 1));
        let mut out = Emitter::new();
        let frame = |w, h| {
            let len = PixelFormat::Gray8.frame_len(w, h).expect("bounded");
            Value::from(make_frame("t", vec![0; len], w, h, PixelFormat::Gray8, 0).expect("frame"))
        };
        sink.process(frame(4, 2), &mut out).expect("first frame");
        assert!(matches!(
            sink.process(frame(2, 4), &mut out),
            Err(NodeError::InvalidInput { .. })
        ));
        assert!(matches!(
            sink.process(Value::Null, &mut out),
            Err(NodeError::WrongInput { .. })
        ));
        assert_eq!(sink.frames_written(), 1);
        assert!(out.is_empty());
        sink.shutdown();
        let bytes = std::fs::read(&path).expect("read");
        assert!(bytes.starts_with(b"YUV4MPEG2 W4 H2 F30:1 C420\nFRAME\n"));
        assert_eq!(bytes.len(), 27 + 6 + 12);
    }
}
