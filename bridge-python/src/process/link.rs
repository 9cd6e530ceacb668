//! The host's sending end of a child connection.

use std::time::Instant;

use ipc_channel::ipc::{IpcBytesReceiver, IpcBytesSender};
use ipc_channel::{IpcError, TryRecvError};
use thiserror::Error;
use troupe_wire::protocol::{FrameError, Outbox, SHM_THRESHOLD, ToChild};

/// Why a frame could not be sent.
#[derive(Debug, Error)]
pub enum LinkError {
    /// The frame could not be encoded (or its large buffers put in shared memory).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The channel is broken: the child is gone.
    #[error("the child is gone: {0}")]
    Closed(#[source] std::io::Error),
}

/// Sends frames to a child; any thread may send (each frame is one message on the channel).
#[derive(Debug)]
pub struct Link {
    sender: IpcBytesSender,
    outbox: Outbox,
}

impl Link {
    pub(crate) fn new(sender: IpcBytesSender) -> Link {
        Link {
            sender,
            outbox: Outbox::new(SHM_THRESHOLD),
        }
    }

    /// Seals and sends `frame`.
    pub fn send(&self, frame: ToChild) -> Result<(), LinkError> {
        let bytes = self.outbox.seal(frame)?;
        self.sender.send(&bytes).map_err(LinkError::Closed)
    }

    /// The child has mapped the buffers of envelope `hold`.
    pub fn release(&self, hold: u64) {
        self.outbox.release(hold);
    }

    /// Drops every held buffer (the child is gone).
    pub fn clear(&self) {
        self.outbox.clear();
    }
}

/// The next message: polled for up to [`spin`](troupe_wire::protocol::spin) (see there
/// why), then waited for in the kernel.
pub fn recv_spinning(receiver: &IpcBytesReceiver) -> Result<Vec<u8>, IpcError> {
    let until = Instant::now() + troupe_wire::protocol::spin();
    loop {
        match receiver.try_recv() {
            Ok(bytes) => return Ok(bytes),
            Err(TryRecvError::IpcError(e)) => return Err(e),
            Err(TryRecvError::Empty) if Instant::now() < until => std::thread::yield_now(),
            Err(TryRecvError::Empty) => return receiver.recv(),
        }
    }
}
