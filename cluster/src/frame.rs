//! What a remote call carries: troupe's own [`CallFrame`] plus the caller's remaining
//! deadline, and the answer as a `Result<Value, CallError>`, both postcard-encoded with the
//! value codec every other troupe link uses (`troupe_value::{encode, decode}`).
//!
//! A streamed call (a generator method, a python pipeline node's outputs) is answered with
//! several [`StreamPart`]s on the same query: its items, then its end. The caller grants
//! credit for the items it took and may cancel a call it no longer waits for with a
//! [`Control`] message on the host's control key.
//!
//! Shared-memory descriptors never leave their host: a pool buffer is copied into the frame
//! as bytes before it is encoded, and a frame from a peer is decoded with no pool slot lent
//! and no region handed over, so a descriptor in it is refused. CUDA arrays do not cross
//! hosts in this version ([`FrameError::DeviceArray`]).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use troupe_protocol::CallFrame;
use troupe_shm::pool::{LentSlots, PeerScope, Slot, SlotKey, SlotReleases, with_peer};
use troupe_value::{
    Array, Audio, Buffer, CallError, DecodeError, EncodeError, Map, RemoteException, Value,
    VideoFrame,
};

/// The largest frame either side sends or accepts (bytes).
pub const MAX_FRAME: usize = troupe_protocol::MAX_FRAME;

/// A call as it travels to the serving host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteCall {
    /// The call: id, method and arguments.
    pub call: CallFrame,
    /// How long the caller still waits, in milliseconds, when the call left.
    pub deadline_ms: Option<u64>,
    /// Who made it (the caller's session): with the call's id, what [`Control`] messages
    /// about it name.
    pub caller: String,
    /// Set for a streamed call: how many items the host may send before the caller grants
    /// more credit.
    pub window: Option<u32>,
}

/// How a call is made, besides what it calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions<'a> {
    /// The caller's session id ([`RemoteCall::caller`]).
    pub caller: &'a str,
    /// How long the caller still waits.
    pub deadline: Option<Duration>,
    /// The credit window of a streamed call; `None` for a plain one.
    pub window: Option<u32>,
}

/// One reply on a streamed call's query: items in order, then exactly one end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StreamPart {
    /// One item, sent only while the caller has granted credit for it.
    Item(Value),
    /// The call's final answer (`Null` when the items were all of it).
    End(RemoteReply),
}

/// What a caller tells a serving host about a call it made (on `troupe/host/NAME/control`).
/// The host ignores one about a call it does not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// The caller took `items` more items of streamed call `call`: the host may send as many
    /// more.
    Credit {
        /// [`RemoteCall::caller`].
        caller: String,
        /// The call's id.
        call: u64,
        /// How many more items.
        items: u32,
    },
    /// The caller stopped waiting for call `call`: the host abandons it (a bridged
    /// extension cancels it in its child).
    Cancel {
        /// [`RemoteCall::caller`].
        caller: String,
        /// The call's id.
        call: u64,
    },
}

/// The largest [`Control`] message a host reads (bytes).
pub const MAX_CONTROL: usize = 256;

impl RemoteCall {
    /// The caller's remaining time.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline_ms.map(Duration::from_millis)
    }
}

/// The answer to a [`RemoteCall`].
pub type RemoteReply = Result<Value, CallError>;

/// Why a frame could not be made or read.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The frame is larger than [`MAX_FRAME`].
    #[error("frame of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A CUDA array cannot cross hosts in this version.
    #[error("CUDA arrays do not cross hosts (stage them to host memory first)")]
    DeviceArray,
    /// The value could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The bytes are not a frame (truncated, malformed, too deep, a shared-memory
    /// descriptor...).
    #[error("bad frame: {0}")]
    Decode(#[from] DecodeError),
    /// The peer sent an empty query (no payload).
    #[error("empty frame")]
    Empty,
}

/// Encodes `method(args, kwargs)` with call id `id`, made as `options` say.
pub fn encode_call(
    id: u64,
    method: &str,
    args: &[Value],
    kwargs: &Map,
    options: CallOptions<'_>,
) -> Result<Vec<u8>, FrameError> {
    let call = RemoteCall {
        call: CallFrame {
            id,
            method: method.to_owned(),
            args: args.iter().map(inlined).collect::<Result<_, _>>()?,
            kwargs: kwargs
                .iter()
                .map(|(k, v)| Ok((k.clone(), inlined(v)?)))
                .collect::<Result<_, FrameError>>()?,
        },
        deadline_ms: options.deadline.map(crate::session::millis),
        caller: options.caller.to_owned(),
        window: options.window,
    };
    checked(troupe_value::encode(&call)?)
}

/// Reads a call from a peer's `bytes`.
pub fn decode_call(bytes: &[u8]) -> Result<RemoteCall, FrameError> {
    let call: RemoteCall = decode_untrusted(bytes)?;
    for value in call.call.args.iter().chain(call.call.kwargs.values()) {
        refuse_device(value)?;
    }
    Ok(call)
}

/// Encodes an answer.
pub fn encode_reply(reply: &RemoteReply) -> Result<Vec<u8>, FrameError> {
    let bytes = match reply {
        Ok(value) => troupe_value::encode(&Ok::<_, CallError>(inlined(value)?))?,
        Err(error) => troupe_value::encode(&Err::<Value, _>(error))?,
    };
    checked(bytes)
}

