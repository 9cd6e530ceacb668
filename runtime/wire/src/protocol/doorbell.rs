//! A shared-memory hint that a message is waiting on a connection.
//!
//! Polling an ipc-channel receiver costs system calls (`fcntl` twice and a `recvmsg` per
//! try), several microseconds a round trip on a small virtual machine. A [`Doorbell`] is
//! one page both ends map, holding one counter per direction: a sender bumps its direction's
//! counter after each message it put on the channel, and a receiver that has taken fewer
//! messages than the counter says knows a `recv` will not block. So a receiver polls plain
//! memory, and calls into the kernel only to take a message that is there or, once its
//! polling time is over, to sleep.
//!
//! The counter is only ever a hint. A sender that does not ring (or rings late) costs the
//! receiver its polling time, never a message: after [`spin`] the receiver blocks in the
//! channel's `recv` as it would without a doorbell, and a hang-up is seen there.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::spin;
use crate::shm::{self, ShmError, ShmRegion};

/// Environment variable naming the doorbell region a child opens (set by the host).
pub const DOORBELL_ENV: &str = "TROUPE_DOORBELL";

/// Bytes between the two counters: each sits on its own cache line.
const LANE_STRIDE: usize = 128;
/// Bytes the region must hold.
const REGION_LEN: usize = 2 * LANE_STRIDE;

/// Which end of the connection a doorbell belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Rings lane 0, listens on lane 1.
    Host,
    /// Rings lane 1, listens on lane 0.
    Child,
}

/// One end's view of a connection's doorbell: it rings the peer's lane after each send and
/// checks its own lane before receiving. Cheap to share between the threads of one end.
#[derive(Debug)]
pub struct Doorbell {
    region: Arc<ShmRegion>,
    end: End,
    /// Messages this end has taken off the channel (only its one receiving thread at a time
    /// counts them).
    taken: AtomicU64,
}

impl Doorbell {
    /// Creates a doorbell for a new connection: the host's end. The child opens the other end
    /// by [`Doorbell::name`].
    ///
    /// # Errors
    /// The region could not be created in `/dev/shm`.
    pub fn create() -> Result<Doorbell, ShmError> {
        Ok(Doorbell {
            region: ShmRegion::create(REGION_LEN)?,
            end: End::Host,
            taken: AtomicU64::new(0),
        })
    }

    /// Opens the child's end of the doorbell the host created as `name`.
    ///
    /// # Errors
    /// The region cannot be opened, or is too small to be a doorbell.
    pub fn open(name: &str) -> Result<Doorbell, ShmError> {
        let region = shm::open(name)?;
        if region.len() < REGION_LEN {
            return Err(ShmError::OutOfBounds {
                name: name.to_owned(),
                offset: 0,
                len: REGION_LEN,
                region_len: region.len(),
            });
        }
        Ok(Doorbell {
            region,
            end: End::Child,
            taken: AtomicU64::new(0),
        })
    }

    /// The region's name, for the child's environment ([`DOORBELL_ENV`]).
    pub fn name(&self) -> &str {
        self.region.name()
    }

    /// Says a message was sent: call after each successful send on the channel.
    pub fn ring(&self) {
        let lane = match self.end {
            End::Host => 0,
            End::Child => 1,
        };
        self.lane(lane).fetch_add(1, Ordering::Release);
    }

    /// Whether a message this end has not taken yet is on the channel.
    pub fn has_mail(&self) -> bool {
        let lane = match self.end {
            End::Host => 1,
            End::Child => 0,
        };
        self.lane(lane).load(Ordering::Acquire) > self.taken.load(Ordering::Relaxed)
    }

    /// Counts a message taken off the channel without [`Doorbell::receive`] (e.g. a
    /// handshake read before the doorbell was in use).
    pub fn took(&self) {
        self.taken.fetch_add(1, Ordering::Relaxed);
    }

    /// Polls for up to [`spin`] (yielding the core between polls) until a message is
    /// waiting; says whether one is.
    pub fn wait(&self) -> bool {
        self.wait_unless(|| false)
    }

    /// [`Doorbell::wait`], giving up early (with `false`) as soon as `stop()` is true.
    pub fn wait_unless(&self, stop: impl Fn() -> bool) -> bool {
        if self.has_mail() {
            return true;
        }
        let until = Instant::now() + spin();
        while Instant::now() < until && !stop() {
            std::thread::yield_now();
            if self.has_mail() {
                return true;
            }
        }
        false
    }

    /// Receives the next message with `recv` (a blocking receive): [`Doorbell::wait`]s, then
    /// calls `recv`, which returns at once when the doorbell rang and otherwise sleeps in the
    /// kernel until a message or a hang-up comes.
    pub fn receive<T, E>(&self, recv: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        self.wait();
        let got = recv();
        if got.is_ok() {
            self.took();
        }
        got
    }

    fn lane(&self, lane: usize) -> &AtomicU64 {
        // SAFETY: the region is page-aligned and at least `REGION_LEN` bytes long (checked
        // on open), so the lane's offset is 8-byte aligned and in bounds; the counters are
        // only ever accessed atomically, by both processes, for as long as `self.region`
        // keeps the mapping alive.
        unsafe { AtomicU64::from_ptr(self.region.base().add(lane * LANE_STRIDE).cast()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_hears_the_other_ring_not_itself() {
        let host = Doorbell::create().expect("create");
        let child = Doorbell::open(host.name()).expect("open");
        assert!(!host.has_mail() && !child.has_mail());
        host.ring();
        assert!(child.has_mail());
        assert!(!host.has_mail());
        child.took();
        assert!(!child.has_mail());
        child.ring();
        child.ring();
        assert!(host.has_mail());
        let got: Result<u8, ()> = host.receive(|| Ok(1));
        assert_eq!(got, Ok(1));
        assert!(host.has_mail(), "one of two messages taken");
        let failed: Result<u8, ()> = host.receive(|| Err(()));
        assert!(failed.is_err());
        assert!(host.has_mail(), "a failed receive takes nothing");
    }

    #[test]
    fn a_region_too_small_is_refused() {
        let small = ShmRegion::create(16).expect("create");
        assert!(matches!(
            Doorbell::open(small.name()),
            Err(ShmError::OutOfBounds { .. })
        ));
    }
}
