//! The host's sending end of a child connection.

use ipc_channel::IpcError;
use ipc_channel::ipc::{IpcBytesReceiver, IpcBytesSender};
use serde::Deserialize;
use std::sync::Arc;
use thiserror::Error;
use troupe_wire::device::DevicePlane;
use troupe_wire::pool::{Releases, SlotKey};
use troupe_wire::protocol::{Doorbell, Envelope, FrameError, Outbox, SHM_THRESHOLD, ToChild};
use troupe_wire::{DecodeError, encode};

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
///
/// It also owns the connection's buffer bookkeeping (see [`Outbox`]): frames from the child
/// are decoded with [`Link::open`], and a thread sends the child a `ReleaseSlots` frame
/// whenever the host has dropped buffers of the child's pool.
#[derive(Debug)]
pub struct Link {
    sender: IpcBytesSender,
    outbox: Outbox,
    doorbell: Arc<Doorbell>,
}

impl Link {
    pub(crate) fn new(
        sender: IpcBytesSender,
        doorbell: Arc<Doorbell>,
        devices: Arc<dyn DevicePlane>,
    ) -> std::io::Result<Link> {
        let outbox = Outbox::new(SHM_THRESHOLD).with_devices(devices);
        let releases = outbox.releases().clone();
        let releaser = sender.clone();
        let bell = doorbell.clone();
        std::thread::Builder::new()
            .name("troupe-release".into())
            .spawn(move || send_releases(&releases, &releaser, &bell))?;
        Ok(Link {
            sender,
            outbox,
            doorbell,
        })
    }

    /// Seals and sends `frame`.
    pub fn send(&self, frame: ToChild) -> Result<(), LinkError> {
        let bytes = self.outbox.seal(frame)?;
        self.sender.send(&bytes).map_err(LinkError::Closed)?;
        self.doorbell.ring();
        Ok(())
    }

    /// The next frame from the child on `receiver` (the one [`launch`](super::launch) gave
    /// with this link): the doorbell is polled for a moment, then the channel waited on in
    /// the kernel (see [`Doorbell::receive`]).
    pub fn recv(&self, receiver: &IpcBytesReceiver) -> Result<Vec<u8>, IpcError> {
        self.doorbell.receive(|| receiver.recv())
    }

    /// The connection's doorbell: it rings when the child sent a frame.
    pub fn doorbell(&self) -> &Doorbell {
        &self.doorbell
    }

    /// Decodes a frame from the child; buffers of the child's pool in it release their slot
    /// to the child when their last clone drops.
    pub fn open<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
    ) -> Result<Envelope<T>, DecodeError> {
        self.outbox.open(bytes)
    }

    /// The child has mapped the buffers of envelope `hold`.
    pub fn release(&self, hold: u64) {
        self.outbox.release(hold);
    }

    /// The child dropped its buffers of these slots of the host's pool.
    pub fn release_slots(&self, slots: &[SlotKey]) {
        self.outbox.release_slots(slots);
    }

    /// How many slots of the host's pool the child holds.
    pub fn lent(&self) -> usize {
        self.outbox.lent()
    }

    /// Drops every held buffer and every slot lent to the child (the child is gone).
    pub fn clear(&self) {
        self.outbox.clear();
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Ends the release thread, which holds a sender: the child must see the hang-up.
        self.outbox.clear();
    }
}

/// Sends the releases the host owes the child until the connection ends.
fn send_releases(releases: &Releases, sender: &IpcBytesSender, doorbell: &Doorbell) {
    while let Some(slots) = releases.wait() {
        let frame = Envelope {
            hold: None,
            body: ToChild::ReleaseSlots { slots },
            released: Vec::new(),
            exports_released: releases.take_exports(),
        };
        let Ok(bytes) = encode(&frame) else {
            continue;
        };
        if sender.send(&bytes).is_err() {
            break;
        }
        doorbell.ring();
    }
}
