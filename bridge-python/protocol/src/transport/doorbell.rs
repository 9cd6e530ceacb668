//! A shared page that hints that datagrams wait on a connection, so that receivers poll
//! memory instead of making system calls.
//!
//! The host makes the page (an anonymous, sealed `memfd`: nobody can shrink it under the
//! other's mapping) and hands its descriptor to the child at spawn. It holds one counter per
//! direction: a sender bumps its direction's counter after each datagram it put on the
//! socket, and a receiver that has taken fewer datagrams than the counter says knows a
//! receive will find something.
//!
//! A third word lets the child wake the host's reader only when it has to. While callers on
//! the host take the child's frames themselves, the host's reader thread steps *aside* (it
//! sleeps on a [`Wake`] instead of the socket, so a busy connection costs it no wake-ups);
//! the word says it is aside and how many callers take frames. A child that rings while the
//! reader is aside and nobody takes wakes the reader through the [`Wake`] it was given.
//!
//! Everything in the page is a hint, never trusted: the peer can write any value there. A
//! counter that lies costs the receiver a receive that finds nothing, or its polling time;
//! a child that never wakes the host's reader only delays its own frames (the reader looks
//! on its own within [`ASIDE_TIMEOUT`]). Datagrams always travel on the socket, where a
//! hang-up is seen.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memmap2::MmapRaw;
use rustix::fs::{MemfdFlags, SealFlags};

use crate::spin;

/// Bytes between the words: each sits on its own cache line.
const LANE_STRIDE: usize = 128;
/// The host's ring counter, the child's, and the host reader's aside word.
const HOST_RING: usize = 0;
const CHILD_RING: usize = LANE_STRIDE;
const ASIDE_WORD: usize = 2 * LANE_STRIDE;
/// Bytes of the page.
const PAGE_LEN: usize = 4096;
/// Bit 0 of the aside word: the host's reader is aside; the bits above count takers.
const ASIDE: u32 = 1;
const TAKER: u32 = 2;

/// How long the host's reader stays aside at most before it looks at the socket itself.
pub const ASIDE_TIMEOUT: Duration = Duration::from_millis(5);

/// Which end of the connection a doorbell belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Rings the host counter, listens to the child's.
    Host,
    /// Rings the child counter, listens to the host's; wakes the host's reader.
    Child,
}

/// An eventfd: one thread sleeps on it (with [`Socket::wait`](super::Socket::wait) or
/// [`wait_readable`](super::wait_readable)), others wake it.
#[derive(Debug)]
pub struct Wake {
    fd: OwnedFd,
}

impl Wake {
    /// A fresh eventfd (close-on-exec, non-blocking).
    ///
    /// # Errors
    /// The system refused to make one.
    pub fn new() -> io::Result<Wake> {
        let fd = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        Ok(Wake { fd })
    }

    /// Adopts an inherited eventfd (made non-blocking and close-on-exec).
    ///
    /// # Errors
    /// Its flags cannot be set.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Wake> {
        rustix::fs::fcntl_setfl(&fd, rustix::fs::OFlags::NONBLOCK)?;
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
        Ok(Wake { fd })
    }

    /// Another descriptor of the same eventfd (to hand to a child).
    ///
    /// # Errors
    /// `dup` failed.
    pub fn duplicate(&self) -> io::Result<OwnedFd> {
        self.fd.try_clone()
    }

    /// Wakes the sleeper (a no-op when it is already due to wake).
    pub fn wake(&self) {
        let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
    }

    /// Clears pending wakes.
    pub fn clear(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut buf);
    }
}

impl AsFd for Wake {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// One end's view of a connection's doorbell. Cheap to share between the threads of one end.
#[derive(Debug)]
pub struct Doorbell {
    map: MmapRaw,
    end: End,
    /// Datagrams this end has taken off the socket (only one thread at a time counts).
    taken: AtomicU64,
    /// The child's end: how it wakes the host's reader.
    wake_host: Option<Wake>,
}

impl Doorbell {
    /// Creates a doorbell for a new connection: the host's end, and the page's descriptor to
    /// hand to the child ([`Doorbell::adopt`]).
    ///
    /// # Errors
    /// The page could not be made, sized, sealed or mapped.
    pub fn create() -> io::Result<(Doorbell, OwnedFd)> {
        let fd = rustix::fs::memfd_create(
            "troupe-doorbell",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        rustix::fs::ftruncate(&fd, PAGE_LEN as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
        let file = File::from(fd);
        let map = MmapRaw::map_raw(&file)?;
        let doorbell = Doorbell {
            map,
            end: End::Host,
            taken: AtomicU64::new(0),
            wake_host: None,
        };
        Ok((doorbell, OwnedFd::from(file)))
    }

    /// The child's end of the page the host made; `wake_host` wakes the host's reader when
    /// it is aside.
    ///
    /// # Errors
    /// The descriptor is not a page of the right size, or cannot be mapped.
    pub fn adopt(fd: OwnedFd, wake_host: Option<Wake>) -> io::Result<Doorbell> {
        let file = File::from(fd);
        let len = file.metadata()?.len();
        if len < PAGE_LEN as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the doorbell page has {len} bytes, not {PAGE_LEN}"),
            ));
        }
        let map = MmapRaw::map_raw(&file)?;
        Ok(Doorbell {
            map,
            end: End::Child,
            taken: AtomicU64::new(0),
            wake_host,
        })
    }

