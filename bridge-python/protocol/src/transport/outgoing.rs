//! The sending half of a connection: frames go out at once when the peer has room, and wait
//! in a bounded, counted queue when it has none. No sender ever sleeps.
//!
//! [`Outgoing::send`] is called from any thread (an actor's arbiter, a reader, a Python
//! thread). With nothing queued it sends the frame on the spot; a peer whose queue is full
//! (it stopped reading, or reads slower than frames come) makes the frame wait in this
//! side's queue instead, and a flusher thread ([`Outgoing::flush_when_writable`]) sends the
//! queue as the peer makes room, packing as many waiting frames as fit into each datagram.
//! Frames leave in the order `send` was called, each with the descriptors it carries
//! ([`Outgoing::send_with`]) on the datagram that starts it. A queue past its limit refuses
//! further frames with [`SendError::Full`], so a peer that stops reading costs this side at
//! most the limit.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use thiserror::Error;

use super::Doorbell;
use super::datagram::{
    BATCH, FIRST, FIRST_HEADER, LEN_PREFIX, MAX_BATCH_FRAMES, MAX_DATAGRAM, MORE, fits_in_batch,
};
use super::socket::{MAX_FDS_PER_DATAGRAM, Sent, Socket};

/// A descriptor a frame carries, kept open until the frame is sent.
pub type SharedFd = Arc<dyn AsFd + Send + Sync>;

/// How long the flusher sleeps in one wait for room before it looks again at whether the
/// connection closed.
const FLUSH_POLL: Duration = Duration::from_millis(100);

/// Why a frame was not sent or queued.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    /// The frame is larger than the peer accepts.
    #[error("frame of {len} bytes is larger than the limit of {max} bytes")]
    TooLarge {
        /// The frame's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer is not reading and the queue is at its limit.
    #[error("{queued} bytes already wait for a peer that is not reading (limit {limit})")]
    Full {
        /// Bytes waiting.
        queued: usize,
        /// The limit.
        limit: usize,
    },
    /// The connection is closed (the peer is gone, or this side closed it).
    #[error("the connection is closed")]
    Closed,
    /// The frame carries more descriptors than one datagram may.
    #[error("a frame carries {0} descriptors, more than the limit of {MAX_FDS_PER_DATAGRAM}")]
    TooManyFds(usize),
}

/// Bounds of an [`Outgoing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingLimits {
    /// The largest frame sent (the peer refuses larger ones).
    pub max_frame: usize,
    /// Bytes that may wait for the peer at once.
    pub max_queued_bytes: usize,
}

/// What waits in an [`Outgoing`] now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Queued {
    /// Frames waiting (a frame half sent counts).
    pub frames: usize,
    /// Their bytes.
    pub bytes: usize,
}

/// The sending half of one connection. Share it (`Arc`) between every thread that sends.
#[derive(Debug)]
pub struct Outgoing {
    socket: Arc<Socket>,
    limits: OutgoingLimits,
    state: Mutex<State>,
    /// Tells the flusher that frames wait, or that the connection closed.
    waiting: Condvar,
    doorbell: Option<Arc<Doorbell>>,
}

/// A frame waiting to be sent, with the descriptors it carries.
struct Out {
    bytes: Vec<u8>,
    fds: Vec<SharedFd>,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Out({} bytes, {} fds)", self.bytes.len(), self.fds.len())
    }
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Out>,
    bytes: usize,
    /// A frame too large for one datagram, partly sent: the bytes and how many went.
    piece: Option<(Vec<u8>, usize)>,
    closed: bool,
}

impl State {
    fn queued(&self) -> Queued {
        Queued {
            frames: self.frames.len() + usize::from(self.piece.is_some()),
            bytes: self.bytes,
        }
    }

    fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.piece.is_none()
    }

    fn close(&mut self) {
        self.closed = true;
        self.frames.clear();
        self.piece = None;
        self.bytes = 0;
    }
}