/// Reads an answer from a peer's `bytes`.
pub fn decode_reply(bytes: &[u8]) -> Result<RemoteReply, FrameError> {
    let reply: RemoteReply = decode_untrusted(bytes)?;
    if let Ok(value) = &reply {
        refuse_device(value)?;
    }
    Ok(reply)
}

/// Encodes one part of a streamed answer.
pub fn encode_part(part: &StreamPart) -> Result<Vec<u8>, FrameError> {
    let bytes = match part {
        StreamPart::Item(value) => troupe_value::encode(&StreamPart::Item(inlined(value)?))?,
        StreamPart::End(Ok(value)) => troupe_value::encode(&StreamPart::End(Ok(inlined(value)?)))?,
        StreamPart::End(Err(_)) => troupe_value::encode(part)?,
    };
    checked(bytes)
}

/// Reads one part of a streamed answer from a peer's `bytes`.
pub fn decode_part(bytes: &[u8]) -> Result<StreamPart, FrameError> {
    let part: StreamPart = decode_untrusted(bytes)?;
    if let StreamPart::Item(value) | StreamPart::End(Ok(value)) = &part {
        refuse_device(value)?;
    }
    Ok(part)
}

/// Encodes a control message.
pub fn encode_control(control: &Control) -> Result<Vec<u8>, FrameError> {
    let bytes = troupe_value::encode(control)?;
    within(bytes.len(), MAX_CONTROL)?;
    Ok(bytes)
}

/// Reads a control message from a peer's `bytes`, its size checked first.
pub fn decode_control(bytes: &[u8]) -> Result<Control, FrameError> {
    within(bytes.len(), MAX_CONTROL)?;
    Ok(troupe_value::decode(bytes)?)
}

/// A frame that could not be made or read, as its caller gets it: a
/// [`CallError::Remote`] of type `troupe.cluster.FrameError` saying `message`.
pub(crate) fn call_error(message: String) -> CallError {
    CallError::Remote(RemoteException {
        type_name: "troupe.cluster.FrameError".to_owned(),
        message,
        traceback: String::new(),
    })
}

/// `len` bytes are at most `max`, or [`FrameError::TooLarge`].
pub(crate) fn within(len: usize, max: usize) -> Result<(), FrameError> {
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(())
}

fn checked(bytes: Vec<u8>) -> Result<Vec<u8>, FrameError> {
    within(bytes.len(), MAX_FRAME)?;
    Ok(bytes)
}

/// Decodes with no slot lent and no region handed over: any pool descriptor is refused.
fn decode_untrusted<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    within(bytes.len(), MAX_FRAME)?;
    let scope = PeerScope {
        releases: Arc::new(NoPeer),
        lent: Arc::new(NoPeer),
        regions: Vec::new(),
    };
    Ok(with_peer(scope, || troupe_value::decode(bytes))?)
}

/// A peer that was lent nothing and holds nothing of ours.
struct NoPeer;

impl LentSlots for NoPeer {
    fn lent(&self, _: &SlotKey) -> Option<Slot> {
        None
    }
}

impl SlotReleases for NoPeer {
    fn release_slot(&self, _: SlotKey) {}
}

fn refuse_device(value: &Value) -> Result<(), FrameError> {
    match value {
        Value::DeviceArray(_) => Err(FrameError::DeviceArray),
        Value::List(items) => items.iter().try_for_each(refuse_device),
        Value::Map(map) => map.values().try_for_each(refuse_device),
        _ => Ok(()),
    }
}

/// `value` with every pool buffer copied into owned bytes (a cheap clone when it has none).
fn inlined(value: &Value) -> Result<Value, FrameError> {
    Ok(match value {
        Value::Bytes(buffer) => Value::Bytes(inline_buffer(buffer)),
        Value::Array(array) => Value::Array(inline_array(array)),
        Value::Audio(audio) if audio.samples().data().slot().is_some() => Value::Audio(
            Audio::new(
                inline_array(audio.samples()),
                audio.sample_rate(),
                audio.channels(),
                audio.timestamp_ns(),
            )
            .map_err(DecodeError::InvalidMedia)?,
        ),
        Value::Video(frame) if frame.pixels().data().slot().is_some() => Value::Video(
            VideoFrame::new(
                inline_array(frame.pixels()),
                frame.width(),
                frame.height(),
                frame.format(),
                frame.timestamp_ns(),
            )
            .map_err(DecodeError::InvalidMedia)?,
        ),
        Value::List(items) => Value::List(items.iter().map(inlined).collect::<Result<_, _>>()?),
        Value::Map(map) => Value::Map(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), inlined(v)?)))
                .collect::<Result<_, FrameError>>()?,
        ),
        Value::DeviceArray(_) => return Err(FrameError::DeviceArray),
        other => other.clone(),
    })
}

fn inline_buffer(buffer: &Buffer) -> Buffer {
    match buffer.slot() {
        Some(_) => Buffer::copy_from_slice(buffer.as_slice()),
        None => buffer.clone(),
    }
}

fn inline_array(array: &Array) -> Array {
    if array.data().slot().is_none() {
        return array.clone();
    }
    let data = Buffer::copy_from_slice(array.data().as_slice());
    // Same dtype, shape and length: cannot fail; fall back to the original if it did.
    Array::new(array.dtype(), array.shape().to_vec(), data).unwrap_or_else(|_| array.clone())
}

#[cfg(test)]
mod tests;
