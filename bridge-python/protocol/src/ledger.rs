//! A connection's buffer ledger: sealing frames and opening the peer's, and keeping account
//! of what was lent to the peer, what is held for it and what is owed to it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Deserialize;
use thiserror::Error;

use troupe_shm::pool::{Pool, PoolError, SlotKey, with_releases};
use troupe_value::device::{DeviceError, DevicePlane, ExportId, with_plane};
use troupe_value::{Buffer, DecodeError, EncodeError, decode, encode};

use crate::{Envelope, Frame, Releases, devices};

/// Why a frame could not be sealed.
#[derive(Debug, Error)]
pub enum FrameError {
    /// postcard refused the frame.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A large buffer could not be moved into the shared-memory pool.
    #[error("cannot move a buffer into shared memory: {0}")]
    SharedMemory(#[from] PoolError),
    /// A device array could not be exported to the peer.
    #[error("cannot send a device array: {0}")]
    Device(#[from] DeviceError),
}

/// One end of a connection's buffer ledger: encodes frames, decodes the peer's, and keeps
/// account of the shared buffers between the two: what was lent to the peer (pool slots),
/// what is held for it (regions until it answers `Release`), and what is owed to it
/// ([`Ledger::releases`]), so that every shared buffer lives as long as the peer may read it.
///
/// Sending (`threshold` bytes or more; smaller buffers always travel inline, copied):
/// - an owned buffer is copied once into a slot of the process's [`Pool`];
/// - a slot of this process's pool travels as a descriptor, without copying;
/// - a slot of a peer's pool travels as a descriptor too: back to its creator (which
///   resolves it to its own slot), or on to a third process (which maps the creator's
///   region); this side lends a clone of it, so the creator's slot stays alive for as long
///   as the third process holds it;
/// - a slice of a shared region this process created travels as a descriptor, held until
///   the peer answers `Release { hold }`; one of a region another process created is copied
///   into the pool.
///
/// Each pool descriptor sent is one reference the peer holds: the ledger keeps the slot
/// until the peer releases it ([`Ledger::release_slots`], a `ReleaseSlots` frame), or until
/// the connection ends ([`Ledger::clear`]). Decoding with [`Ledger::open`] makes the peer's
/// pool descriptors into buffers that, when their last clone drops, queue a release in
/// [`Ledger::releases`] for the connection to send.
///
/// With a [`DevicePlane`] ([`Ledger::with_devices`]) it carries device arrays too: sealing
/// exports each one (the plane keeps it until the peer releases it, or [`Ledger::clear`]),
/// opening imports the peer's and applies the releases the peer sent (see
/// `docs/semantics.md`, *CUDA arrays*).
#[derive(Debug)]
pub struct Ledger {
    threshold: usize,
    next_hold: AtomicU64,
    held: Mutex<HashMap<u64, Vec<Buffer>>>,
    /// Pool slots the peer holds references to: the slot and how many descriptors of it
    /// the peer has not released.
    lent: Mutex<HashMap<SlotKey, (Buffer, usize)>>,
    releases: Arc<Releases>,
    devices: Option<Arc<dyn DevicePlane>>,
}

/// What sealing one frame lent the peer (see [`Ledger::seal_with_receipt`]).
#[derive(Debug)]
#[must_use]
pub struct Receipt {
    hold: Option<u64>,
    slots: Vec<SlotKey>,
    exported: Vec<ExportId>,
    /// Releases owed to the peer that rode on the frame.
    released: Vec<SlotKey>,
    exports_released: Vec<ExportId>,
}

enum Staged {
    /// Travels inline.
    Inline,
    /// A region of ours, held until `Release { hold }`.
    Hold(Buffer),
    /// A pool slot lent to the peer.
    Lent(SlotKey, Buffer),
}

impl Ledger {
    /// A ledger moving buffers of `threshold` bytes or more into shared memory.
    pub fn new(threshold: usize) -> Ledger {
        Ledger {
            threshold: threshold.max(1),
            next_hold: AtomicU64::new(1),
            held: Mutex::default(),
            lent: Mutex::default(),
            releases: Arc::default(),
            devices: None,
        }
    }

    /// This ledger, carrying device arrays through `plane` (one plane per connection).
    pub fn with_devices(mut self, plane: Arc<dyn DevicePlane>) -> Ledger {
        self.devices = Some(plane);
        self
    }

    /// The connection's device plane, when it carries device arrays.
    pub fn devices(&self) -> Option<&Arc<dyn DevicePlane>> {
        self.devices.as_ref()
    }

    /// Encodes `frame` in an [`Envelope`], moving its large buffers into shared memory.
    pub fn seal<T: Frame>(&self, frame: T) -> Result<Vec<u8>, FrameError> {
        self.seal_with_receipt(frame).map(|(bytes, _)| bytes)
    }

    /// [`Ledger::seal`], with a [`Receipt`] of what the peer is now expected to release, to
    /// [`Ledger::unseal`] if the frame is never sent.
    pub fn seal_with_receipt<T: Frame>(
        &self,
        mut frame: T,
    ) -> Result<(Vec<u8>, Receipt), FrameError> {
        let mut held = Vec::new();
        let mut lent = Vec::new();
        let mut failed = None;
        frame.for_each_value_mut(&mut |value| {
            value.for_each_buffer_mut(&mut |buffer| {
                if failed.is_none() {
                    match self.stage(buffer) {
                        Ok(Staged::Inline) => {}
                        Ok(Staged::Hold(buffer)) => held.push(buffer),
                        Ok(Staged::Lent(key, buffer)) => lent.push((key, buffer)),
                        Err(e) => failed = Some(e),
                    }
                }
            })
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        let exported = devices::export_all(self.devices.as_ref(), &mut frame)?;
        let keys: Vec<SlotKey> = lent.iter().map(|(key, _)| key.clone()).collect();
        self.lend(lent);
        let hold = (!held.is_empty()).then(|| {
            let hold = self.next_hold.fetch_add(1, Ordering::Relaxed);
            self.lock_held().insert(hold, held);
            hold
        });
        // Releases owed to the peer ride along (see `Envelope::released`).
        let envelope = Envelope {
            hold,
            body: &frame,
            released: self.releases.take(),
            exports_released: self.releases.take_exports(),
        };
        let encoded = encode(&envelope);
        let receipt = Receipt {
            hold,
            slots: keys,
            exported,
            released: envelope.released,
            exports_released: envelope.exports_released,
        };
        match encoded {
            Ok(bytes) => Ok((bytes, receipt)),
            Err(e) => {
                self.unseal(receipt);
                Err(e.into())
            }
        }
    }

    /// Forgets what a sealed frame that was never sent lent the peer, and owes the peer again
    /// the releases it would have carried.
    pub fn unseal(&self, receipt: Receipt) {
        if let Some(hold) = receipt.hold {
            self.release(hold);
        }
        self.release_slots(&receipt.slots);
        if let Some(plane) = &self.devices {
            plane.released(&receipt.exported);
        }
        self.releases
            .restore(receipt.released, receipt.exports_released);
    }

    fn stage(&self, buffer: &mut Buffer) -> Result<Staged, PoolError> {
        let slot = buffer.slot();
        let shared = buffer.shared_region();
        if buffer.len() < self.threshold {
            if shared.is_some_and(|(region, _)| slot.is_some() || !region.is_owner()) {
                *buffer = Buffer::copy_from_slice(buffer.as_slice());
            }
            return Ok(Staged::Inline);
        }
        let forward = match (slot, shared) {
            // Ours, the peer's own, or a third process's: a descriptor in every case. The
            // clone lent below keeps the slot (and so the third process's reference) alive
            // until this peer releases it.
            (Some(_), _) => true,
            (None, Some((region, _))) if region.is_owner() => {
                return Ok(Staged::Hold(buffer.clone()));
            }
            (None, _) => false,
        };
        if !forward {
            *buffer = Buffer::from(Pool::global().copy_from_slice(buffer.as_slice())?);
        }
        let key = buffer.pool_key().ok_or(PoolError::Empty)?;
        Ok(Staged::Lent(key, buffer.clone()))
    }

    fn lend(&self, slots: Vec<(SlotKey, Buffer)>) {
        if slots.is_empty() {
            return;
        }
        let mut lent = self.lock_lent();
        for (key, buffer) in slots {
            lent.entry(key).or_insert((buffer, 0)).1 += 1;
        }
    }

    /// Decodes an envelope the peer sealed; its pool descriptors become buffers that
    /// release their slot to the peer through [`Ledger::releases`] when they drop, and its
    /// device arrays are imported with the plane (their releases go the same way). The
    /// caller answers `Release` for `hold` once it has the frame.
    pub fn open<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
    ) -> Result<Envelope<T>, DecodeError> {
        let envelope: Envelope<T> = with_releases(&self.releases, || {
            with_plane(self.devices.as_ref(), &self.releases, || decode(bytes))
        })?;
        if !envelope.released.is_empty() {
            self.release_slots(&envelope.released);
        }
        if let Some(plane) = &self.devices
            && !envelope.exports_released.is_empty()
        {
            plane.released(&envelope.exports_released);
        }
        Ok(envelope)
    }

    /// The releases this side owes the peer, for the connection to send as `ReleaseSlots`.
    pub fn releases(&self) -> &Arc<Releases> {
        &self.releases
    }

    /// The peer has mapped the regions of envelope `hold`: stop holding them. Returns whether
    /// anything was held under that number.
    pub fn release(&self, hold: u64) -> bool {
        let released = self.lock_held().remove(&hold);
        released.is_some()
    }

    /// The peer dropped one reference to each slot in `keys`; a slot whose last reference
    /// went is no longer kept for it. Returns how many keys matched a lent slot (the others
    /// are ignored: a peer can send anything).
    pub fn release_slots(&self, keys: &[SlotKey]) -> usize {
        let mut freed = Vec::new();
        let mut matched = 0;
        {
            let mut lent = self.lock_lent();
            for key in keys {
                if let Some(entry) = lent.get_mut(key) {
                    matched += 1;
                    entry.1 -= 1;
                    if entry.1 == 0 {
                        freed.extend(lent.remove(key));
                    }
                }
            }
        }
        // Slots return to the pool (or are released to their creator) outside the lock.
        drop(freed);
        matched
    }

    /// How many envelopes' buffers are held.
    pub fn held(&self) -> usize {
        self.lock_held().len()
    }

    /// How many pool slots the peer holds references to.
    pub fn lent(&self) -> usize {
        self.lock_lent().len()
    }

    /// The peer is gone: drops every held buffer, lent slot and device export, and stops
    /// queueing releases for it.
    pub fn clear(&self) {
        self.releases.close();
        if let Some(plane) = &self.devices {
            plane.peer_gone();
        }
        let held = std::mem::take(&mut *self.lock_held());
        let lent = std::mem::take(&mut *self.lock_lent());
        drop((held, lent));
    }

    fn lock_held(&self) -> MutexGuard<'_, HashMap<u64, Vec<Buffer>>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_lent(&self) -> MutexGuard<'_, HashMap<SlotKey, (Buffer, usize)>> {
        self.lent.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Envelope<()> {
    /// Decodes an envelope sealed by [`Ledger::seal`], outside any connection: pool
    /// descriptors of a peer release nothing when they drop. Connections use
    /// [`Ledger::open`]. The caller answers `Release` for `hold` once it has the frame.
    pub fn open<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<Envelope<T>, DecodeError> {
        decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use troupe_shm::ShmRegion;
    use troupe_shm::pool::{SlotReleases, resolve};

    use troupe_value::{Array, Map, Value};

    use super::*;
    use crate::{CallFrame, ToChild, ToHost};

    fn call(args: Vec<Value>) -> ToChild {
        ToChild::Call(CallFrame {
            id: 7,
            method: "f".into(),
            args,
            kwargs: Map::new(),
        })
    }

    #[test]
    fn small_frames_travel_inline_and_hold_nothing() {
        let ledger = Ledger::new(1024);
        let bytes = ledger.seal(call(vec![Value::from("hi")])).unwrap();
        let envelope: Envelope<ToChild> = Envelope::open(&bytes).unwrap();
        assert_eq!(envelope.hold, None);
        assert_eq!(envelope.body, call(vec![Value::from("hi")]));
        assert_eq!(ledger.held(), 0);
    }

    fn args(frame: ToChild) -> Vec<Value> {
        match frame {
            ToChild::Call(call) => call.args,
            other => panic!("{other:?}"),
        }
    }

    fn data(value: &Value) -> &Buffer {
        match value {
            Value::Array(array) => array.data(),
            Value::Bytes(bytes) => bytes,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn large_buffers_are_copied_once_into_the_pool_and_lent_until_released() {
        let (host, child) = (Ledger::new(1024), Ledger::new(1024));
        let big = Array::from_vec(vec![1.5f32; 4096]);
        let sent = call(vec![
            Value::Array(big.clone()),
            Value::Bytes(vec![9u8; 2048].into()),
        ]);
        let bytes = host.seal(sent.clone()).unwrap();
        assert!(bytes.len() < 512, "descriptors, not bytes: {}", bytes.len());
        let envelope: Envelope<ToChild> = child.open(&bytes).unwrap();
        assert_eq!(envelope.hold, None, "pool slots need no hold");
        assert_eq!(envelope.body, sent, "same values on the other side");
        assert_eq!(host.lent(), 2);
        let received = args(envelope.body);
        let keys: Vec<SlotKey> = received
            .iter()
            .map(|v| data(v).pool_key().unwrap())
            .collect();
        // Dropping the received values queues one release per descriptor.
        drop(received);
        let owed = child.releases().take();
        assert_eq!(owed.len(), 2);
        assert!(keys.iter().all(|k| owed.contains(k)));
        assert_eq!(host.release_slots(&owed), 2);
        assert_eq!(host.lent(), 0);
        assert_eq!(host.release_slots(&owed), 0, "garbage is ignored");
    }

    #[test]
    fn own_slots_travel_without_copying_and_come_back_as_the_same_slot() {
        let (host, child) = (Ledger::new(1024), Ledger::new(1024));
        let slot = Buffer::from(Pool::global().copy_from_slice(&[4u8; 8192]).unwrap());
        let ptr = slot.as_slice().as_ptr();
        let bytes = host.seal(call(vec![Value::Bytes(slot.clone())])).unwrap();
        let received = args(child.open::<ToChild>(&bytes).unwrap().body);
        assert_eq!(data(&received[0]).pool_key(), slot.pool_key());
        // The child echoes it through the same connection: a descriptor again, no copy.
        let echo = child
            .seal(ToHost::Reply {
                id: 7,
                result: Ok(received[0].clone()),
            })
            .unwrap();
        assert_eq!(child.lent(), 1);
        let ToHost::Reply {
            result: Ok(back), ..
        } = host.open::<ToHost>(&echo).unwrap().body
        else {
            unreachable!()
        };
        assert_eq!(data(&back).as_slice().as_ptr(), ptr, "the very same bytes");
        assert!(data(&back).in_own_pool());
        // Resolving its own slot, the host owes the child the release at once.
        let owed = host.releases().take();
        assert_eq!(child.release_slots(&owed), 1);
        assert_eq!(child.lent(), 0);
        drop(received);
        // (Host and "child" share one process here, so the child resolved the host's slot
        // as its own and released it at once; the release rode on the echo's envelope.)
        host.release_slots(&child.releases().take());
        assert_eq!(host.lent(), 0);
    }

    #[test]
    fn releases_ride_on_the_next_frame() {
        let (host, child) = (Ledger::new(1024), Ledger::new(1024));
        let region = ShmRegion::create_from(&[6u8; 8192]).unwrap();
        // The child resolved a slot of the host's and dropped it: it owes a release.
        let slot = with_releases(child.releases(), || resolve(region.name(), 0, 4096)).unwrap();
        let key = slot.key();
        drop(slot);
        assert_eq!(child.releases().pending(), 1);
        // Its next frame to the host carries it, and opening that frame applies it.
        let reply = child
            .seal(ToHost::Reply {
                id: 1,
                result: Ok(Value::Null),
            })
            .unwrap();
        assert_eq!(child.releases().pending(), 0);
        let envelope = host.open::<ToHost>(&reply).unwrap();
        assert_eq!(envelope.released, vec![key]);
    }

    #[test]
    fn a_frame_never_sent_gives_back_what_it_lent_and_the_releases_it_carried() {
        let ledger = Ledger::new(1024);
        let region = ShmRegion::create_from(&[6u8; 8192]).unwrap();
        let slot = with_releases(ledger.releases(), || resolve(region.name(), 0, 4096)).unwrap();
        drop(slot);
        assert_eq!(ledger.releases().pending(), 1);
        let (_, receipt) = ledger
            .seal_with_receipt(call(vec![Value::Bytes(vec![1u8; 4096].into())]))
            .unwrap();
        assert_eq!((ledger.lent(), ledger.releases().pending()), (1, 0));
        ledger.unseal(receipt);
        assert_eq!((ledger.lent(), ledger.releases().pending()), (0, 1));
    }

    #[test]
    fn a_peers_slot_travels_on_as_a_descriptor_and_is_held_until_released() {
        let (from_a, to_b) = (Ledger::new(1024), Ledger::new(1024));
        // A region of "peer A" (not one of this process's pools) and a slot of it.
        let region = ShmRegion::create_from(&[6u8; 8192]).unwrap();
        let slot = with_releases(from_a.releases(), || resolve(region.name(), 0, 4096));
        let slot = Buffer::from(slot.unwrap());
        assert!(!slot.in_own_pool());
        // On to "peer B": the same slot, no copy, lent until B releases it.
        let to_b_frame = to_b.seal(call(vec![Value::Bytes(slot.clone())])).unwrap();
        assert_eq!(to_b.lent(), 1);
        let forwarded = args(Envelope::open::<ToChild>(&to_b_frame).unwrap().body);
        assert_eq!(data(&forwarded[0]).pool_key(), slot.pool_key(), "forwarded");
        assert_eq!(
            data(&forwarded[0]).as_slice().as_ptr(),
            slot.as_slice().as_ptr(),
            "the very same mapping"
        );
        let key = slot.pool_key().unwrap();
        drop(slot);
        drop(forwarded);
        // What this side still holds of A's slot goes back to A only once B released it.
        assert_eq!(from_a.releases().pending(), 0);
        assert_eq!(to_b.release_slots(&[key]), 1);
        assert_eq!(to_b.lent(), 0);
        assert_eq!(from_a.releases().pending(), 1);
    }

    #[test]
    fn clearing_reclaims_what_a_gone_peer_held() {
        let host = Ledger::new(1024);
        let sealed = host
            .seal(call(vec![Value::Bytes(vec![1u8; 4096].into())]))
            .unwrap();
        let sent = args(Envelope::open::<ToChild>(&sealed).unwrap().body);
        let key = data(&sent[0]).pool_key().unwrap();
        drop(sent);
        assert_eq!(host.lent(), 1);
        host.clear();
        assert_eq!(host.lent(), 0);
        // The slot went back to the pool: its descriptor no longer resolves.
        assert!(matches!(
            resolve(&key.region, key.offset, 4096),
            Err(PoolError::UnknownSlot { .. })
        ));
        // Releases owed to a gone peer are not queued.
        host.releases().release_slot(key);
        assert_eq!(host.releases().pending(), 0);
    }

    #[test]
    fn buffers_of_foreign_regions_are_copied_not_forwarded() {
        // A region another process made (written here as a plain file), opened by name.
        let name = format!("{}{}-foreign", troupe_shm::NAME_PREFIX, std::process::id());
        let path = std::path::Path::new("/dev/shm").join(&name);
        std::fs::write(&path, [3u8; 100]).unwrap();
        let foreign = troupe_shm::open(&name).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(!foreign.is_owner());
        let buffer = Buffer::shared(foreign, 0, 100).unwrap();
        let ledger = Ledger::new(1024);
        let bytes = ledger
            .seal(ToHost::Reply {
                id: 1,
                result: Ok(Value::Bytes(buffer)),
            })
            .unwrap();
        let envelope: Envelope<ToHost> = Envelope::open(&bytes).unwrap();
        let ToHost::Reply {
            result: Ok(Value::Bytes(received)),
            ..
        } = envelope.body
        else {
            unreachable!()
        };
        assert!(received.shared_region().is_none(), "small: inline copy");
        assert_eq!(received.as_slice(), &[3u8; 100][..]);
    }
}
