use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::{self, Deserializer, EnumAccess, VariantAccess, Visitor};
use serde::ser::{SerializeStructVariant, Serializer};
use serde::{Deserialize, Serialize};

use troupe_shm::ShmRegion;
use troupe_shm::pool::{self, Slot, SlotKey};

use crate::codec::stash;

/// Immutable bytes: owned, or a slot of a shared-memory [`pool`] (this process's or a
/// peer's).
///
/// Cloning is cheap (a reference count) in every case. A buffer never changes after it is
/// made: whoever holds a clone may read it from any thread for as long as it lives. An owned
/// buffer frees its bytes when the last clone drops; a pool slot returns to its pool (or, a
/// peer's, is released to the peer) when the last clone drops (see `docs/semantics.md`,
/// *Buffers*).
#[derive(Clone)]
pub struct Buffer(Repr);

#[derive(Clone)]
enum Repr {
    Owned(Bytes),
    Pooled(Slot),
}

impl Buffer {
    /// An empty buffer.
    pub const fn new() -> Buffer {
        Buffer(Repr::Owned(Bytes::new()))
    }

    /// A buffer holding a copy of `bytes`.
    pub fn copy_from_slice(bytes: &[u8]) -> Buffer {
        Buffer(Repr::Owned(Bytes::copy_from_slice(bytes)))
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Owned(bytes) => bytes,
            Repr::Pooled(slot) => slot.as_slice(),
        }
    }

    /// The first `len` bytes (all of them when `len` is larger), without copying.
    pub fn truncated(&self, len: usize) -> Buffer {
        let len = len.min(self.len());
        match &self.0 {
            Repr::Owned(bytes) => Buffer(Repr::Owned(bytes.slice(..len))),
            Repr::Pooled(slot) => Buffer(Repr::Pooled(slot.truncated(len))),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shared-memory region and offset this buffer views, if it is a pool slot.
    pub fn shared_region(&self) -> Option<(&Arc<ShmRegion>, usize)> {
        self.slot().map(|slot| (slot.region(), slot.offset()))
    }

    /// The pool slot this buffer views, if it is one (this process's or a peer's).
    pub fn pool_key(&self) -> Option<SlotKey> {
        self.slot().map(Slot::key)
    }

    /// Whether this buffer is a slot of one of this process's pools.
    pub fn in_own_pool(&self) -> bool {
        self.slot().is_some_and(Slot::is_local)
    }

    /// The pool slot this buffer views, if it is one (this process's or a peer's).
    pub fn slot(&self) -> Option<&Slot> {
        match &self.0 {
            Repr::Pooled(slot) => Some(slot),
            Repr::Owned(_) => None,
        }
    }

    /// A writable pointer to the bytes of a slot of this process's pool; `None` for any other
    /// buffer. For filling a freshly allocated slot in place (numpy arrays made with
    /// `troupe.empty`): the writer must stop writing before the buffer is sent or shared,
    /// since a buffer is otherwise immutable.
    pub fn writable_ptr(&self) -> Option<*mut u8> {
        self.slot().and_then(Slot::writable_ptr)
    }

    /// The bytes as [`Bytes`], without copying.
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Owned(bytes) => bytes.clone(),
            Repr::Pooled(_) => Bytes::from_owner(self.clone()),
        }
    }
}

impl Default for Buffer {
    fn default() -> Self {
        Buffer::new()
    }
}

impl AsRef<[u8]> for Buffer {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Vec<u8>> for Buffer {
    fn from(bytes: Vec<u8>) -> Self {
        Buffer(Repr::Owned(Bytes::from(bytes)))
    }
}

/// The bytes a pool slot handle views, without copying.
impl From<Slot> for Buffer {
    fn from(slot: Slot) -> Self {
        Buffer(Repr::Pooled(slot))
    }
}

impl From<Bytes> for Buffer {
    fn from(bytes: Bytes) -> Self {
        Buffer(Repr::Owned(bytes))
    }
}

impl From<&'static [u8]> for Buffer {
    fn from(bytes: &'static [u8]) -> Self {
        Buffer(Repr::Owned(Bytes::from_static(bytes)))
    }
}

impl PartialEq for Buffer {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Owned(bytes) => write!(f, "Buffer({} bytes)", bytes.len()),
            Repr::Pooled(slot) => write!(f, "Buffer({} bytes in {slot:?})", slot.len()),
        }
    }
}

