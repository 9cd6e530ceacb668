//! A connection's buffer ledger: sealing frames and opening the peer's, and keeping account
//! of what was lent to the peer, what is held for it and what is owed to it.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Deserialize;
use thiserror::Error;

use troupe_shm::pool::{LentSlots, PeerScope, Pool, PoolError, Slot, SlotKey, with_peer};
use troupe_shm::{ShmError, ShmRegion};
use troupe_value::device::{DeviceArray, DeviceError, DevicePlane, ExportId, with_plane};
use troupe_value::{Buffer, DecodeError, EncodeError, decode, encode};

use crate::transport::{MAX_FDS_PER_DATAGRAM, SharedFd};
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
    /// The frame's buffers lie in more shared-memory regions than one frame may hand over.
    #[error("a frame's buffers lie in {0} shared-memory regions, more than {MAX_FDS_PER_DATAGRAM}")]
    TooManyRegions(usize),
}

/// A sealed frame: its bytes and the shared-memory regions it hands the peer (their
/// descriptors travel with it).
///
/// Drop it only once its bytes are queued for the peer (after
/// [`Outgoing::send_with`](crate::transport::Outgoing::send_with) returned): it keeps the
/// device arrays it names alive until then. The last clone of an import of the peer's array
/// that goes queues the import's release, which must not overtake the frame naming that
/// array (an echo, `Returned`), or the peer frees the export before the echo arrives.
#[derive(Debug)]
#[must_use]
pub struct Sealed {
    /// The encoded envelope.
    pub bytes: Vec<u8>,
    /// Regions whose slots the frame names and that the peer may not hold yet.
    pub regions: Vec<Arc<ShmRegion>>,
    /// The device arrays the frame names, as they were before sealing: dropped with it.
    _held: Vec<DeviceArray>,
}

impl Sealed {
    /// The regions' descriptors, for [`Outgoing::send_with`](crate::transport::Outgoing::send_with).
    pub fn fds(&self) -> Vec<SharedFd> {
        self.regions
            .iter()
            .map(|region| region.clone() as SharedFd)
            .collect()
    }
}

/// One end of a connection's buffer ledger: encodes frames, decodes the peer's, and keeps
/// account of the shared buffers between the two: what was lent to the peer (pool slots)
/// and what is owed to it ([`Ledger::releases`]), so that every shared buffer lives as long
/// as the peer may read it.
///
/// Sending (`threshold` bytes or more; smaller buffers always travel inline, copied):
/// - an owned buffer is copied once into a slot of the process's [`Pool`];
/// - a slot of this process's pool travels as a descriptor, without copying;
/// - a slot of a peer's pool travels as a descriptor too: back to its creator, or on to a
///   third process (which maps the creator's region, read-only); this side lends a clone of
///   it, so the creator's slot stays alive for as long as the third process holds it.
///
/// A sealed frame hands over the regions its descriptors lie in ([`Sealed::regions`]; not
/// those of slots that came from this very peer, which it holds already): their file
/// descriptors travel with the frame. Each pool descriptor sent is one reference the peer
/// holds: the ledger keeps the slot until the peer releases it ([`Ledger::release_slots`], a
/// `ReleaseSlots` frame), or until the connection ends ([`Ledger::clear`]).
///
/// Decoding with [`Ledger::open`] resolves the peer's descriptors only to slots lent to it
/// here, or to slots of regions it handed over with that frame (its own memory, mapped
/// read-only); anything else fails the decode (see `troupe_shm::pool::resolve`). A peer's
/// slots become buffers that, when their last clone drops, queue a release in
/// [`Ledger::releases`] for the connection to send.
///
/// With a [`DevicePlane`] ([`Ledger::with_devices`]) it carries device arrays too: sealing
/// exports each one (the plane keeps it until the peer releases it, or [`Ledger::clear`]),
/// opening imports the peer's and applies the releases the peer sent (see
/// `docs/semantics.md`, *CUDA arrays*).
#[derive(Debug)]
pub struct Ledger {
    threshold: usize,
    lent: Arc<Lent>,
    releases: Arc<Releases>,
    devices: Option<Arc<dyn DevicePlane>>,
}

/// Pool slots the peer holds references to: the slot and how many descriptors of it the
/// peer has not released.
#[derive(Debug, Default)]
struct Lent(Mutex<HashMap<SlotKey, (Slot, usize)>>);

