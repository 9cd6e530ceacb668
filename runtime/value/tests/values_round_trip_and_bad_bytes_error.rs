//! Property tests: every value round-trips; random and mutated bytes never panic.

use proptest::prelude::*;
use troupe_value::{Array, Audio, Buffer, DType, Map, PixelFormat, Value, VideoFrame};

fn array() -> impl Strategy<Value = Array> {
    (
        prop::sample::select(DType::ALL.to_vec()),
        prop::collection::vec(0usize..4, 0..4),
    )
        .prop_flat_map(|(dtype, shape)| {
            let len = shape.iter().product::<usize>() * dtype.itemsize();
            prop::collection::vec(any::<u8>(), len).prop_map(move |bytes| {
                Array::new(dtype, shape.clone(), Buffer::from(bytes)).expect("consistent")
            })
        })
}

fn audio() -> impl Strategy<Value = Audio> {
    (1u16..4, 0usize..64, 1u32..200_000, any::<u64>()).prop_map(|(channels, frames, rate, ts)| {
        let samples = (0..frames * usize::from(channels))
            .map(|i| i as f32 * 0.01)
            .collect();
        Audio::from_interleaved(samples, rate, channels, ts).expect("consistent")
    })
}

fn video() -> impl Strategy<Value = VideoFrame> {
    (
        prop::sample::select(vec![
            PixelFormat::Gray8,
            PixelFormat::Rgb24,
            PixelFormat::Rgba32,
            PixelFormat::Yuv420p,
        ]),
        1u32..9,
        1u32..9,
        any::<u64>(),
    )
        .prop_map(|(format, w, h, ts)| {
            let pixels = Array::from_vec(
                (0..format.frame_len(w, h).unwrap_or(0))
                    .map(|i| i as u8)
                    .collect::<Vec<u8>>(),
            );
            VideoFrame::new(pixels, w, h, format, ts).expect("consistent")
        })
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("NaN never equals itself", |f| !f.is_nan())
            .prop_map(Value::Float),
        ".*".prop_map(Value::Str),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| Value::Bytes(b.into())),
        array().prop_map(Value::Array),
        audio().prop_map(Value::Audio),
        video().prop_map(Value::Video),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            prop::collection::vec((".{0,8}", inner), 0..8)
                .prop_map(|kv| Value::Map(kv.into_iter().collect::<Map>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_value_round_trips(v in value()) {
        let bytes = v.to_bytes().unwrap();
        prop_assert_eq!(Value::from_bytes(&bytes).unwrap(), v);
    }

    #[test]
    fn random_bytes_decode_to_an_error_or_a_value_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Value::from_bytes(&bytes);
    }

    #[test]
    fn mutated_encodings_never_panic(v in value(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        let mut bytes = v.to_bytes().unwrap();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= byte | 1;
        }
        let _ = Value::from_bytes(&bytes);
        let _ = Value::from_bytes(&bytes[..cut.index(bytes.len())]);
    }
}

#[test]
fn truncated_encodings_are_errors() {
    let v = Value::map([
        ("a", Value::List(vec![Value::Int(1), Value::from("two")])),
        ("b", Value::Float(3.5)),
    ]);
    let bytes = v.to_bytes().unwrap();
    for cut in 0..bytes.len() {
        assert!(
            Value::from_bytes(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes decoded"
        );
    }
}