    fn word64(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: the mapping is page-aligned and at least `PAGE_LEN` bytes long (checked
        // when adopted, and sealed against shrinking by the host that made it), so the
        // offset is 8-byte aligned and in bounds; both processes only ever access the words
        // atomically, and the mapping lives as long as `self`.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(offset).cast()) }
    }

    fn aside_word(&self) -> &AtomicU32 {
        // SAFETY: as in `word64`, for a 4-byte-aligned word.
        unsafe { AtomicU32::from_ptr(self.map.as_mut_ptr().add(ASIDE_WORD).cast()) }
    }

    fn ring_lane(&self) -> &AtomicU64 {
        self.word64(match self.end {
            End::Host => HOST_RING,
            End::Child => CHILD_RING,
        })
    }

    fn mail_lane(&self) -> &AtomicU64 {
        self.word64(match self.end {
            End::Host => CHILD_RING,
            End::Child => HOST_RING,
        })
    }

    /// Says a datagram was sent: call after each one put on the socket. The child's end also
    /// wakes the host's reader if it is aside with nobody taking frames.
    pub fn ring(&self) {
        self.ring_lane().fetch_add(1, Ordering::SeqCst);
        if let Some(wake) = &self.wake_host {
            let word = self.aside_word();
            if word.load(Ordering::SeqCst) == ASIDE
                && word
                    .compare_exchange(ASIDE, 0, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                wake.wake();
            }
        }
    }

    /// Whether a datagram this end has not taken yet waits (a hint).
    pub fn has_mail(&self) -> bool {
        self.mail_lane().load(Ordering::SeqCst) > self.taken.load(Ordering::Relaxed)
    }

    /// Counts a datagram taken off the socket.
    pub fn took(&self) {
        self.taken.fetch_add(1, Ordering::Relaxed);
    }

    /// Polls for up to [`spin`] (yielding the core between polls) until mail waits or
    /// `stop()` is true; says whether mail waits.
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

    /// Host: a caller started taking frames itself (mirrored for the child).
    pub fn taker_began(&self) {
        self.aside_word().fetch_add(TAKER, Ordering::SeqCst);
    }

    /// Host: a caller stopped taking frames (mirrored for the child).
    pub fn taker_ended(&self) {
        self.aside_word().fetch_sub(TAKER, Ordering::SeqCst);
    }

    /// Host reader: it goes aside (or comes back), for the child to know whether to wake it.
    pub fn set_aside(&self, aside: bool) {
        if aside {
            self.aside_word().fetch_or(ASIDE, Ordering::SeqCst);
        } else {
            self.aside_word().fetch_and(!ASIDE, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Doorbell, Doorbell, Wake) {
        let (host, page) = Doorbell::create().expect("create");
        let wake = Wake::new().expect("eventfd");
        let child_wake = Wake::from_fd(wake.duplicate().expect("dup")).expect("adopt");
        let child = Doorbell::adopt(page, Some(child_wake)).expect("adopt");
        (host, child, wake)
    }

    fn woken(wake: &Wake) -> bool {
        super::super::wait_readable(&[wake.as_fd()], Some(Duration::ZERO))
            .expect("poll")
            .first()
            .copied()
            .unwrap_or(false)
    }

    #[test]
    fn each_end_hears_the_other_ring_not_itself() {
        let (host, child, _) = pair();
        assert!(!host.has_mail() && !child.has_mail());
        host.ring();
        assert!(child.has_mail());
        assert!(!host.has_mail());
        child.took();
        assert!(!child.has_mail());
        child.ring();
        child.ring();
        assert!(host.has_mail());
        host.took();
        assert!(host.has_mail(), "one of two taken");
    }

    #[test]
    fn the_child_wakes_the_host_reader_only_when_it_is_aside_and_nobody_takes() {
        let (host, child, wake) = pair();
        child.ring();
        assert!(!woken(&wake), "the reader is not aside");
        host.set_aside(true);
        host.taker_began();
        child.ring();
        assert!(!woken(&wake), "a caller takes the frames");
        host.taker_ended();
        child.ring();
        assert!(woken(&wake), "aside with nobody taking");
        wake.clear();
        child.ring();
        assert!(!woken(&wake), "one wake per going aside");
    }

    #[test]
    fn the_page_cannot_be_shrunk_under_the_host() {
        let (_host, page) = Doorbell::create().expect("create");
        assert!(rustix::fs::ftruncate(&page, 0).is_err());
        let small = rustix::fs::memfd_create("small", MemfdFlags::CLOEXEC).expect("memfd");
        assert!(Doorbell::adopt(small, None).is_err());
    }
}
