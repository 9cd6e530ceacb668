//! `video.y4m_source`: frames from a YUV4MPEG2 (`.y4m`) file.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use troupe_value::PixelFormat;

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, NodeError, Source, SourceState};
use crate::params::{ParamKind, ParamSpec, Params};
use crate::video::frame::make_frame;
use crate::video::y4m_planes::Layout;

const NAME: &str = "video.y4m_source";

const PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "path",
    kind: ParamKind::Path,
    default: None,
    doc: "The .y4m file to read.",
}];

/// The `video.y4m_source` node type.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Reads video frames from a Y4M file (4:2:0 as yuv420p, mono as gray8).",
    is_source: true,
    params: PARAMS,
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let path = params.str("path", None)?;
    Ok(Built::Source(Box::new(Y4mSource::open(path)?)))
}

/// Reads a Y4M file frame by frame.
///
/// 8-bit 4:2:0 files give [`PixelFormat::Yuv420p`] frames as stored and mono files
/// [`PixelFormat::Gray8`]; 4:2:2 and 4:4:4 chroma is averaged down to 4:2:0 and 10/12-bit
/// samples are rounded to 8 bits. Frame `n` is stamped `n / frame rate` seconds. A file
/// that ends inside a frame is a [`NodeError::Format`] error, not a shorter stream.
#[derive(Debug)]
pub struct Y4mSource {
    path: PathBuf,
    decoder: Decoder,
    layout: Layout,
    width: u32,
    height: u32,
    /// Frames per second as `num / den`, both positive.
    rate: (u64, u64),
    frames_read: u64,
    frame_count: Option<u64>,
    done: bool,
}

struct Decoder {
    inner: y4m::Decoder<Counting<BufReader<File>>>,
    /// Bytes the decoder has read so far.
    position: Arc<AtomicU64>,
    file_len: u64,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("position", &self.position.load(Ordering::Relaxed))
            .field("file_len", &self.file_len)
            .finish_non_exhaustive()
    }
}

