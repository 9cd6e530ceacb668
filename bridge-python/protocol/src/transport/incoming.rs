//! The receiving half of a connection: takes whatever datagrams wait, without ever waiting
//! for more, and hands out the frames they complete, in order.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::Arc;

use thiserror::Error;

use super::Doorbell;
use super::datagram::{Assembler, FramingError, MAX_DATAGRAM};
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
    /// The peer attached file descriptors to a datagram (they were closed).
    #[error("the peer attached {0} file descriptors that were not asked for")]
    UnexpectedFds(usize),
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

/// The receiving half of one connection. One thread at a time drains it (hold it in a
/// mutex); frames are handed out in the order the peer sent them.
#[derive(Debug)]
pub struct Incoming {
    socket: Arc<Socket>,
    buf: Box<[u8]>,
    assembler: Assembler,
    doorbell: Option<Arc<Doorbell>>,
    /// Frames completed by [`Incoming::try_next`] and not handed out yet.
    ready: VecDeque<Vec<u8>>,
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
    pub fn drain(
        &mut self,
        budget: usize,
        frame: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<Drained, ReadError> {
        while let Some(bytes) = self.ready.pop_front() {
            if frame(&bytes).is_break() {
                return Ok(Drained::Stopped);
            }
        }
        for _ in 0..budget {
            let len = match self.socket.recv(&mut self.buf)? {
                Received::Datagram(len) => len,
                Received::Nothing => return Ok(Drained::Empty),
                Received::Closed => return Err(ReadError::Closed),
                Received::Oversized(len) => return Err(ReadError::Oversized(len)),
                Received::UnexpectedFds(n) => return Err(ReadError::UnexpectedFds(n)),
            };
            if let Some(doorbell) = &self.doorbell {
                doorbell.took();
            }
            if self.assembler.push(&self.buf[..len], frame)?.is_break() {
                return Ok(Drained::Stopped);
            }
        }
        Ok(Drained::Budget)
    }

    /// The next frame, if one can be completed from what waits now.
    ///
    /// # Errors
    /// As [`Incoming::drain`].
    pub fn try_next(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        loop {
            if let Some(bytes) = self.ready.pop_front() {
                return Ok(Some(bytes));
            }
            let mut completed = VecDeque::new();
            let drained = self.drain(1, &mut |bytes| {
                completed.push_back(bytes.to_vec());
                ControlFlow::Continue(())
            })?;
            self.ready = completed;
            if self.ready.is_empty() && drained == Drained::Empty {
                return Ok(None);
            }
        }
    }
}