impl Outgoing {
    /// The sending half over `socket`; `doorbell`, when given, rings after every datagram.
    pub fn new(
        socket: Arc<Socket>,
        limits: OutgoingLimits,
        doorbell: Option<Arc<Doorbell>>,
    ) -> Outgoing {
        Outgoing {
            socket,
            limits,
            state: Mutex::default(),
            waiting: Condvar::new(),
            doorbell,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `frame` now, or queues it behind the frames already waiting. Never waits.
    ///
    /// # Errors
    /// The frame is too large, the queue is full, or the connection is closed; the frame is
    /// dropped.
    pub fn send(&self, frame: Vec<u8>) -> Result<(), SendError> {
        self.send_with(frame, Vec::new())
    }

    /// [`Outgoing::send`] of a frame carrying `fds` (at most [`MAX_FDS_PER_DATAGRAM`]), which
    /// stay open until it is sent.
    ///
    /// # Errors
    /// As [`Outgoing::send`], and too many descriptors.
    pub fn send_with(&self, frame: Vec<u8>, fds: Vec<SharedFd>) -> Result<(), SendError> {
        if fds.len() > MAX_FDS_PER_DATAGRAM {
            return Err(SendError::TooManyFds(fds.len()));
        }
        if frame.len() > self.limits.max_frame {
            return Err(SendError::TooLarge {
                len: frame.len(),
                max: self.limits.max_frame,
            });
        }
        let mut state = self.lock();
        if state.closed {
            return Err(SendError::Closed);
        }
        if !state.is_empty() && state.bytes + frame.len() > self.limits.max_queued_bytes {
            return Err(SendError::Full {
                queued: state.bytes,
                limit: self.limits.max_queued_bytes,
            });
        }
        let was_empty = state.is_empty();
        state.bytes += frame.len();
        state.frames.push_back(Out { bytes: frame, fds });
        self.flush_locked(&mut state);
        if state.closed {
            return Err(SendError::Closed);
        }
        if was_empty && !state.is_empty() {
            self.waiting.notify_one();
        }
        Ok(())
    }

    /// What waits now.
    pub fn queued(&self) -> Queued {
        self.lock().queued()
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Closes the connection's sending half: what waits is dropped, later sends fail, and the
    /// flusher returns.
    pub fn close(&self) {
        self.lock().close();
        self.waiting.notify_all();
    }

    /// The flusher: sends what waits whenever the peer has room, until the connection
    /// closes. Run it on a thread of its own; it sleeps while nothing waits.
    pub fn flush_when_writable(&self) {
        loop {
            {
                let mut state = self.lock();
                while state.is_empty() && !state.closed {
                    state = self.waiting.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                if state.closed {
                    return;
                }
            }
            match self.socket.wait(false, &[], Some(FLUSH_POLL)) {
                Ok(ready) if ready.hung_up && !ready.socket => {
                    self.lock().close();
                    return;
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(FLUSH_POLL),
            }
            let mut state = self.lock();
            self.flush_locked(&mut state);
        }
    }

    /// Sends waiting frames until the peer has no room or nothing waits.
    fn flush_locked(&self, state: &mut State) {
        while !state.closed && !state.is_empty() {
            let sent = match state.piece.take() {
                Some((frame, done)) => self.send_piece(state, frame, done),
                None => self.send_front(state),
            };
            match sent {
                Ok(true) => {
                    if let Some(doorbell) = &self.doorbell {
                        doorbell.ring();
                    }
                }
                Ok(false) => return,
                Err(_) => {
                    state.close();
                    return;
                }
            }
        }
    }

    /// Sends the frames at the front of the queue: as one batch when the first fits in a
    /// datagram (a frame carrying descriptors only ever first in its batch), else the first
    /// piece of it. `Ok(false)`: the peer has no room.
    fn send_front(&self, state: &mut State) -> io::Result<bool> {
        let Some(first) = state.frames.front() else {
            return Ok(true);
        };
        if !fits_in_batch(first.bytes.len()) {
            let Some(frame) = state.frames.pop_front() else {
                return Ok(true);
            };
            let len = frame.bytes.len();
            let mut header = [0u8; FIRST_HEADER];
            header[0] = FIRST;
            header[1..].copy_from_slice(&(len as u64).to_le_bytes());
            let take = MAX_DATAGRAM - FIRST_HEADER;
            let parts = [IoSlice::new(&header), IoSlice::new(&frame.bytes[..take])];
            if self.socket.send(&parts, &borrowed(&frame.fds))? == Sent::WouldBlock {
                state.frames.push_front(frame);
                return Ok(false);
            }
            state.bytes -= take;
            state.piece = Some((frame.bytes, take));
            return Ok(true);
        }
        let mut count = 0;
        let mut size = 1;
        for frame in &state.frames {
            if count == MAX_BATCH_FRAMES
                || size + LEN_PREFIX + frame.bytes.len() > MAX_DATAGRAM
                || (count > 0 && !frame.fds.is_empty())
            {
                break;
            }
            size += LEN_PREFIX + frame.bytes.len();
            count += 1;
        }
        let prefixes: Vec<[u8; LEN_PREFIX]> = state
            .frames
            .iter()
            .take(count)
            .map(|f| (f.bytes.len() as u32).to_le_bytes())
            .collect();
        let mut parts = Vec::with_capacity(1 + 2 * count);
        parts.push(IoSlice::new(&[BATCH]));
        for (frame, prefix) in state.frames.iter().zip(&prefixes) {
            parts.push(IoSlice::new(prefix));
            parts.push(IoSlice::new(&frame.bytes));
        }
        let fds = borrowed(&first.fds);
        if self.socket.send(&parts, &fds)? == Sent::WouldBlock {
            return Ok(false);
        }
        drop(parts);
        drop(fds);
        for frame in state.frames.drain(..count) {
            state.bytes -= frame.bytes.len();
        }
        Ok(true)
    }

    /// Sends the next piece of a large frame of which `done` bytes went.
    fn send_piece(&self, state: &mut State, frame: Vec<u8>, done: usize) -> io::Result<bool> {
        let take = (frame.len() - done).min(MAX_DATAGRAM - 1);
        let parts = [
            IoSlice::new(&[MORE]),
            IoSlice::new(&frame[done..done + take]),
        ];
        if self.socket.send(&parts, &[])? == Sent::WouldBlock {
            state.piece = Some((frame, done));
            return Ok(false);
        }
        state.bytes -= take;
        if done + take < frame.len() {
            state.piece = Some((frame, done + take));
        }
        Ok(true)
    }
}

/// The descriptors of `fds`, borrowed for one send.
fn borrowed(fds: &[SharedFd]) -> Vec<BorrowedFd<'_>> {
    fds.iter().map(|fd| fd.as_fd()).collect()
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use super::super::datagram::Assembler;
    use super::super::socket::Received;
    use super::*;

    fn limits() -> OutgoingLimits {
        OutgoingLimits {
            max_frame: 1 << 24,
            max_queued_bytes: 1 << 22,
        }
    }

    fn drain(socket: &Socket, assembler: &mut Assembler, frames: &mut Vec<Vec<u8>>) -> bool {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut any = false;
        while let Ok(Received::Datagram(n, fds)) = socket.recv(&mut buf) {
            any = true;
            let _ = assembler
                .push(&buf[..n], fds, &mut |f, _| {
                    frames.push(f.to_vec());
                    ControlFlow::Continue(())
                })
                .expect("well formed");
        }
        any
    }

    #[test]
    fn a_peer_that_stops_reading_fills_the_queue_not_the_sender() {
        let (a, b) = Socket::pair().expect("pair");
        let out = Outgoing::new(Arc::new(a), limits(), None);
        let frame = vec![1u8; 16 * 1024];
        let mut sent = 0;
        loop {
            match out.send(frame.clone()) {
                Ok(()) => sent += 1,
                Err(SendError::Full { .. }) => break,
                Err(e) => panic!("{e}"),
            }
            assert!(sent < 10_000, "the queue never filled");
        }
        assert!(out.queued().bytes <= limits().max_queued_bytes);
        assert!(out.queued().frames > 0);
        // The reader comes back: everything arrives, in order, once a flusher runs.
        let out = Arc::new(out);
        let flusher = {
            let out = out.clone();
            std::thread::spawn(move || out.flush_when_writable())
        };
        let mut assembler = Assembler::new(1 << 24);
        let mut frames = Vec::new();
        while frames.len() < sent {
            if !drain(&b, &mut assembler, &mut frames) {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        assert_eq!(frames.len(), sent);
        assert!(frames.iter().all(|f| *f == frame));
        out.close();
        flusher.join().expect("flusher ends on close");
    }

    #[test]
    fn large_frames_travel_in_pieces_between_small_ones_in_order() {
        let (a, b) = Socket::pair().expect("pair");
        let out = Arc::new(Outgoing::new(Arc::new(a), limits(), None));
        let flusher = {
            let out = out.clone();
            std::thread::spawn(move || out.flush_when_writable())
        };
        let big: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let expected = vec![
            b"a".to_vec(),
            big.clone(),
            b"b".to_vec(),
            big,
            b"c".to_vec(),
        ];
        for frame in &expected {
            out.send(frame.clone()).expect("send");
        }
        let mut assembler = Assembler::new(1 << 24);
        let mut frames = Vec::new();
        while frames.len() < expected.len() {
            if !drain(&b, &mut assembler, &mut frames) {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        assert_eq!(frames, expected);
        out.close();
        flusher.join().expect("flusher ends");
    }

    #[test]
    fn limits_and_a_gone_peer_are_errors() {
        let (a, b) = Socket::pair().expect("pair");
        let out = Outgoing::new(
            Arc::new(a),
            OutgoingLimits {
                max_frame: 10,
                max_queued_bytes: 100,
            },
            None,
        );
        assert_eq!(
            out.send(vec![0; 11]),
            Err(SendError::TooLarge { len: 11, max: 10 })
        );
        drop(b);
        assert_eq!(out.send(vec![0; 3]), Err(SendError::Closed));
        assert!(out.is_closed());
    }
}
