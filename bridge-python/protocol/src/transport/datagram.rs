//! How frames ride in datagrams.
//!
//! A datagram is at most [`MAX_DATAGRAM`] bytes and starts with a kind byte:
//!
//! | kind | then |
//! |---|---|
//! | `BATCH` (1) | one or more whole frames, each as `u32` length (little-endian) and bytes |
//! | `FIRST` (2) | `u64` length of a frame too large for one datagram, and its first bytes |
//! | `MORE` (3) | the next bytes of that frame; it is complete when its length is reached |
//!
//! The pieces of a large frame are never interleaved with other datagrams (one sender
//! sends them in a row). File descriptors a frame carries (its shared-memory regions) ride
//! on the datagram that starts it: a frame that carries any is the first of its batch, or
//! travels in pieces with them on its `FIRST`; the receiver gives a datagram's descriptors
//! to the first frame it starts. Everything about a datagram is checked before use: an unknown
//! kind, a length past the datagram or past the receiver's frame limit, a piece out of
//! place, are [`FramingError`]s; nothing is allocated on a peer's word beyond what it has
//! actually sent.

use std::ops::ControlFlow;
use std::os::fd::OwnedFd;

use thiserror::Error;

/// The largest datagram either side sends (and the receive buffer's size).
pub const MAX_DATAGRAM: usize = 64 * 1024;

pub(super) const BATCH: u8 = 1;
pub(super) const FIRST: u8 = 2;
pub(super) const MORE: u8 = 3;

/// Bytes before each frame in a batch.
pub(super) const LEN_PREFIX: usize = 4;
/// Bytes before the data in a `FIRST` datagram.
pub(super) const FIRST_HEADER: usize = 1 + 8;
/// Frames in one batch at most (each is two I/O slices).
pub(super) const MAX_BATCH_FRAMES: usize = 256;

/// Why datagrams from the peer do not make frames.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    /// The first byte names no datagram kind.
    #[error("unknown datagram kind {0}")]
    UnknownKind(u8),
    /// A length or header runs past the end of the datagram.
    #[error("datagram of {len} bytes ends inside a frame header or frame")]
    Truncated {
        /// The datagram's length.
        len: usize,
    },
    /// A frame is larger than this receiver accepts.
    #[error("frame of {len} bytes is larger than the limit of {max} bytes")]
    TooLarge {
        /// The frame's announced length.
        len: u64,
        /// The receiver's limit.
        max: usize,
    },
    /// A `MORE` piece came with no large frame open, or a whole frame came while one was.
    #[error("a piece of a large frame came out of order")]
    OutOfOrder,
    /// The pieces of a large frame carried more bytes than its announced length.
    #[error("the pieces of a frame carry more than its announced {len} bytes")]
    Overrun {
        /// The announced length.
        len: usize,
    },
    /// A `MORE` piece carried file descriptors (only a frame's first datagram may).
    #[error("a piece of a large frame carried file descriptors")]
    DescriptorsOnPiece,
}

/// What a completed frame is handed to: its bytes and the descriptors it carried; it says
/// whether to go on.
pub type OnFrame<'a> = dyn FnMut(&[u8], Vec<OwnedFd>) -> ControlFlow<()> + 'a;

/// Turns datagrams into frames, holding the pieces of a large frame between datagrams.
#[derive(Debug)]
pub struct Assembler {
    max_frame: usize,
    open: Option<Open>,
}

#[derive(Debug)]
struct Open {
    len: usize,
    bytes: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl Assembler {
    /// An assembler refusing frames larger than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Assembler {
        Assembler {
            max_frame,
            open: None,
        }
    }

    /// Feeds one datagram and the descriptors it carried; `frame` is called with each frame
    /// it completes, in order, until it breaks. Returns whether it broke.
    ///
    /// # Errors
    /// The datagram is malformed (see [`FramingError`]); the connection should end.
    pub fn push(
        &mut self,
        datagram: &[u8],
        fds: Vec<OwnedFd>,
        frame: &mut OnFrame<'_>,
    ) -> Result<ControlFlow<()>, FramingError> {
        let mut fds = Some(fds);
        let truncated = || FramingError::Truncated {
            len: datagram.len(),
        };
        let (&kind, rest) = datagram.split_first().ok_or_else(truncated)?;
        match kind {
            BATCH => {
                if self.open.is_some() {
                    return Err(FramingError::OutOfOrder);
                }
                let mut rest = rest;
                if rest.is_empty() {
                    return Err(truncated());
                }
                while !rest.is_empty() {
                    let (len, tail) = rest.split_at_checked(LEN_PREFIX).ok_or_else(truncated)?;
                    let len = u32::from_le_bytes(len.try_into().map_err(|_| truncated())?);
                    let len = usize::try_from(len).map_err(|_| truncated())?;
                    if len > self.max_frame {
                        return Err(FramingError::TooLarge {
                            len: len as u64,
                            max: self.max_frame,
                        });
                    }
                    let (bytes, tail) = tail.split_at_checked(len).ok_or_else(truncated)?;
                    if frame(bytes, fds.take().unwrap_or_default()).is_break() {
                        // The caller stops: frames after this one in the batch are dropped,
                        // as the connection ends.
                        return Ok(ControlFlow::Break(()));
                    }
                    rest = tail;
                }
                Ok(ControlFlow::Continue(()))
            }
            FIRST => {
                if self.open.is_some() {
                    return Err(FramingError::OutOfOrder);
                }
                let (len, data) = rest.split_at_checked(8).ok_or_else(truncated)?;
                let len = u64::from_le_bytes(len.try_into().map_err(|_| truncated())?);
                let len = match usize::try_from(len) {
                    Ok(len) if len <= self.max_frame => len,
                    _ => {
                        return Err(FramingError::TooLarge {
                            len,
                            max: self.max_frame,
                        });
                    }
                };
                if data.len() > len {
                    return Err(FramingError::Overrun { len });
                }
                let fds = fds.take().unwrap_or_default();
                if data.len() == len {
                    return Ok(frame(data, fds));
                }
                // Grows with what arrives, never by the announced length alone.
                self.open = Some(Open {
                    len,
                    bytes: data.to_vec(),
                    fds,
                });
                Ok(ControlFlow::Continue(()))
            }
            MORE => {
                if fds.as_ref().is_some_and(|fds| !fds.is_empty()) {
                    return Err(FramingError::DescriptorsOnPiece);
                }
                let open = self.open.as_mut().ok_or(FramingError::OutOfOrder)?;
                if open.bytes.len() + rest.len() > open.len {
                    return Err(FramingError::Overrun { len: open.len });
                }
                open.bytes.extend_from_slice(rest);
                if open.bytes.len() < open.len {
                    return Ok(ControlFlow::Continue(()));
                }
                let Some(done) = self.open.take() else {
                    return Err(FramingError::OutOfOrder);
                };
                Ok(frame(&done.bytes, done.fds))
            }
            other => Err(FramingError::UnknownKind(other)),
        }
    }

