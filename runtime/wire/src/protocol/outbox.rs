use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use thiserror::Error;

use super::{Envelope, Frame};
use crate::shm::{ShmError, ShmRegion};
use crate::{Buffer, DecodeError, EncodeError, decode, encode};

/// Why a frame could not be sealed.
#[derive(Debug, Error)]
pub enum FrameError {
    /// postcard refused the frame.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A large buffer could not be moved into shared memory.
    #[error("cannot move a buffer into shared memory: {0}")]
    SharedMemory(#[from] ShmError),
}

/// The sending side of a connection: encodes frames and holds their shared-memory buffers
/// until the peer has mapped them.
///
/// - An owned buffer of `threshold` bytes or more is copied into a new region.
/// - A buffer in a region this process created travels as a descriptor, without copying.
/// - A buffer in a region another process created is copied (into a new region when large,
///   inline when small): its creator may unlink the name at any time, so the descriptor
///   would not be safe to hand on.
///
/// Every region a frame names is held until [`Outbox::release`] is called with the frame's
/// hold number (the peer's `Release`), or until the outbox is dropped or cleared.
#[derive(Debug)]
pub struct Outbox {
    threshold: usize,
    next_hold: AtomicU64,
    held: Mutex<HashMap<u64, Vec<Buffer>>>,
}

impl Outbox {
    /// An outbox moving buffers of `threshold` bytes or more into shared memory.
    pub fn new(threshold: usize) -> Outbox {
        Outbox {
            threshold: threshold.max(1),
            next_hold: AtomicU64::new(1),
            held: Mutex::default(),
        }
    }

    /// Encodes `frame` in an [`Envelope`], moving its large buffers into shared memory.
    pub fn seal<T: Frame>(&self, mut frame: T) -> Result<Vec<u8>, FrameError> {
        let mut held = Vec::new();
        let mut failed = None;
        frame.for_each_value_mut(&mut |value| {
            value.for_each_buffer_mut(&mut |buffer| {
                if failed.is_none() {
                    match self.stage(buffer) {
                        Ok(Some(hold)) => held.push(hold),
                        Ok(None) => {}
                        Err(e) => failed = Some(e),
                    }
                }
            })
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        let hold = (!held.is_empty()).then(|| {
            let hold = self.next_hold.fetch_add(1, Ordering::Relaxed);
            self.lock().insert(hold, held);
            hold
        });
        encode(&Envelope { hold, body: &frame }).map_err(|e| {
            if let Some(hold) = hold {
                self.release(hold);
            }
            e.into()
        })
    }

    fn stage(&self, buffer: &mut Buffer) -> Result<Option<Buffer>, ShmError> {
        let foreign = match buffer.shared_region() {
            Some((region, _)) if region.is_owner() => return Ok(Some(buffer.clone())),
            Some(_) => true,
            None => false,
        };
        if buffer.len() >= self.threshold {
            let region = ShmRegion::create_from(buffer.as_slice())?;
            let len = region.len();
            *buffer = Buffer::shared(region, 0, len)?;
            Ok(Some(buffer.clone()))
        } else {
            if foreign {
                *buffer = Buffer::copy_from_slice(buffer.as_slice());
            }
            Ok(None)
        }
    }

    /// The peer has mapped the regions of envelope `hold`: stop holding them. Returns whether
    /// anything was held under that number.
    pub fn release(&self, hold: u64) -> bool {
        self.lock().remove(&hold).is_some()
    }

    /// How many envelopes' buffers are held.
    pub fn held(&self) -> usize {
        self.lock().len()
    }

    /// Drops every held buffer (the peer is gone).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<Buffer>>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Envelope<()> {
    /// Decodes an envelope sealed by [`Outbox::seal`]. The caller answers `Release` for
    /// `hold` once it has the frame.
    pub fn open<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<Envelope<T>, DecodeError> {
        decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{CallFrame, ToChild, ToHost};
    use crate::{Array, Map, Value};

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
        let outbox = Outbox::new(1024);
        let bytes = outbox.seal(call(vec![Value::from("hi")])).unwrap();
        let envelope: Envelope<ToChild> = Envelope::open(&bytes).unwrap();
        assert_eq!(envelope.hold, None);
        assert_eq!(envelope.body, call(vec![Value::from("hi")]));
        assert_eq!(outbox.held(), 0);
    }

    #[test]
    fn large_buffers_go_through_shared_memory_until_released() {
        let outbox = Outbox::new(1024);
        let big = Array::from_vec(vec![1.5f32; 4096]);
        let sent = call(vec![
            Value::Array(big.clone()),
            Value::Bytes(vec![9u8; 2048].into()),
        ]);
        let bytes = outbox.seal(sent.clone()).unwrap();
        assert!(bytes.len() < 512, "descriptors, not bytes: {}", bytes.len());
        let envelope: Envelope<ToChild> = Envelope::open(&bytes).unwrap();
        assert_eq!(envelope.body, sent, "same values on the other side");
        let hold = envelope.hold.unwrap();
        assert_eq!(outbox.held(), 1);
        assert!(outbox.release(hold));
        assert!(!outbox.release(hold));
        // The receiver's mapping outlives the sender's hold.
        let ToChild::Call(received) = envelope.body else {
            unreachable!()
        };
        assert_eq!(received.args[0], Value::Array(big));
    }

    #[test]
    fn buffers_of_foreign_regions_are_copied_not_forwarded() {
        let region = crate::shm::ShmRegion::create_from(&[3u8; 100]).unwrap();
        // Pretend the region came from a peer: open it as a non-owner would.
        let foreign = ShmRegion::open_foreign_for_test(region.name());
        let buffer = Buffer::shared(foreign, 0, 100).unwrap();
        let outbox = Outbox::new(1024);
        let bytes = outbox
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