/// Counts the bytes read through it, so that the end of the file can be told from a cut.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Y4mSource {
    /// Opens `path` and reads its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Y4mSource, NodeError> {
        let path = path.as_ref().to_owned();
        let io = |source| NodeError::Io {
            node: NAME,
            path: path.display().to_string(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let position = Arc::new(AtomicU64::new(0));
        let reader = Counting {
            inner: BufReader::new(file),
            count: position.clone(),
        };
        let inner = y4m::Decoder::new(reader).map_err(|e| decode_error(&path, "header", e))?;
        let format = |reason: String| NodeError::Format {
            node: NAME,
            reason: format!("{}: {reason}", path.display()),
        };
        let colorspace = inner.get_colorspace();
        let layout = Layout::of(colorspace)
            .ok_or_else(|| format(format!("unsupported colourspace {colorspace:?}")))?;
        let size = |n: usize| u32::try_from(n).map_err(|_| format(format!("frame size {n}")));
        let (width, height) = (size(inner.get_width())?, size(inner.get_height())?);
        let ratio = inner.get_framerate();
        if ratio.num == 0 || ratio.den == 0 {
            return Err(format(format!("frame rate {ratio} is not positive")));
        }
        let rate = (ratio.num as u64, ratio.den as u64);
        // Frames carry no parameters in the common case; then every frame takes the same
        // room and the count follows from the file length.
        let header_len = position.load(Ordering::Relaxed);
        let frame_count = layout
            .file_frame_len(width, height)
            .and_then(|n| n.checked_add(b"FRAME\n".len() as u64))
            .filter(|_| file_len >= header_len)
            .and_then(|per_frame| {
                let body = file_len - header_len;
                body.is_multiple_of(per_frame).then_some(body / per_frame)
            });
        Ok(Y4mSource {
            path,
            decoder: Decoder {
                inner,
                position,
                file_len,
            },
            layout,
            width,
            height,
            rate,
            frames_read: 0,
            frame_count,
            done: false,
        })
    }

    /// Width of the frames, in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height of the frames, in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Pixel format of the frames this source emits.
    pub fn format(&self) -> PixelFormat {
        self.layout.format()
    }

    /// Frames per second, as numerator and denominator.
    pub fn frame_rate(&self) -> (u64, u64) {
        self.rate
    }

    /// Number of frames in the file, when every frame has the same size on disk.
    pub fn frame_count(&self) -> Option<u64> {
        self.frame_count
    }

    fn timestamp_ns(&self, frame: u64) -> u64 {
        let (num, den) = self.rate;
        let ns = u128::from(frame)
            .saturating_mul(u128::from(den))
            .saturating_mul(1_000_000_000)
            / u128::from(num);
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

impl Source for Y4mSource {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn pull(&mut self, out: &mut Emitter) -> Result<SourceState, NodeError> {
        if self.done {
            return Ok(SourceState::Done);
        }
        let start = self.decoder.position.load(Ordering::Relaxed);
        let pixels = match self.decoder.inner.read_frame() {
            Ok(frame) => self.layout.to_pixels(
                [
                    frame.get_y_plane(),
                    frame.get_u_plane(),
                    frame.get_v_plane(),
                ],
                self.width,
                self.height,
            ),
            Err(y4m::Error::EOF) if start == self.decoder.file_len => {
                self.done = true;
                return Ok(SourceState::Done);
            }
            Err(e) => {
                self.done = true;
                let what = format!("frame {}", self.frames_read);
                return Err(decode_error(&self.path, &what, e));
            }
        };
        let ts = self.timestamp_ns(self.frames_read);
        let frame = make_frame(NAME, pixels, self.width, self.height, self.format(), ts)?;
        self.frames_read += 1;
        out.emit(frame);
        Ok(SourceState::More)
    }

    fn media_seconds(&self) -> Option<f64> {
        let (num, den) = self.rate;
        self.frame_count.map(|n| n as f64 * den as f64 / num as f64)
    }
}

fn decode_error(path: &Path, what: &str, e: y4m::Error) -> NodeError {
    let path_text = path.display().to_string();
    match e {
        y4m::Error::IoError(source) => NodeError::Io {
            node: NAME,
            path: path_text,
            source,
        },
        y4m::Error::EOF => NodeError::Format {
            node: NAME,
            reason: format!("{path_text}: {what} is cut short"),
        },
        other => NodeError::Format {
            node: NAME,
            reason: format!("{path_text}: {what}: {other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_and_bad_headers_are_typed_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(matches!(
            Y4mSource::open(dir.path().join("none.y4m")),
            Err(NodeError::Io { .. })
        ));
        let bad = dir.path().join("bad.y4m");
        std::fs::write(&bad, b"NOT A Y4M FILE\n").expect("write");
        assert!(matches!(
            Y4mSource::open(&bad),
            Err(NodeError::Format { .. })
        ));
        std::fs::write(&bad, b"YUV4MPEG2 W4 H2 F0:1 C420\n").expect("write");
        assert!(matches!(
            Y4mSource::open(&bad),
            Err(NodeError::Format { .. })
        ));
    }

    #[test]
    fn a_cut_frame_is_an_error_and_a_clean_end_is_done() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cut.y4m");
        let mut bytes = b"YUV4MPEG2 W2 H2 F25:1 Cmono\nFRAME\n".to_vec();
        bytes.extend([1, 2, 3, 4]);
        bytes.extend(b"FRAME\n\x05\x06");
        std::fs::write(&path, &bytes).expect("write");
        let mut source = Y4mSource::open(&path).expect("open");
        assert_eq!(source.frame_count(), None);
        let mut out = Emitter::new();
        assert_eq!(source.pull(&mut out).expect("first"), SourceState::More);
        assert!(matches!(
            source.pull(&mut out),
            Err(NodeError::Format { .. })
        ));

        std::fs::write(&path, &bytes[..bytes.len() - 8]).expect("write");
        let mut source = Y4mSource::open(&path).expect("open");
        assert_eq!(source.frame_count(), Some(1));
        assert_eq!(source.media_seconds(), Some(0.04));
        assert_eq!(source.pull(&mut out).expect("first"), SourceState::More);
        assert_eq!(source.pull(&mut out).expect("end"), SourceState::Done);
        let frame = out.items()[1].as_video().expect("a frame");
        assert_eq!(frame.format(), PixelFormat::Gray8);
        assert_eq!(frame.pixels().data().as_slice(), &[1, 2, 3, 4]);
    }
}
