//! Decoders against the sizes a hostile peer would pick: numbers near every power of two and
//! the edges of u32 and u64, put at every position of real encodings (in place of a byte,
//! or inserted), as lengths, counts, dimensions, ids and offsets. Values and whole frames
//! decode to a value or a typed error, never a panic and never an absurd allocation.

#![allow(clippy::unwrap_used)]

use troupe_protocol::{CallFrame, Envelope, Ledger, ToChild, ToHost};
use troupe_shm::pool::SlotKey;
use troupe_value::{Array, Audio, Buffer, DType, Map, PixelFormat, Value, VideoFrame};

/// Numbers a peer would pick to break a decoder: around every power of two, and the edges of
/// u32 and u64.
fn nasty_numbers() -> Vec<u64> {
    let mut numbers: Vec<u64> = (0..64)
        .flat_map(|k| {
            let p = 1u64 << k;
            [p - 1, p, p + 1]
        })
        .collect();
    numbers.extend([u64::from(u32::MAX), u64::from(u32::MAX) + 1, u64::MAX]);
    numbers
}

/// `n` as postcard writes a length or an unsigned integer (LEB128).
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Every encoding made from `encoded` by putting a nasty number at some position (in place
/// of one byte, or inserted): lengths, counts, dimensions and sizes near 2^k and u32::MAX
/// wherever a varint can sit.
fn spliced(encoded: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    let numbers = nasty_numbers();
    (0..encoded.len()).flat_map(move |at| {
        numbers.clone().into_iter().flat_map(move |n| {
            let number = varint(n);
            let replaced = [&encoded[..at], &number, &encoded[at + 1..]].concat();
            let inserted = [&encoded[..at], &number, &encoded[at..]].concat();
            [replaced, inserted]
        })
    })
}

/// Values of every shape that carries a size.
fn sized_values() -> Vec<Value> {
    let frame = VideoFrame::new(
        Array::from_vec(vec![0u8; 4 * 2 * 3]),
        4,
        2,
        PixelFormat::Rgb24,
        9,
    )
    .unwrap();
    let samples = vec![
        Value::from(frame),
        Value::Array(Array::new(DType::F32, vec![2, 3], Buffer::from(vec![0u8; 24])).unwrap()),
        Value::from(Audio::from_interleaved(vec![0.5; 8], 16_000, 2, 0).unwrap()),
        Value::List(vec![
            Value::from("text"),
            Value::Bytes(vec![1, 2, 3].into()),
        ]),
        Value::Map(Map::from_iter([("k".to_owned(), Value::Int(7))])),
    ];
    samples
}

#[test]
fn values_with_hostile_sizes_never_panic() {
    let mut tried = 0;
    for value in sized_values() {
        let encoded = troupe_value::encode(&value).unwrap();
        for bytes in spliced(&encoded) {
            let _ = troupe_value::decode::<Value>(&bytes);
            tried += 1;
        }
    }
    assert!(tried > 10_000, "{tried}");
}

#[test]
fn frames_with_hostile_sizes_never_panic() {
    let host = Ledger::new(1 << 16);
    let frames = [
        Envelope {
            body: ToHost::Call {
                target: troupe_protocol::Target::Host,
                call: CallFrame {
                    id: 3,
                    method: "m".into(),
                    args: sized_values(),
                    kwargs: Map::new(),
                },
            },
            released: vec![SlotKey {
                region: 7,
                offset: 64,
            }],
            exports_released: Vec::new(),
        },
        Envelope {
            body: ToHost::ReleaseSlots {
                slots: vec![SlotKey {
                    region: 1,
                    offset: 2,
                }],
            },
            released: Vec::new(),
            exports_released: Vec::new(),
        },
    ];
    let mut tried = 0;
    for frame in &frames {
        let encoded = troupe_value::encode(frame).unwrap();
        for bytes in spliced(&encoded) {
            let _ = host.open::<ToHost>(&bytes, Vec::new());
            tried += 1;
        }
    }
    // And the other way, as a child opens the host's frames.
    let child = Ledger::new(1 << 16);
    let call = Envelope {
        body: ToChild::Call(CallFrame {
            id: 1,
            method: "f".into(),
            args: sized_values(),
            kwargs: Map::new(),
        }),
        released: Vec::new(),
        exports_released: Vec::new(),
    };
    for bytes in spliced(&troupe_value::encode(&call).unwrap()) {
        let _ = child.open::<ToChild>(&bytes, Vec::new());
        tried += 1;
    }
    assert!(tried > 10_000, "{tried}");
}
