//! Device buffers in one process: host round trips, clones, exports and their releases.
//! Skipped (with a message) without a CUDA driver or device.

mod common;

use common::{TestResult, gpu_or_skip, pattern_bytes};
use troupe_cuda::{
    CudaBuffer, CudaDevice, CudaError, DType, DescriptorError, ExportError, ExportId, Exports,
    Importer, PeerId, Release,
};

#[test]
fn bytes_survive_a_host_round_trip() -> TestResult {
    let Some(device) = gpu_or_skip("bytes_survive_a_host_round_trip") else {
        return Ok(());
    };
    let bytes = pattern_bytes(3 * 4 * 1000, 9);
    let buffer = CudaBuffer::from_host(&device, DType::F32, &[3, 1000], &bytes)?;
    assert_eq!(buffer.len_bytes(), 12_000);
    assert_eq!(buffer.shape(), &[3, 1000]);
    assert_eq!(buffer.dtype(), DType::F32);
    assert_eq!(buffer.device().ordinal(), 0);
    assert_eq!(buffer.to_host()?, bytes);

    let empty = CudaBuffer::from_host(&device, DType::U8, &[0], &[])?;
    assert_eq!(empty.to_host()?, Vec::<u8>::new());
    Ok(())
}

#[test]
fn clones_share_the_allocation() -> TestResult {
    let Some(device) = gpu_or_skip("clones_share_the_allocation") else {
        return Ok(());
    };
    let buffer = CudaBuffer::alloc(&device, DType::U8, &[4096])?;
    let clone = buffer.clone();
    assert_eq!(clone.device_ptr(), buffer.device_ptr());
    assert_eq!(buffer.holders(), 2);
    let bytes = pattern_bytes(4096, 1);
    buffer.copy_from_host(&bytes)?;
    assert_eq!(clone.to_host()?, bytes);
    drop(buffer);
    assert_eq!(clone.holders(), 1);
    Ok(())
}

#[test]
fn host_slices_of_the_wrong_length_are_refused() -> TestResult {
    let Some(device) = gpu_or_skip("host_slices_of_the_wrong_length_are_refused") else {
        return Ok(());
    };
    let buffer = CudaBuffer::alloc(&device, DType::U16, &[8])?;
    assert_eq!(
        buffer.copy_from_host(&[0; 15]),
        Err(CudaError::LengthMismatch {
            device: 16,
            host: 15
        })
    );
    assert!(matches!(
        buffer.copy_to_host(&mut [0; 17]),
        Err(CudaError::LengthMismatch { .. })
    ));
    assert!(matches!(
        CudaBuffer::from_host(&device, DType::U16, &[8], &[0; 8]),
        Err(CudaError::LengthMismatch { .. })
    ));
    assert!(matches!(
        CudaBuffer::alloc(&device, DType::F64, &[u64::MAX, 2]),
        Err(CudaError::Descriptor(DescriptorError::ShapeOverflow { .. }))
    ));
    Ok(())
}

#[test]
fn an_unknown_device_is_a_typed_error() {
    let Some(_device) = gpu_or_skip("an_unknown_device_is_a_typed_error") else {
        return;
    };
    assert!(matches!(
        CudaDevice::open(10_000),
        Err(CudaError::InvalidDevice {
            ordinal: 10_000,
            ..
        })
    ));
}

#[test]
fn an_export_holds_the_buffer_until_released() -> TestResult {
    let Some(device) = gpu_or_skip("an_export_holds_the_buffer_until_released") else {
        return Ok(());
    };
    let buffer = CudaBuffer::from_host(&device, DType::I32, &[2, 2], &pattern_bytes(16, 3))?;
    let mut exports = Exports::new();
    let peer = PeerId(1);
    let descriptor = exports.export(&buffer, peer)?;
    assert_eq!(descriptor.size, 16);
    assert_eq!(
        descriptor.offset, 0,
        "a buffer of its own starts its allocation"
    );
    assert_eq!(descriptor.shape, vec![2, 2]);
    assert_eq!(descriptor.dtype, DType::I32);
    assert_eq!(descriptor.device, 0);
    assert_eq!(buffer.holders(), 2, "the table holds a clone");

    exports.hold(descriptor.export_id, PeerId(2))?;
    let release = Release {
        export_id: descriptor.export_id,
    };
    assert_eq!(
        exports.release(PeerId(3), release),
        Err(ExportError::NotHeld {
            export: descriptor.export_id,
            peer: PeerId(3)
        })
    );
    assert_eq!(exports.release(peer, release), Ok(false));
    assert_eq!(exports.peer_gone(PeerId(2)), 1);
    assert!(exports.is_empty());
    assert_eq!(buffer.holders(), 1);
    assert_eq!(
        exports.release(peer, release),
        Err(ExportError::UnknownExport(descriptor.export_id))
    );
    assert_eq!(
        exports.hold(ExportId(12345), peer),
        Err(ExportError::UnknownExport(ExportId(12345)))
    );
    Ok(())
}

#[test]
fn a_failed_import_still_owes_its_release() -> TestResult {
    let Some(device) = gpu_or_skip("a_failed_import_still_owes_its_release") else {
        return Ok(());
    };
    let buffer = CudaBuffer::from_host(&device, DType::U8, &[64], &pattern_bytes(64, 5))?;
    let mut exports = Exports::new();
    let descriptor = exports.export(&buffer, PeerId(1))?;
    // The descriptor is "sent" twice below: two holds.
    exports.hold(descriptor.export_id, PeerId(1))?;
    let importer = Importer::new();

    // Out of bounds: refused before the driver is asked.
    let mut bad = descriptor.clone();
    bad.offset = u64::MAX;
    assert!(matches!(
        importer.import(&bad, &device),
        Err(CudaError::Descriptor(DescriptorError::OutOfBounds { .. }))
    ));
    // CUDA does not open a handle in the process that made it: within a process the
    // buffer itself is passed. Either way, the release is due once the import is gone.
    match importer.import(&descriptor, &device) {
        Err(CudaError::OpenMemHandle { device: 0, .. }) => {}
        Err(e) => return Err(format!("unexpected error: {e}").into()),
        Ok(imported) => {
            println!("note: this driver opened a handle in the process that exported it");
            drop(imported);
        }
    }
    assert_eq!(importer.open_mappings(), 0);
    let releases = importer.take_releases();
    assert_eq!(releases.len(), 2);
    assert_eq!(exports.release(PeerId(1), releases[0]), Ok(false));
    assert_eq!(exports.release(PeerId(1), releases[1]), Ok(true));
    assert_eq!(buffer.holders(), 1);
    Ok(())
}
