//! One end of a connection: a connected, non-blocking `SOCK_SEQPACKET` unix socket.
//!
//! Every operation returns at once: a send the peer has no room for says so
//! ([`Sent::WouldBlock`]) instead of sleeping, and a receive with nothing waiting says
//! [`Received::Nothing`]. Waiting is explicit ([`wait`]), so no thread ever sleeps inside a
//! send or a receive because of what the peer does.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// File descriptors one datagram may carry (a frame's shared-memory regions); more is a
/// protocol error.
pub const MAX_FDS_PER_DATAGRAM: usize = 16;

/// What a send did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The whole datagram is on its way.
    All,
    /// The peer's queue is full: nothing was sent.
    WouldBlock,
}

/// What a receive found.
#[derive(Debug)]
pub enum Received {
    /// A datagram of this many bytes is at the start of the buffer, with the descriptors
    /// it carried.
    Datagram(usize, Vec<OwnedFd>),
    /// Nothing is waiting.
    Nothing,
    /// The peer has closed its end (or sent an empty datagram, which troupe never does).
    Closed,
    /// The peer sent a datagram larger than the buffer (its length), which troupe never
    /// does; its bytes are gone.
    Oversized(usize),
    /// The peer attached more than [`MAX_FDS_PER_DATAGRAM`] descriptors (or ones that were
    /// cut); those that came are closed.
    TooManyFds(usize),
}

/// A connected `SOCK_SEQPACKET` unix socket in non-blocking mode.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
}

impl Socket {
    /// A connected pair (close-on-exec, non-blocking): one end per side of a connection.
    ///
    /// # Errors
    /// The system refused to make the sockets.
    pub fn pair() -> io::Result<(Socket, Socket)> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )?;
        Ok((Socket { fd: a }, Socket { fd: b }))
    }

    /// Adopts an inherited descriptor: checks that it is a `SOCK_SEQPACKET` socket, and makes
    /// it non-blocking and close-on-exec.
    ///
    /// # Errors
    /// It is not a socket of that type, or its flags cannot be set.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Socket> {
        let kind = rustix::net::sockopt::socket_type(&fd)?;
        if kind != SocketType::SEQPACKET {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the descriptor is not a SOCK_SEQPACKET socket",
            ));
        }
        rustix::fs::fcntl_setfl(&fd, rustix::fs::OFlags::NONBLOCK)?;
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
        Ok(Socket { fd })
    }

    /// Sends one datagram made of `parts`, with `fds` attached, without waiting.
    ///
    /// # Errors
    /// The peer is gone (`BrokenPipe`, `ConnectionReset`) or the datagram is too large for
    /// the socket (`EMSGSIZE`), or more than [`MAX_FDS_PER_DATAGRAM`] descriptors are given.
    pub fn send(&self, parts: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<Sent> {
        if fds.len() > MAX_FDS_PER_DATAGRAM {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many descriptors for one datagram",
            ));
        }
        let mut space =
            [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_DATAGRAM))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(io::Error::other("no room for the descriptors"));
        }
        loop {
            match rustix::net::sendmsg(
                &self.fd,
                parts,
                &mut control,
                SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
            ) {
                Ok(_) => return Ok(Sent::All),
                Err(rustix::io::Errno::AGAIN) => return Ok(Sent::WouldBlock),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receives the next datagram into `buf`, without waiting.
    ///
    /// # Errors
    /// The system call failed for a reason other than the peer closing.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let mut space =
            [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_DATAGRAM))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let capacity = buf.len();
        let mut iov = [IoSliceMut::new(buf)];
        let got = loop {
            match rustix::net::recvmsg(
                &self.fd,
                &mut iov,
                &mut control,
                RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC | RecvFlags::TRUNC,
            ) {
                Ok(got) => break got,
                Err(rustix::io::Errno::AGAIN) => return Ok(Received::Nothing),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::CONNRESET) => return Ok(Received::Closed),
                Err(e) => return Err(e.into()),
            }
        };
        // Whatever descriptors came are owned (and so closed on every early return) here.
        let mut fds = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if got.flags.contains(ReturnFlags::CTRUNC) {
            return Ok(Received::TooManyFds(
                fds.len().max(MAX_FDS_PER_DATAGRAM + 1),
            ));
        }
        if got.flags.contains(ReturnFlags::TRUNC) || got.bytes > capacity {
            return Ok(Received::Oversized(got.bytes));
        }
        if got.bytes == 0 {
            return Ok(Received::Closed);
        }
        Ok(Received::Datagram(got.bytes, fds))
    }

    /// Waits until the socket is readable (`readable`) or writable (`!readable`), it hangs
    /// up, `extra` becomes readable, or `timeout` passes. Says which of them is ready.
    ///
    /// # Errors
    /// `poll` failed.
    pub fn wait(
        &self,
        readable: bool,
        extra: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> io::Result<Ready> {
        let interest = if readable {
            PollFlags::IN
        } else {
            PollFlags::OUT
        };
        let mut fds = Vec::with_capacity(1 + extra.len());
        fds.push(PollFd::from_borrowed_fd(self.fd.as_fd(), interest));
        for fd in extra {
            fds.push(PollFd::from_borrowed_fd(*fd, PollFlags::IN));
        }
        poll(&mut fds, timeout)?;
        let socket = fds[0].revents();
        Ok(Ready {
            socket: socket.intersects(interest),
            hung_up: socket.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL),
            extra: fds[1..].iter().map(|fd| !fd.revents().is_empty()).collect(),
        })
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Socket> for OwnedFd {
    fn from(socket: Socket) -> OwnedFd {
        socket.fd
    }
}

/// What [`Socket::wait`] or [`wait_readable`] saw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ready {
    /// The socket can be read (or written, for a write wait).
    pub socket: bool,
    /// The socket hung up or failed.
    pub hung_up: bool,
    /// Which of the extra descriptors are readable, in order.
    pub extra: Vec<bool>,
}

