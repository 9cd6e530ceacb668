//! Without a CUDA driver, every entry point says so with `CudaError::NoDriver`.

use troupe_cuda::{CudaDevice, CudaError, device_count, driver_available};

#[test]
fn every_entry_point_returns_no_driver() {
    if driver_available() {
        println!("skipped: a CUDA driver is present (this test is for machines without one)");
        return;
    }
    assert_eq!(device_count(), Err(CudaError::NoDriver));
    assert!(matches!(CudaDevice::open(0), Err(CudaError::NoDriver)));
    // Still no panic on a second try (the outcome is cached, not the load retried badly).
    assert!(matches!(CudaDevice::open(3), Err(CudaError::NoDriver)));
    assert_eq!(
        CudaError::NoDriver.to_string(),
        "no CUDA driver on this machine"
    );
}
