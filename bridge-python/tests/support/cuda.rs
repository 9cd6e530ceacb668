//! Shared by the CUDA tests through a real child: skipping without a GPU, the venv the CUDA
//! plugins run in, the byte pattern both sides compute, and polling for releases.

use std::time::{Duration, Instant};

use troupe_bridge_python::env::{EnvSpec, Venv};
use troupe_bridge_python::extension::ExtensionRef;
use troupe_cuda::{CudaDevice, device_count, driver_available};
use troupe_value::Value;

use super::venv_for;

/// Set to `1` to build the test venv on the system site-packages, installing nothing (a GPU
/// machine with torch or cupy in the system Python and no package index).
pub(crate) const SYSTEM_SITE_PACKAGES: &str = "TROUPE_TEST_SYSTEM_SITE_PACKAGES";

/// Device 0, or `None` after printing why the test is skipped.
pub(crate) fn gpu_or_skip(test: &str) -> Option<CudaDevice> {
    if !driver_available() {
        println!("{test}: skipped: no CUDA driver");
        return None;
    }
    match device_count() {
        Ok(0) | Err(_) => {
            println!("{test}: skipped: a CUDA driver but no usable CUDA device");
            None
        }
        Ok(_) => match CudaDevice::shared(0) {
            Ok(device) => Some(device),
            Err(e) => panic!("{test}: device 0 is visible but does not open: {e}"),
        },
    }
}

/// The venv of the CUDA plugins (no dependencies: torch or cupy only from the system
/// site-packages, with [`SYSTEM_SITE_PACKAGES`]), built off the arbiter.
pub(crate) async fn cuda_venv() -> Venv {
    actix_rt::task::spawn_blocking(|| {
        let system = std::env::var(SYSTEM_SITE_PACKAGES).is_ok_and(|v| v == "1");
        venv_for(&EnvSpec::new(Vec::<String>::new()).with_system_site_packages(system))
    })
    .await
    .expect("venv task")
}

/// `(i * 7 + seed) % 251` for `i` in `from..from + n`: the bytes the CUDA plugins make.
pub(crate) fn pattern_from(from: usize, n: usize, seed: usize) -> Vec<u8> {
    (from..from + n)
        .map(|i| ((i * 7 + seed) % 251) as u8)
        .collect()
}

/// [`pattern_from`] 0.
pub(crate) fn pattern(n: usize, seed: usize) -> Vec<u8> {
    pattern_from(0, n, seed)
}

/// Waits (10 s at most) for `done`.
pub(crate) async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "not within 10 s: {what}");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The child's CUDA exports the host has not released (`troupe.cuda_stats()`; the plugin's
/// `stats` method).
pub(crate) async fn child_exports(ext: &ExtensionRef) -> i64 {
    let stats = ext.call("stats", vec![]).await.expect("stats answers");
    stats
        .get("exported")
        .and_then(Value::as_int)
        .expect("stats has `exported`")
}