/// On the wire a buffer is either its bytes inline or a pool descriptor `(region id, offset,
/// length)`. Decoding a descriptor within [`pool::with_peer`] (as a connection opens a peer's
/// frame) resolves it to a slot lent to that peer or one of a region the peer handed over
/// with the frame, and makes a buffer that releases the slot to the peer when its last clone
/// drops; anything else is refused ([`pool::resolve`]). The regions' descriptors travel
/// beside the frame (`troupe-protocol`).
impl Serialize for Buffer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Owned(bytes) => {
                serializer.serialize_newtype_variant("Buffer", 0, "Inline", &RawBytes::new(bytes))
            }
            Repr::Pooled(slot) => {
                let mut s = serializer.serialize_struct_variant("Buffer", 1, "Pooled", 3)?;
                s.serialize_field("region", &slot.region().id())?;
                s.serialize_field("offset", &(slot.offset() as u64))?;
                s.serialize_field("len", &(slot.len() as u64))?;
                s.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Buffer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_enum("Buffer", &["Inline", "Pooled"], BufferVisitor)
    }
}

struct BufferVisitor;

#[derive(Deserialize)]
#[serde(field_identifier)]
enum Kind {
    Inline,
    Pooled,
}

struct Descriptor {
    region: u64,
    offset: u64,
    len: u64,
}

impl<'de> Visitor<'de> for BufferVisitor {
    type Value = Buffer;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("inline bytes or a pool descriptor")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Buffer, A::Error> {
        match data.variant()? {
            (Kind::Inline, v) => Ok(Buffer::from(
                v.newtype_variant::<RawBytes<'de>>()?.0.into_owned(),
            )),
            (Kind::Pooled, v) => {
                let d: Descriptor =
                    v.struct_variant(&["region", "offset", "len"], DescriptorVisitor)?;
                pool::resolve(d.region, d.offset, d.len)
                    .map(Buffer::from)
                    .map_err(|e| stash(crate::DecodeError::PoolSlot(e)))
            }
        }
    }
}

struct DescriptorVisitor;

impl<'de> Visitor<'de> for DescriptorVisitor {
    type Value = Descriptor;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pool descriptor")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let missing = || de::Error::custom("incomplete pool descriptor");
        Ok(Descriptor {
            region: seq.next_element()?.ok_or_else(missing)?,
            offset: seq.next_element()?.ok_or_else(missing)?,
            len: seq.next_element()?.ok_or_else(missing)?,
        })
    }
}

/// Bytes serialized with `serialize_bytes` (one length and the bytes, not a sequence of u8).
pub(crate) struct RawBytes<'a>(pub(crate) Cow<'a, [u8]>);

impl<'a> RawBytes<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        RawBytes(Cow::Borrowed(bytes))
    }
}

impl Serialize for RawBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for RawBytes<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawBytes<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(RawBytes(Cow::Borrowed(v)))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(RawBytes(Cow::Owned(v.to_vec())))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                Ok(RawBytes(Cow::Owned(v)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(RawBytes(Cow::Owned(out)))
            }
        }
        deserializer.deserialize_bytes(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool descriptor as a peer would write it: the `Pooled` variant of `Buffer`.
    fn pool_descriptor(region: u64, offset: u64, len: u64) -> Vec<u8> {
        #[derive(Serialize)]
        enum Wire {
            _Inline(()),
            Pooled { region: u64, offset: u64, len: u64 },
        }
        postcard::to_stdvec(&Wire::Pooled {
            region,
            offset,
            len,
        })
        .unwrap()
    }

    #[test]
    fn pool_slots_travel_as_descriptors_and_bad_ones_are_typed_errors() {
        let slot = pool::Pool::global().copy_from_slice(&[5u8; 1000]).unwrap();
        let sent = Buffer::from(slot.clone());
        let encoded = crate::encode(&sent).unwrap();
        assert!(encoded.len() < 64, "a descriptor, not the bytes");
        let back: Buffer = crate::decode(&encoded).unwrap();
        assert_eq!(
            back.as_slice().as_ptr(),
            sent.as_slice().as_ptr(),
            "the same slot"
        );
        assert_eq!(back.pool_key(), Some(slot.key()));
        assert!(back.in_own_pool());
        let (region, offset) = (slot.region().id(), slot.offset() as u64);
        let not_a_slot = pool_descriptor(region, offset + 64, 10);
        assert!(matches!(
            crate::decode::<Buffer>(&not_a_slot),
            Err(crate::DecodeError::PoolSlot(
                pool::PoolError::UnknownSlot { .. }
            ))
        ));
        let unknown = pool_descriptor(u64::MAX, 0, 1);
        assert!(matches!(
            crate::decode::<Buffer>(&unknown),
            Err(crate::DecodeError::PoolSlot(
                pool::PoolError::UnknownRegion(_)
            ))
        ));
    }
}