/// Waits until one of `fds` is readable or `timeout` passes; says which are.
///
/// # Errors
/// `poll` failed.
pub fn wait_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN))
        .collect();
    poll(&mut polled, timeout)?;
    Ok(polled.iter().map(|fd| !fd.revents().is_empty()).collect())
}

/// `poll`, retried on `EINTR` (with the full timeout again: callers loop on their own
/// deadlines).
fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> io::Result<usize> {
    let timeout = timeout.map(|t| Timespec {
        tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    loop {
        match rustix::event::poll(fds, timeout.as_ref()) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_carries_datagrams_whole_and_says_when_the_peer_is_full_or_gone() {
        let (a, b) = Socket::pair().expect("pair");
        let mut buf = [0u8; 16];
        assert!(matches!(b.recv(&mut buf), Ok(Received::Nothing)));
        assert_eq!(
            a.send(&[IoSlice::new(b"he"), IoSlice::new(b"llo")], &[])
                .expect("send"),
            Sent::All
        );
        assert!(matches!(b.recv(&mut buf), Ok(Received::Datagram(5, fds)) if fds.is_empty()));
        assert_eq!(&buf[..5], b"hello");
        // A peer that never reads fills up: the send says so and returns at once.
        let mut sent = 0;
        while a.send(&[IoSlice::new(&[7u8; 1024])], &[]).expect("send") == Sent::All {
            sent += 1;
            assert!(sent < 100_000, "the queue never filled");
        }
        assert!(
            b.wait(true, &[], Some(Duration::ZERO))
                .expect("wait")
                .socket
        );
        // Oversized datagrams are reported, not cut silently.
        let mut small = [0u8; 8];
        assert!(matches!(b.recv(&mut small), Ok(Received::Oversized(1024))));
        drop(b);
        assert!(a.send(&[IoSlice::new(b"x")], &[]).is_err());
    }

    #[test]
    fn descriptors_ride_with_their_datagram_and_too_many_are_refused() {
        let (a, b) = Socket::pair().expect("pair");
        let file = std::fs::File::open("/dev/null").expect("open");
        a.send(&[IoSlice::new(b"x")], &[file.as_fd(), file.as_fd()])
            .expect("send");
        let mut buf = [0u8; 4];
        match b.recv(&mut buf) {
            Ok(Received::Datagram(1, fds)) => assert_eq!(fds.len(), 2),
            other => panic!("{other:?}"),
        }
        let many = vec![file.as_fd(); MAX_FDS_PER_DATAGRAM + 1];
        assert!(a.send(&[IoSlice::new(b"x")], &many).is_err());
    }

    #[test]
    fn closing_is_seen_as_closed() {
        let (a, b) = Socket::pair().expect("pair");
        drop(a);
        let mut buf = [0u8; 4];
        assert!(matches!(b.recv(&mut buf), Ok(Received::Closed)));
        assert!(
            b.wait(true, &[], Some(Duration::ZERO))
                .expect("wait")
                .hung_up
        );
    }

    #[test]
    fn only_seqpacket_descriptors_are_adopted() {
        let (a, _b) = Socket::pair().expect("pair");
        assert!(Socket::from_fd(OwnedFd::from(a)).is_ok());
        let file = std::fs::File::open("/dev/null").expect("open");
        assert!(Socket::from_fd(OwnedFd::from(file)).is_err());
    }
}
