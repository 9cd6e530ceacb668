use std::cell::{Cell, RefCell};
use std::fmt;

use thiserror::Error;

use crate::array::ArrayError;
use crate::media::MediaError;
use crate::value::Value;

/// Deepest nesting of lists and maps a decoded [`Value`] may have.
///
/// Guards the decoder's stack against hostile input; encoders may nest deeper, but such a
/// value will not decode.
pub const MAX_DEPTH: usize = 128;

/// Why a value could not be encoded.
#[derive(Debug, Error)]
#[error("cannot encode value: {0}")]
pub struct EncodeError(#[from] pub postcard::Error);

/// Why bytes could not be decoded into a value. Decoding never panics.
#[derive(Debug, Error)]
pub enum DecodeError {
    /// The bytes are not a postcard encoding of a value (truncated, bad tag, bad UTF-8, ...).
    #[error("malformed value: {0}")]
    Malformed(#[source] postcard::Error),
    /// Lists and maps nest deeper than [`MAX_DEPTH`].
    #[error("value nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A complete value was followed by more bytes.
    #[error("{count} trailing bytes after the value")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// An array whose shape and data disagree.
    #[error("invalid array: {0}")]
    InvalidArray(#[source] ArrayError),
    /// A device array whose descriptor does not hold together.
    #[error("invalid device array: {0}")]
    InvalidDeviceArray(#[source] crate::device::DescriptorError),
    /// An audio or video value that breaks its invariants.
    #[error("invalid media: {0}")]
    InvalidMedia(#[source] MediaError),
    /// A pool descriptor names a slot the peer was not lent or a region it did not hand
    /// over, a slot that is not live in this process's pool, or a slice outside a region.
    #[error("pool slot: {0}")]
    PoolSlot(#[source] troupe_shm::pool::PoolError),
}

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static PENDING: RefCell<Option<DecodeError>> = const { RefCell::new(None) };
}

/// Counts nesting while a value decodes; refuses to go past [`MAX_DEPTH`].
pub(crate) struct DepthGuard(());

impl DepthGuard {
    pub(crate) fn enter<E: serde::de::Error>() -> Result<DepthGuard, E> {
        let depth = DEPTH.get() + 1;
        if depth > MAX_DEPTH {
            return Err(stash(DecodeError::TooDeep { max: MAX_DEPTH }));
        }
        DEPTH.set(depth);
        Ok(DepthGuard(()))
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.set(DEPTH.get() - 1);
    }
}

/// A decode error that serde carries as a message; the typed error waits in a thread-local
/// until [`decode`] picks it up (postcard keeps no message of custom errors).
pub(crate) struct Stashed(String);

impl fmt::Display for Stashed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn stash_invalid(err: DecodeError) -> Stashed {
    let message = err.to_string();
    PENDING.with_borrow_mut(|p| {
        p.get_or_insert(err);
    });
    Stashed(message)
}

pub(crate) fn stash<E: serde::de::Error>(err: DecodeError) -> E {
    E::custom(stash_invalid(err))
}

/// Encodes any serializable message with postcard.
pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    Ok(postcard::to_stdvec(value)?)
}

/// Decodes a whole message from `bytes`: no trailing bytes, typed errors, no panics.
pub fn decode<'de, T: serde::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, DecodeError> {
    PENDING.with_borrow_mut(|p| *p = None);
    let result = postcard::take_from_bytes(bytes);
    let pending = PENDING.with_borrow_mut(Option::take);
    match result {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(DecodeError::TrailingBytes { count: rest.len() }),
        Err(e) => Err(pending.unwrap_or(DecodeError::Malformed(e))),
    }
}

impl Value {
    /// Encodes the value with postcard.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        encode(self)
    }

    /// Decodes a value encoded by [`Value::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Value, DecodeError> {
        decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        // Tag 6 is List, then a length of 1: each pair opens one more level.
        let mut bytes = [6u8, 1].repeat(100_000);
        bytes.push(0);
        assert!(matches!(
            Value::from_bytes(&bytes),
            Err(DecodeError::TooDeep { max: MAX_DEPTH })
        ));
        // And the limit itself still decodes.
        let mut ok = [6u8, 1].repeat(MAX_DEPTH);
        ok.push(0);
        assert!(Value::from_bytes(&ok).is_ok());
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut bytes = Value::Int(5).to_bytes().unwrap();
        bytes.push(0);
        assert!(matches!(
            Value::from_bytes(&bytes),
            Err(DecodeError::TrailingBytes { count: 1 })
        ));
    }

    #[test]
    fn typed_errors_survive_serde() {
        // An f32 array of shape [2] with 3 bytes of data.
        let bytes = [8u8, 10, 1, 2, 0, 3, 1, 2, 3];
        let err = Value::from_bytes(&bytes).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidArray(_)), "{err:?}");
    }
}