    /// Whether a large frame is half received.
    pub fn is_mid_frame(&self) -> bool {
        self.open.is_some()
    }
}

/// Whether a frame of `len` bytes travels whole in a batch (else in pieces).
pub(super) fn fits_in_batch(len: usize) -> bool {
    1 + LEN_PREFIX + len <= MAX_DATAGRAM
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(assembler: &mut Assembler, datagram: &[u8]) -> Result<Vec<Vec<u8>>, FramingError> {
        let mut frames = Vec::new();
        let _ = assembler.push(datagram, Vec::new(), &mut |f, _| {
            frames.push(f.to_vec());
            ControlFlow::Continue(())
        })?;
        Ok(frames)
    }

    fn batch(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![BATCH];
        for f in frames {
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    #[test]
    fn batches_and_pieces_make_the_frames_sent() {
        let mut a = Assembler::new(1 << 20);
        assert_eq!(
            collect(&mut a, &batch(&[b"one", b"", b"three"])),
            Ok(vec![b"one".to_vec(), vec![], b"three".to_vec()])
        );
        let mut first = vec![FIRST];
        first.extend_from_slice(&10u64.to_le_bytes());
        first.extend_from_slice(b"abcd");
        assert_eq!(collect(&mut a, &first), Ok(vec![]));
        assert!(a.is_mid_frame());
        assert_eq!(collect(&mut a, &[MORE, b'e', b'f']), Ok(vec![]));
        assert_eq!(
            collect(&mut a, &[MORE, b'g', b'h', b'i', b'j']),
            Ok(vec![b"abcdefghij".to_vec()])
        );
        assert!(!a.is_mid_frame());
    }

    #[test]
    fn malformed_datagrams_are_typed_errors() {
        let mut a = Assembler::new(100);
        assert_eq!(
            collect(&mut a, &[]),
            Err(FramingError::Truncated { len: 0 })
        );
        assert_eq!(collect(&mut a, &[9]), Err(FramingError::UnknownKind(9)));
        assert_eq!(
            collect(&mut a, &[BATCH]),
            Err(FramingError::Truncated { len: 1 })
        );
        assert_eq!(
            collect(&mut a, &[BATCH, 5, 0, 0, 0, 1]),
            Err(FramingError::Truncated { len: 6 })
        );
        assert_eq!(
            collect(&mut a, &[BATCH, 0xff, 0xff, 0xff, 0xff]),
            Err(FramingError::TooLarge {
                len: u32::MAX as u64,
                max: 100
            })
        );
        let mut huge = vec![FIRST];
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            collect(&mut a, &huge),
            Err(FramingError::TooLarge { .. })
        ));
        assert_eq!(collect(&mut a, &[MORE, 1]), Err(FramingError::OutOfOrder));
        let mut first = vec![FIRST];
        first.extend_from_slice(&4u64.to_le_bytes());
        first.push(1);
        assert_eq!(collect(&mut a, &first), Ok(vec![]));
        assert_eq!(
            collect(&mut a, &batch(&[b"x"])),
            Err(FramingError::OutOfOrder)
        );
        assert_eq!(
            collect(&mut a, &[MORE, 1, 2, 3, 4]),
            Err(FramingError::Overrun { len: 4 })
        );
    }

    #[test]
    fn a_break_stops_the_batch() {
        let mut a = Assembler::new(100);
        let mut seen = 0;
        let flow = a
            .push(&batch(&[b"a", b"b", b"c"]), Vec::new(), &mut |_, _| {
                seen += 1;
                if seen == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .expect("well formed");
        assert!(flow.is_break());
        assert_eq!(seen, 2);
    }
}