impl Lent {
    fn lock(&self) -> MutexGuard<'_, HashMap<SlotKey, (Slot, usize)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LentSlots for Lent {
    fn lent(&self, key: &SlotKey) -> Option<Slot> {
        self.lock().get(key).map(|(slot, _)| slot.clone())
    }
}

/// What sealing one frame lent the peer (see [`Ledger::seal_with_receipt`]).
#[derive(Debug)]
#[must_use]
pub struct Receipt {
    slots: Vec<SlotKey>,
    exported: Vec<ExportId>,
    /// Releases owed to the peer that rode on the frame.
    released: Vec<SlotKey>,
    exports_released: Vec<ExportId>,
}

enum Staged {
    /// Travels inline.
    Inline,
    /// A pool slot lent to the peer.
    Lent(SlotKey, Slot),
}

impl Ledger {
    /// A ledger moving buffers of `threshold` bytes or more into shared memory.
    pub fn new(threshold: usize) -> Ledger {
        Ledger {
            threshold: threshold.max(1),
            lent: Arc::default(),
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
    ///
    /// # Errors
    /// See [`FrameError`].
    pub fn seal<T: Frame>(&self, frame: T) -> Result<Sealed, FrameError> {
        self.seal_with_receipt(frame).map(|(sealed, _)| sealed)
    }

    /// [`Ledger::seal`], with a [`Receipt`] of what the peer is now expected to release, to
    /// [`Ledger::unseal`] if the frame is never sent.
    ///
    /// # Errors
    /// See [`FrameError`].
    pub fn seal_with_receipt<T: Frame>(
        &self,
        mut frame: T,
    ) -> Result<(Sealed, Receipt), FrameError> {
        let mut lent = Vec::new();
        let mut regions: Vec<Arc<ShmRegion>> = Vec::new();
        let mut failed = None;
        frame.for_each_value_mut(&mut |value| {
            value.for_each_buffer_mut(&mut |buffer| {
                if failed.is_none() {
                    match self.stage(buffer) {
                        Ok(Staged::Inline) => {}
                        Ok(Staged::Lent(key, slot)) => {
                            if !self.came_from_peer(&slot)
                                && !regions.iter().any(|r| r.id() == key.region)
                            {
                                regions.push(slot.region().clone());
                            }
                            lent.push((key, slot));
                        }
                        Err(e) => failed = Some(e),
                    }
                }
            })
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        if regions.len() > MAX_FDS_PER_DATAGRAM {
            return Err(FrameError::TooManyRegions(regions.len()));
        }
        let devices::ExportedAll {
            made: exported,
            replaced: held,
        } = devices::export_all(self.devices.as_ref(), &mut frame)?;
        let keys: Vec<SlotKey> = lent.iter().map(|(key, _)| *key).collect();
        self.lend(lent);
        // Releases owed to the peer ride along (see `Envelope::released`).
        let envelope = Envelope {
            body: &frame,
            released: self.releases.take(),
            exports_released: self.releases.take_exports(),
        };
        let encoded = encode(&envelope);
        let receipt = Receipt {
            slots: keys,
            exported,
            released: envelope.released,
            exports_released: envelope.exports_released,
        };
        match encoded {
            Ok(bytes) => Ok((
                Sealed {
                    bytes,
                    regions,
                    _held: held,
                },
                receipt,
            )),
            Err(e) => {
                self.unseal(receipt);
                Err(e.into())
            }
        }
    }

    /// Forgets what a sealed frame that was never sent lent the peer, and owes the peer again
    /// the releases it would have carried.
    pub fn unseal(&self, receipt: Receipt) {
        self.release_slots(&receipt.slots);
        if let Some(plane) = &self.devices {
            plane.released(&receipt.exported);
        }
        self.releases
            .restore(receipt.released, receipt.exports_released);
    }

    fn stage(&self, buffer: &mut Buffer) -> Result<Staged, PoolError> {
        if buffer.len() < self.threshold {
            if buffer.slot().is_some() {
                *buffer = Buffer::copy_from_slice(buffer.as_slice());
            }
            return Ok(Staged::Inline);
        }
        // Ours, the peer's own, or a third process's: a descriptor in every case. The clone
        // lent below keeps the slot (and so the third process's reference) alive until
        // this peer releases it. Anything else is copied into the pool once.
        if buffer.slot().is_none() {
            *buffer = Buffer::from(Pool::global().copy_from_slice(buffer.as_slice())?);
        }
        let slot = buffer.slot().ok_or(PoolError::Empty)?;
        Ok(Staged::Lent(slot.key(), slot.clone()))
    }

    /// Whether `slot` is a slot of this connection's peer (it holds the region already).
    fn came_from_peer(&self, slot: &Slot) -> bool {
        slot.released_to()
            .is_some_and(|to| std::ptr::addr_eq(Arc::as_ptr(to), Arc::as_ptr(&self.releases)))
    }

    fn lend(&self, slots: Vec<(SlotKey, Slot)>) {
        if slots.is_empty() {
            return;
        }
        let mut lent = self.lent.lock();
        for (key, slot) in slots {
            lent.entry(key).or_insert((slot, 0)).1 += 1;
        }
    }

    /// Decodes an envelope the peer sealed, with the descriptors of the regions it handed
    /// over (`fds`, checked and mapped read-only here); its pool descriptors become buffers
    /// (slots lent to the peer, or of regions it handed over: nothing else) that release
    /// their slot to the peer through [`Ledger::releases`] when they drop, and its device
    /// arrays are imported with the plane (their releases go the same way).
    ///
    /// # Errors
    /// A descriptor is not a sealed memory region, the bytes do not decode, or a pool
    /// descriptor names memory the peer was not handed ([`DecodeError::PoolSlot`]).
    pub fn open<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
        fds: Vec<OwnedFd>,
    ) -> Result<Envelope<T>, DecodeError> {
        let regions = fds
            .into_iter()
            .map(troupe_shm::adopt)
            .collect::<Result<Vec<_>, ShmError>>()
            .map_err(|e| DecodeError::PoolSlot(PoolError::Shm(e)))?;
        let scope = PeerScope {
            releases: self.releases.clone(),
            lent: self.lent.clone(),
            regions,
        };
        let envelope: Envelope<T> = with_peer(scope, || {
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

    /// The peer dropped one reference to each slot in `keys`; a slot whose last reference
    /// went is no longer kept for it. Returns how many keys matched a lent slot (the others
    /// are ignored: a peer can send anything).
    pub fn release_slots(&self, keys: &[SlotKey]) -> usize {
        let mut freed = Vec::new();
        let mut matched = 0;
        {
            let mut lent = self.lent.lock();
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

    /// How many pool slots the peer holds references to.
    pub fn lent(&self) -> usize {
        self.lent.lock().len()
    }

    /// The peer is gone: drops every held buffer, lent slot and device export, and stops
    /// queueing releases for it.
    pub fn clear(&self) {
        self.releases.close();
        if let Some(plane) = &self.devices {
            plane.peer_gone();
        }
        let lent = std::mem::take(&mut *self.lent.lock());
        drop(lent);
    }
}

impl Envelope<()> {
    /// Decodes an envelope sealed by [`Ledger::seal`] in this process, outside any
    /// connection: pool descriptors resolve to this process's live slots only. Connections
    /// use [`Ledger::open`].
    ///
    /// # Errors
    /// The bytes do not decode.
    pub fn open<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<Envelope<T>, DecodeError> {
        decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

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

    /// The descriptors a sealed frame hands over, as the peer receives them.
    fn fds(sealed: &Sealed) -> Vec<OwnedFd> {
        sealed
            .regions
            .iter()
            .map(|r| r.as_fd().try_clone_to_owned().unwrap())
            .collect()
    }

    /// Opens `sealed` at `ledger` as if it came over the connection.
    fn receive<T: for<'de> Deserialize<'de>>(ledger: &Ledger, sealed: &Sealed) -> Envelope<T> {
        ledger.open(&sealed.bytes, fds(sealed)).unwrap()
    }

    #[test]
    fn small_frames_travel_inline_and_hand_over_nothing() {
        let ledger = Ledger::new(1024);
        let sealed = ledger.seal(call(vec![Value::from("hi")])).unwrap();
        assert!(sealed.regions.is_empty());
        let envelope: Envelope<ToChild> = Envelope::open(&sealed.bytes).unwrap();
        assert_eq!(envelope.body, call(vec![Value::from("hi")]));
        assert_eq!(ledger.lent(), 0);
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
        let host = Ledger::new(1024);
        let big = Array::from_vec(vec![1.5f32; 4096]);
        let sent = call(vec![
            Value::Array(big.clone()),
            Value::Bytes(vec![9u8; 2048].into()),
        ]);
        let sealed = host.seal(sent.clone()).unwrap();
        assert!(sealed.bytes.len() < 512, "descriptors, not bytes");
        assert_eq!(sealed.regions.len(), 1, "both slots lie in one region");
        // (Decoded in this process: the descriptors name its own live slots.)
        let envelope: Envelope<ToChild> = Envelope::open(&sealed.bytes).unwrap();
        assert_eq!(envelope.body, sent, "same values on the other side");
        assert_eq!(host.lent(), 2);
        let keys: Vec<SlotKey> = args(envelope.body)
            .iter()
            .map(|v| data(v).pool_key().unwrap())
            .collect();
        assert_eq!(host.release_slots(&keys), 2);
        assert_eq!(host.lent(), 0);
        assert_eq!(host.release_slots(&keys), 0, "garbage is ignored");
    }

    /// What a peer sealing `value` in a reply would send: a fresh ledger names the slot and
    /// hands over its region.
    fn reply_naming(value: Buffer) -> Sealed {
        Ledger::new(1024)
            .seal(ToHost::Reply {
                id: 7,
                result: Ok(Value::Bytes(value)),
            })
            .unwrap()
    }

    #[test]
    fn a_slot_lent_to_the_peer_comes_back_as_the_same_slot_and_only_while_lent() {
        let host = Ledger::new(1024);
        let slot = Buffer::from(Pool::global().copy_from_slice(&[4u8; 8192]).unwrap());
        let ptr = slot.as_slice().as_ptr();
        let sealed = host.seal(call(vec![Value::Bytes(slot.clone())])).unwrap();
        assert_eq!(host.lent(), 1);
        // The peer echoes it.
        let echo = reply_naming(slot.clone());
        let ToHost::Reply {
            result: Ok(back), ..
        } = receive::<ToHost>(&host, &echo).body
        else {
            unreachable!()
        };
        assert_eq!(data(&back).as_slice().as_ptr(), ptr, "the very same bytes");
        assert!(data(&back).in_own_pool());
        // Resolving a slot it lent, the host owes the peer the release at once.
        assert_eq!(host.releases().take(), vec![slot.pool_key().unwrap()]);
        // Once the peer released it, naming it again is refused.
        drop(sealed);
        assert_eq!(host.release_slots(&[slot.pool_key().unwrap()]), 1);
        let err = host.open::<ToHost>(&echo.bytes, fds(&echo)).unwrap_err();
        assert!(
            matches!(err, DecodeError::PoolSlot(PoolError::NotLent { .. })),
            "{err:?}"
        );
    }

    /// A region "of a peer" (kept out of this process's pools, as a peer's would be) and the
    /// frame-decoding scope of `ledger` that received it.
    fn peer_slot(ledger: &Ledger, region: &Arc<ShmRegion>, offset: u64, len: u64) -> Slot {
        let scope = PeerScope {
            releases: ledger.releases.clone(),
            lent: ledger.lent.clone(),
            regions: vec![region.clone()],
        };
        with_peer(scope, || resolve(region.id(), offset, len)).unwrap()
    }

    #[test]
    fn releases_ride_on_the_next_frame() {
        let (host, child) = (Ledger::new(1024), Ledger::new(1024));
        let region = ShmRegion::create_from(&[6u8; 8192]).unwrap();
        // The child resolved a slot of the host's and dropped it: it owes a release.
        let slot = peer_slot(&child, &region, 0, 4096);
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
        let envelope = receive::<ToHost>(&host, &reply);
        assert_eq!(envelope.released, vec![key]);
    }

    #[test]
    fn a_frame_never_sent_gives_back_what_it_lent_and_the_releases_it_carried() {
        let ledger = Ledger::new(1024);
        let region = ShmRegion::create_from(&[6u8; 8192]).unwrap();
        drop(peer_slot(&ledger, &region, 0, 4096));
        assert_eq!(ledger.releases().pending(), 1);
        let (_, receipt) = ledger
            .seal_with_receipt(call(vec![Value::Bytes(vec![1u8; 4096].into())]))
            .unwrap();
        assert_eq!((ledger.lent(), ledger.releases().pending()), (1, 0));
        ledger.unseal(receipt);
        assert_eq!((ledger.lent(), ledger.releases().pending()), (0, 1));
    }

    #[test]
    fn a_peers_slot_travels_on_with_its_region_and_is_held_until_released() {
        let (from_a, to_b, b) = (Ledger::new(1024), Ledger::new(1024), Ledger::new(1024));
        let region = ShmRegion::create_from(&[6u8; 8192]).unwrap();
        let slot = Buffer::from(peer_slot(&from_a, &region, 0, 4096));
        assert!(!slot.in_own_pool());
        // On to "peer B": the same slot, no copy, its region handed over, lent until B
        // releases it.
        let to_b_frame = to_b.seal(call(vec![Value::Bytes(slot.clone())])).unwrap();
        assert_eq!(to_b_frame.regions.len(), 1);
        assert_eq!(to_b_frame.regions[0].id(), region.id());
        assert_eq!(to_b.lent(), 1);
        let forwarded = args(receive::<ToChild>(&b, &to_b_frame).body);
        assert_eq!(data(&forwarded[0]).pool_key(), slot.pool_key(), "forwarded");
        assert_eq!(
            data(&forwarded[0]).as_slice().as_ptr(),
            slot.as_slice().as_ptr(),
            "the very same mapping"
        );
        // Back to A, the frame hands over nothing: A's own region.
        let to_a = from_a
            .seal(ToChild::Reply {
                id: 1,
                result: Ok(Value::Bytes(slot.clone())),
            })
            .unwrap();
        assert!(to_a.regions.is_empty());
        let key = slot.pool_key().unwrap();
        drop(slot);
        drop(forwarded);
        from_a.clear();
        // What this side still holds of A's slot goes back to A only once B released it.
        assert_eq!(to_b.release_slots(&[key]), 1);
        assert_eq!(to_b.lent(), 0);
    }

    #[test]
    fn a_peer_cannot_name_memory_it_was_not_handed() {
        let (host, child) = (Ledger::new(1024), Ledger::new(1024));
        let never_sent = Pool::global().copy_from_slice(&[1u8; 4096]).unwrap();
        // The child's reply names a live host slot it was never lent.
        let forged = {
            let forger = Ledger::new(1024);
            forger
                .seal(ToHost::Reply {
                    id: 1,
                    result: Ok(Value::Bytes(Buffer::from(never_sent.clone()))),
                })
                .unwrap()
        };
        let err = host.open::<ToHost>(&forged.bytes, vec![]).unwrap_err();
        assert!(
            matches!(err, DecodeError::PoolSlot(PoolError::NotLent { .. })),
            "{err:?}"
        );
        // A region of its own it did not hand over with the frame.
        let region = ShmRegion::create_from(&[6u8; 8192]).unwrap();
        let theirs = Buffer::from(peer_slot(&child, &region, 0, 4096));
        let reply = Ledger::new(1024)
            .seal(ToHost::Reply {
                id: 1,
                result: Ok(Value::Bytes(theirs)),
            })
            .unwrap();
        let err = host.open::<ToHost>(&reply.bytes, vec![]).unwrap_err();
        assert!(
            matches!(err, DecodeError::PoolSlot(PoolError::UnknownRegion(_))),
            "{err:?}"
        );
        // A descriptor that is not a sealed memory region.
        let file = std::fs::File::open("/dev/null").unwrap();
        let err = host
            .open::<ToHost>(&reply.bytes, vec![OwnedFd::from(file)])
            .unwrap_err();
        assert!(
            matches!(err, DecodeError::PoolSlot(PoolError::Shm(_))),
            "{err:?}"
        );
    }

    #[test]
    fn clearing_reclaims_what_a_gone_peer_held() {
        let host = Ledger::new(1024);
        let sealed = host
            .seal(call(vec![Value::Bytes(vec![1u8; 4096].into())]))
            .unwrap();
        let sent = args(Envelope::open::<ToChild>(&sealed.bytes).unwrap().body);
        let key = data(&sent[0]).pool_key().unwrap();
        drop(sent);
        assert_eq!(host.lent(), 1);
        host.clear();
        // Nothing is kept for the gone peer (the slot itself goes back to the process's
        // pool, shared with every test running beside this one: see `pool::tests`).
        assert_eq!(host.lent(), 0);
        // Releases owed to a gone peer are not queued.
        host.releases().release_slot(key);
        assert_eq!(host.releases().pending(), 0);
    }
}
