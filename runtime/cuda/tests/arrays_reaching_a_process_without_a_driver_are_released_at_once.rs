//! A CUDA array arriving over a connection whose process has no CUDA driver (or that has no
//! device plane at all, as in a build without CUDA): the frame still decodes, the array says
//! why it cannot be used, and its release goes back to the exporter on the next frame, so
//! the exporter's table does not leak.

use std::sync::Arc;

use troupe_cuda::{
    CudaIpcDescriptor, CudaPlane, DType, ExportId, IPC_HANDLE_LEN, IpcHandle, PeerId,
};
use troupe_protocol::{CallFrame, Envelope, Ledger, ToChild, ToHost};
use troupe_value::device::{DeviceArray, DeviceError, WireArray};
use troupe_value::{Map, Value, decode, encode};

fn descriptor(export: u64) -> CudaIpcDescriptor {
    CudaIpcDescriptor {
        mem_handle: IpcHandle([0x11; IPC_HANDLE_LEN]),
        event_handle: IpcHandle([0x22; IPC_HANDLE_LEN]),
        offset: 0,
        size: 4 * 8,
        dtype: DType::F32,
        shape: vec![4, 2],
        device: 0,
        device_uuid: [0; 16],
        export_id: ExportId(export),
    }
}

/// A host frame carrying the array of export `export`, as a host's ledger seals it.
fn call_with_array(export: u64) -> Vec<u8> {
    // An array in transit, as it is decoded outside a connection.
    let wire = encode(&WireArray::Exported(descriptor(export))).unwrap_or_default();
    let in_transit: DeviceArray = decode(&wire).unwrap_or_else(|e| panic!("{e}"));
    encode(&Envelope {
        body: ToChild::Call(CallFrame {
            id: 1,
            method: "f".into(),
            args: vec![Value::DeviceArray(in_transit)],
            kwargs: Map::new(),
        }),
        released: Vec::new(),
        exports_released: Vec::new(),
    })
    .unwrap_or_default()
}

#[test]
fn the_array_is_unusable_and_its_release_rides_on_the_next_frame() {
    if troupe_cuda::driver_available() {
        println!("skipped: a CUDA driver is present (this test is for machines without one)");
        return;
    }
    let child = Ledger::new(1024).with_devices(Arc::new(CudaPlane::new(PeerId(0))));
    let envelope = child
        .open::<ToChild>(&call_with_array(7), vec![])
        .unwrap_or_else(|e| panic!("the frame decodes: {e}"));
    let ToChild::Call(call) = envelope.body else {
        panic!("expected the call")
    };
    let Value::DeviceArray(array) = &call.args[0] else {
        panic!("expected a device array, got {:?}", call.args[0])
    };
    assert_eq!(array.shape(), &[4, 2]);
    assert!(matches!(array.owner(), Err(DeviceError::NoDriver)));
    assert!(matches!(
        call.args[0].device_error(),
        Some(DeviceError::NoDriver)
    ));

    // The release is due at once and rides on the child's next frame.
    assert_eq!(child.releases().pending_exports(), 1);
    let reply = child
        .seal(ToHost::Reply {
            id: 1,
            result: Ok(Value::Null),
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let sent: Envelope<ToHost> = Envelope::open(&reply.bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sent.exports_released, vec![ExportId(7)]);
    assert_eq!(child.releases().pending_exports(), 0);

    // The host's plane applies it; an export it does not hold is ignored, never a panic.
    let host = Ledger::new(1024).with_devices(Arc::new(CudaPlane::new(PeerId(42))));
    host.open::<ToHost>(&reply.bytes, vec![])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(host.devices().map(|p| p.exported()), Some(0));
}

#[test]
fn a_device_array_cannot_be_sent_over_a_connection_without_a_plane() {
    let wire = encode(&WireArray::Exported(descriptor(3))).unwrap_or_default();
    let in_transit: DeviceArray = decode(&wire).unwrap_or_else(|e| panic!("{e}"));
    let plain = Ledger::new(1024);
    let sealed = plain.seal(ToHost::Reply {
        id: 1,
        result: Ok(Value::DeviceArray(in_transit)),
    });
    assert!(
        matches!(
            sealed,
            Err(troupe_protocol::FrameError::Device(DeviceError::NoPlane))
        ),
        "{sealed:?}"
    );
}

#[test]
fn a_device_array_reaching_a_connection_without_a_plane_is_refused_and_released_at_once() {
    let plain = Ledger::new(1024);
    let envelope = plain
        .open::<ToChild>(&call_with_array(9), vec![])
        .unwrap_or_else(|e| panic!("the frame decodes: {e}"));
    let ToChild::Call(call) = envelope.body else {
        panic!("expected the call")
    };
    assert!(matches!(
        call.args[0].device_error(),
        Some(DeviceError::NoPlane)
    ));
    assert_eq!(plain.releases().take_exports(), vec![ExportId(9)]);
}
