//! The transport under the frames: a connected, non-blocking `SOCK_SEQPACKET` unix socket
//! pair, made by the host before it spawns the child, which inherits its end.
//!
//! - [`Socket`]: sends and receives datagrams without ever waiting.
//! - [`Outgoing`]: frames leave at once when the peer has room, else wait in a bounded queue
//!   that a flusher thread sends as room appears; no sender ever sleeps.
//! - [`Incoming`]: takes whatever datagrams wait and hands out the frames they complete,
//!   checking every length against this side's limits before use.
//! - [`Doorbell`] and [`Wake`]: a shared page of hints so that receivers poll memory instead
//!   of the socket, and an eventfd to wake a sleeping reader.
//!
//! The frames themselves (postcard envelopes) are the protocol's business: this layer sees
//! bytes.

mod datagram;
mod doorbell;
mod incoming;
mod outgoing;
mod socket;

pub use datagram::{Assembler, FramingError, MAX_DATAGRAM, OnFrame};
pub use doorbell::{ASIDE_TIMEOUT, Doorbell, Wake};
pub use incoming::{Drained, InFrame, Incoming, ReadError};
pub use outgoing::{Outgoing, OutgoingLimits, Queued, SendError, SharedFd};
pub use socket::{MAX_FDS_PER_DATAGRAM, Ready, Received, Sent, Socket, wait_readable};
