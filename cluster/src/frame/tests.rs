use troupe_shm::pool::Pool;
use troupe_value::{CallError, DType};

use super::*;

#[test]
fn calls_and_replies_round_trip() {
    let mut kwargs = Map::new();
    kwargs.insert("n".into(), Value::Int(3));
    let bytes = encode_call(
        7,
        "greet",
        &[Value::from("troupe")],
        &kwargs,
        CallOptions {
            caller: "c1",
            deadline: Some(Duration::from_millis(1500)),
            window: Some(8),
        },
    )
    .unwrap();
    let call = decode_call(&bytes).unwrap();
    assert_eq!((call.caller.as_str(), call.window), ("c1", Some(8)));
    assert_eq!(call.call.id, 7);
    assert_eq!(call.call.method, "greet");
    assert_eq!(call.call.args, [Value::from("troupe")]);
    assert_eq!(call.deadline(), Some(Duration::from_millis(1500)));

    for reply in [
        Ok(Value::from(42i64)),
        Err(CallError::HostLost { host: "h".into() }),
    ] {
        assert_eq!(decode_reply(&encode_reply(&reply).unwrap()).unwrap(), reply);
    }
}

#[test]
fn pool_buffers_travel_as_bytes_and_descriptors_are_refused() {
    let slot = Pool::global().copy_from_slice(&[7u8; 100_000]).unwrap();
    let array = Array::new(DType::U8, vec![100_000], Buffer::from(slot.clone())).unwrap();
    let bytes = encode_reply(&Ok(Value::Array(array.clone()))).unwrap();
    assert!(bytes.len() > 100_000, "the bytes, not a descriptor");
    let Ok(Value::Array(back)) = decode_reply(&bytes).unwrap() else {
        panic!("an array comes back");
    };
    assert_eq!(back, array);
    assert!(back.data().slot().is_none());

    // A frame naming a live slot of this process (as a hostile peer could) is refused.
    let descriptor =
        troupe_value::encode(&Ok::<_, CallError>(Value::Bytes(Buffer::from(slot)))).unwrap();
    assert!(matches!(
        decode_reply(&descriptor),
        Err(FrameError::Decode(DecodeError::PoolSlot(_)))
    ));
}

#[test]
fn garbage_and_oversized_frames_are_typed_errors() {
    assert!(matches!(
        decode_call(&[0xff, 0xff, 0xff]),
        Err(FrameError::Decode(_))
    ));
    assert!(matches!(decode_reply(&[]), Err(FrameError::Decode(_))));
    let huge = vec![0u8; MAX_FRAME + 1];
    assert!(matches!(
        decode_call(&huge),
        Err(FrameError::TooLarge { .. })
    ));
    // Every prefix of a good frame fails cleanly.
    let good = encode_call(
        1,
        "m",
        &[Value::from("x")],
        &Map::new(),
        CallOptions::default(),
    )
    .unwrap();
    for len in 0..good.len() {
        assert!(decode_call(&good[..len]).is_err());
    }
}

#[test]
fn stream_parts_and_control_messages_round_trip_and_are_checked() {
    for part in [
        StreamPart::Item(Value::from("a")),
        StreamPart::End(Ok(Value::Null)),
        StreamPart::End(Err(CallError::Timeout(Duration::from_millis(5)))),
    ] {
        assert_eq!(decode_part(&encode_part(&part).unwrap()).unwrap(), part);
    }
    let slot = Pool::global().copy_from_slice(&[1u8; 64]).unwrap();
    let bytes = encode_part(&StreamPart::Item(Value::Bytes(Buffer::from(slot)))).unwrap();
    let StreamPart::Item(Value::Bytes(back)) = decode_part(&bytes).unwrap() else {
        panic!("an item of bytes");
    };
    assert!(back.slot().is_none(), "the bytes, not a descriptor");

    for control in [
        Control::Credit {
            caller: "c".into(),
            call: 3,
            items: 4,
        },
        Control::Cancel {
            caller: "c".into(),
            call: u64::MAX,
        },
    ] {
        assert_eq!(
            decode_control(&encode_control(&control).unwrap()).unwrap(),
            control
        );
    }
    let long = Control::Cancel {
        caller: "x".repeat(MAX_CONTROL),
        call: 1,
    };
    assert!(matches!(
        encode_control(&long),
        Err(FrameError::TooLarge { .. })
    ));
    assert!(matches!(
        decode_control(&vec![0u8; MAX_CONTROL + 1]),
        Err(FrameError::TooLarge { .. })
    ));
    assert!(decode_control(&[0xff, 0xff]).is_err());
    assert!(decode_part(&[9, 9, 9]).is_err());
}
