//! The receiving half of a connection: takes whatever datagrams wait, without ever waiting
//! for more, and hands out the frames they complete, in order, each with the descriptors it
//! carried.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use thiserror::Error;

use super::Doorbell;
use super::datagram::{Assembler, FramingError, MAX_DATAGRAM, OnFrame};
use super::socket::{Received, Socket};

/// Why the connection cannot be read any more.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The peer closed its end.
    #[error("the peer closed the connection")]
    Closed,
    /// The peer's datagrams do not make frames.
    #[error("malformed datagram: {0}")]
    Framing(#[from] FramingError),
    /// The peer sent a datagram larger than any it may send.
    #[error("datagram of {0} bytes is larger than the limit")]
    Oversized(usize),
    /// The peer attached more file descriptors to a datagram than it may (they were closed).
    #[error("the peer attached {0} file descriptors to one datagram, more than allowed")]
    TooManyFds(usize),
    /// The system call failed.
    #[error("reading the connection failed: {0}")]
    Io(#[from] std::io::Error),
}

/// How a [`Incoming::drain`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Nothing more waits on the socket.
    Empty,
    /// It took its budget of datagrams; more may wait.
    Budget,
    /// The frame handler asked to stop.
    Stopped,
}

/// A frame as received: its bytes and the descriptors it carried.
#[derive(Debug)]
pub struct InFrame {
    /// The frame's bytes.
    pub bytes: Vec<u8>,
    /// The descriptors it carried (its shared-memory regions), owned here.
    pub fds: Vec<OwnedFd>,
}

/// The receiving half of one connection. One thread at a time drains it (hold it in a
/// mutex); frames are handed out in the order the peer sent them.
#[derive(Debug)]
pub struct Incoming {
    socket: Arc<Socket>,
    buf: Box<[u8]>,
    assembler: Assembler,
    doorbell: Option<Arc<Doorbell>>,
    /// Frames completed by [`Incoming::try_next`] and not handed out yet.
    ready: VecDeque<InFrame>,
}

impl Incoming {
    /// The receiving half over `socket`, refusing frames above `max_frame` bytes; each
    /// datagram taken is counted on `doorbell` when given.
    pub fn new(socket: Arc<Socket>, max_frame: usize, doorbell: Option<Arc<Doorbell>>) -> Incoming {
        Incoming {
            socket,
            buf: vec![0; MAX_DATAGRAM].into_boxed_slice(),
            assembler: Assembler::new(max_frame),
            doorbell,
            ready: VecDeque::new(),
        }
    }

    /// The socket, to wait on.
    pub fn socket(&self) -> &Arc<Socket> {
        &self.socket
    }

    /// Takes up to `budget` waiting datagrams and calls `frame` with each frame they complete,
    /// until nothing waits, the budget is spent, or `frame` breaks. Never waits.
    ///
    /// # Errors
    /// The peer closed the connection or broke the framing: nothing more can be read.
    pub fn drain(&mut self, budget: usize, frame: &mut OnFrame<'_>) -> Result<Drained, ReadError> {
        while let Some(ready) = self.ready.pop_front() {
            if frame(&ready.bytes, ready.fds).is_break() {
                return Ok(Drained::Stopped);
            }
        }
        for _ in 0..budget {
            let (len, fds) = match self.socket.recv(&mut self.buf)? {
                Received::Datagram(len, fds) => (len, fds),
                Received::Nothing => return Ok(Drained::Empty),
                Received::Closed => return Err(ReadError::Closed),
                Received::Oversized(len) => return Err(ReadError::Oversized(len)),
                Received::TooManyFds(n) => return Err(ReadError::TooManyFds(n)),
            };
            if let Some(doorbell) = &self.doorbell {
                doorbell.took();
            }
            if self
                .assembler
                .push(&self.buf[..len], fds, frame)?
                .is_break()
            {
                return Ok(Drained::Stopped);
            }
        }
        Ok(Drained::Budget)
    }

    /// The next frame, if one can be completed from what waits now.
    ///
    /// # Errors
    /// As [`Incoming::drain`].
    pub fn try_next(&mut self) -> Result<Option<InFrame>, ReadError> {
        loop {
            if let Some(ready) = self.ready.pop_front() {
                return Ok(Some(ready));
            }
            let mut completed = VecDeque::new();
            let drained = self.drain(1, &mut |bytes, fds| {
                completed.push_back(InFrame {
                    bytes: bytes.to_vec(),
                    fds,
                });
                ControlFlow::Continue(())
            })?;
            self.ready = completed;
            if self.ready.is_empty() && drained == Drained::Empty {
                return Ok(None);
            }
        }
    }
}
