//! The host's end of a child connection.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use thiserror::Error;
use troupe_protocol::transport::{
    Doorbell, Drained, InFrame, Incoming, OnFrame, Outgoing, OutgoingLimits, Queued, ReadError,
    SendError, Socket, Wake,
};
use troupe_protocol::{Envelope, FrameError, Ledger, MAX_FRAME, Releases, SHM_THRESHOLD, ToChild};
use troupe_shm::pool::SlotKey;
use troupe_value::device::DevicePlane;
use troupe_value::{DecodeError, encode};

/// Why a frame was not sent.
#[derive(Debug, Error)]
pub enum LinkError {
    /// The frame could not be encoded (or its large buffers put in shared memory).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The connection refused it: too large, the child is not reading and the queue is full,
    /// or the child is gone.
    #[error(transparent)]
    Send(#[from] SendError),
}

/// Bounds of one connection, as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLimits {
    /// The largest frame either way.
    pub max_frame: usize,
    /// Bytes of calls that may wait for a child that is not reading; past it calls are
    /// refused (the child is not taking them).
    pub max_queued_bytes: usize,
    /// Bytes of everything (answers to the child's calls, acknowledgements, releases
    /// included) that may wait for it; past it the child is treated as broken.
    pub max_owed_bytes: usize,
}

impl Default for LinkLimits {
    fn default() -> Self {
        LinkLimits {
            max_frame: MAX_FRAME,
            max_queued_bytes: 64 << 20,
            max_owed_bytes: 256 << 20,
        }
    }
}

/// The host's end of one child connection: frames go out through a bounded queue that never
/// makes a sender wait ([`Outgoing`]); frames come in through [`Link::drain`], which one
/// thread at a time runs (the reader thread, or a caller polling for its answer). It also
/// owns the connection's buffer bookkeeping ([`Ledger`]): what the child was lent and what
/// the host owes it.
#[derive(Debug)]
pub struct Link {
    socket: Arc<Socket>,
    outgoing: Arc<Outgoing>,
    /// Only the calls, bounded by `max_queued_bytes`; everything else goes through `owed`.
    calls: OutgoingLimits,
    incoming: Mutex<Incoming>,
    ledger: Ledger,
    doorbell: Arc<Doorbell>,
    wake: Wake,
    /// Callers taking frames themselves now (see [`Link::begin_taking`]).
    takers: AtomicUsize,
}

impl Link {
    /// The host's end over `socket`, with the connection's `doorbell`, the reader's `wake`
    /// and the connection's device plane (none: it carries no device arrays); starts the
    /// threads that send what waits (when the child makes room) and the
    /// releases the host owes.
    ///
    /// # Errors
    /// A thread could not be started.
    pub(crate) fn new(
        socket: Socket,
        doorbell: Doorbell,
        wake: Wake,
        devices: Option<Arc<dyn DevicePlane>>,
        limits: LinkLimits,
    ) -> std::io::Result<Arc<Link>> {
        let socket = Arc::new(socket);
        let doorbell = Arc::new(doorbell);
        let outgoing = Arc::new(Outgoing::new(
            socket.clone(),
            OutgoingLimits {
                max_frame: limits.max_frame,
                max_queued_bytes: limits.max_owed_bytes,
            },
            Some(doorbell.clone()),
        ));
        let ledger = Ledger::new(SHM_THRESHOLD);
        let ledger = match devices {
            Some(plane) => ledger.with_devices(plane),
            None => ledger,
        };
        let link = Arc::new(Link {
            incoming: Mutex::new(Incoming::new(
                socket.clone(),
                limits.max_frame,
                Some(doorbell.clone()),
            )),
            socket,
            calls: OutgoingLimits {
                max_frame: limits.max_frame,
                max_queued_bytes: limits.max_queued_bytes,
            },
            outgoing: outgoing.clone(),
            ledger,
            doorbell,
            wake,
            takers: AtomicUsize::new(0),
        });
        std::thread::Builder::new()
            .name("troupe-flush".into())
            .spawn(move || outgoing.flush_when_writable())?;
        let releases = link.ledger.releases().clone();
        let sender = link.outgoing.clone();
        std::thread::Builder::new()
            .name("troupe-release".into())
            .spawn(move || send_releases(&releases, &sender))?;
        Ok(link)
    }

    /// Seals and sends a call: refused with [`SendError::Full`] while more than the calls'
    /// share of bytes waits for the child.
    ///
    /// # Errors
    /// See [`LinkError`]; nothing is sent, and nothing stays lent for it.
    pub fn send_call(&self, frame: ToChild) -> Result<(), LinkError> {
        let queued = self.outgoing.queued().bytes;
        if queued > self.calls.max_queued_bytes {
            return Err(SendError::Full {
                queued,
                limit: self.calls.max_queued_bytes,
            }
            .into());
        }
        self.send(frame)
    }

    /// Seals and sends any frame (answers, cancels, acknowledgements), bounded only by the
    /// connection's total.
    ///
    /// # Errors
    /// See [`LinkError`]; nothing is sent, and nothing stays lent for it.
    pub fn send(&self, frame: ToChild) -> Result<(), LinkError> {
        let (sealed, receipt) = self.ledger.seal_with_receipt(frame)?;
        let fds = sealed.fds();
        // The rest of `sealed` (the device arrays it names) drops after the frame is queued:
        // an import's release must not overtake the frame that echoes it.
        if let Err(e) = self.outgoing.send_with(sealed.bytes, fds) {
            self.ledger.unseal(receipt);
            return Err(e.into());
        }
        Ok(())
    }

