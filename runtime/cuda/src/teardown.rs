//! Driver calls that fail in destructors: a `Drop` cannot return the error, so it is logged
//! (a `tracing` warning) and counted, for tests and users to see ([`teardown_errors`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::CudaError;

static FAILED: AtomicU64 = AtomicU64::new(0);

/// How many driver calls failed, in this process so far, while troupe-cuda freed or gave
/// back something: a buffer's memory, an import's mapping or its stream wait, an exported
/// event, a thread's previous context. Each one is also a `tracing` warning. Anything but 0
/// means device memory leaked, a mapping left open or a context not restored (or a device
/// that failed, or whose peer died): watch it in tests and metrics. The Python child reports
/// its own as `troupe.cuda_stats()["teardown_errors"]`.
pub fn teardown_errors() -> u64 {
    FAILED.load(Ordering::Relaxed)
}

/// Logs and counts `error`, met while doing `what` in a destructor.
pub(crate) fn failed(error: &CudaError, what: fmt::Arguments<'_>) {
    FAILED.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(error = %error, "{what}");
}

#[cfg(test)]
mod tests {
    use cudarc::driver::sys;

    use super::*;

    #[test]
    fn a_failed_teardown_is_counted() {
        let before = teardown_errors();
        let error = CudaError::Driver {
            call: "cuMemFree",
            code: sys::CUresult::CUDA_ERROR_INVALID_VALUE,
        };
        failed(&error, format_args!("freeing {} bytes", 16));
        assert!(teardown_errors() > before);
    }
}