    /// What waits to be sent to the child now.
    pub fn queued(&self) -> Queued {
        self.outgoing.queued()
    }

    /// Takes up to `budget` waiting datagrams and calls `frame` with each frame, in order.
    /// Waits for the receiving half if another thread holds it.
    ///
    /// # Errors
    /// The child closed the connection or broke the framing.
    pub fn drain(&self, budget: usize, frame: &mut OnFrame<'_>) -> Result<Drained, ReadError> {
        self.lock_incoming().drain(budget, frame)
    }

    /// [`Link::drain`], unless another thread is draining now (then `None`).
    ///
    /// # Errors
    /// As [`Link::drain`].
    pub fn try_drain(
        &self,
        budget: usize,
        frame: &mut OnFrame<'_>,
    ) -> Option<Result<Drained, ReadError>> {
        let mut incoming = match self.incoming.try_lock() {
            Ok(incoming) => incoming,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(incoming.drain(budget, frame))
    }

    /// The next frame, if one has arrived (for the hello, before a reader runs).
    ///
    /// # Errors
    /// As [`Link::drain`].
    pub fn next_frame(&self) -> Result<Option<InFrame>, ReadError> {
        self.lock_incoming().try_next()
    }

    /// The next frame, waiting up to `timeout` for one: the doorbell is polled for a moment,
    /// then the socket slept on. For code that talks to a child on one thread (tests, the
    /// `python-floor` benchmark); an extension's session has its reader instead.
    ///
    /// # Errors
    /// As [`Link::drain`].
    pub fn wait_frame(&self, timeout: Duration) -> Result<Option<InFrame>, ReadError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.next_frame()? {
                return Ok(Some(frame));
            }
            if self.doorbell.wait_unless(|| false) {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let _ = self.socket.wait(true, &[], Some(deadline - now));
        }
    }

    fn lock_incoming(&self) -> MutexGuard<'_, Incoming> {
        self.incoming.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The socket, to wait on.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The connection's doorbell: it rings when the child sent a datagram.
    pub fn doorbell(&self) -> &Doorbell {
        &self.doorbell
    }

    /// The eventfd the host's reader sleeps on when it is aside.
    pub fn wake(&self) -> &Wake {
        &self.wake
    }

    /// A caller starts taking the child's frames itself ([`Link::try_drain`]); it calls
    /// [`Link::end_taking`] when it stops.
    pub fn begin_taking(&self) {
        self.takers.fetch_add(1, Ordering::SeqCst);
        self.doorbell.taker_began();
    }

    /// A caller stopped taking frames; `unanswered`: without the answer it waited for. When
    /// it was the last, the reader is woken if it has to take over (the answer is still to
    /// come, or a frame waits).
    pub fn end_taking(&self, unanswered: bool) {
        let left = self.takers.fetch_sub(1, Ordering::SeqCst) - 1;
        self.doorbell.taker_ended();
        if left == 0 && (unanswered || self.doorbell.has_mail()) {
            self.wake.wake();
        }
    }

    /// How many callers take frames now.
    pub fn takers(&self) -> usize {
        self.takers.load(Ordering::SeqCst)
    }

    /// Decodes a frame from the child, with the descriptors of the regions it handed over;
    /// buffers of the child's pool in it release their slot to the child when their last
    /// clone drops.
    ///
    /// # Errors
    /// The frame does not decode, or names memory the child was not handed (see
    /// [`Ledger::open`]).
    pub fn open<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
        fds: Vec<OwnedFd>,
    ) -> Result<Envelope<T>, DecodeError> {
        self.ledger.open(bytes, fds)
    }

    /// The child dropped its buffers of these slots of the host's pool.
    pub fn release_slots(&self, slots: &[SlotKey]) {
        self.ledger.release_slots(slots);
    }

    /// How many slots of the host's pool the child holds.
    pub fn lent(&self) -> usize {
        self.ledger.lent()
    }

    /// The child is gone: nothing more is sent, what waited is dropped, and every buffer it
    /// held and every slot lent to it comes back.
    pub fn close(&self) {
        self.outgoing.close();
        self.ledger.clear();
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.close();
    }
}

/// Sends the releases the host owes the child until the connection ends.
fn send_releases(releases: &Releases, outgoing: &Outgoing) {
    while let Some(slots) = releases.wait() {
        let exports = releases.take_exports();
        let frame = Envelope {
            body: ToChild::ReleaseSlots {
                slots: slots.clone(),
            },
            released: Vec::new(),
            exports_released: exports.clone(),
        };
        let bytes = match encode(&frame) {
            Ok(bytes) => bytes,
            Err(e) => {
                // Still owed: they ride on the next frame that encodes.
                tracing::warn!(error = %e, "cannot encode a release frame");
                releases.restore(slots, exports);
                // Not at once again: a failure that lasts must not spin this thread.
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        if outgoing.send(bytes).is_err() {
            break;
        }
    }
}
