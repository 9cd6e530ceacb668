//! The crate's error type.

use cudarc::driver::sys;
use thiserror::Error;
use troupe_value::device::DescriptorError;

use crate::export::ExportError;

/// Why a CUDA operation of this crate failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CudaError {
    /// No CUDA driver on this machine: `libcuda` could not be loaded. Every entry point returns
    /// this instead of panicking, so code that may run without a GPU can branch on it.
    #[error("no CUDA driver on this machine")]
    NoDriver,
    /// The CUDA driver library lacks an entry point this crate calls: the driver is older than
    /// the CUDA 12 API this crate is built against.
    #[error("the CUDA driver has no `{0}`: it is too old for troupe-cuda")]
    MissingSymbol(&'static str),
    /// A CUDA driver call failed; `code` is the driver's result, whose `Debug` is its name
    /// (`CUDA_ERROR_OUT_OF_MEMORY`, ...).
    #[error("{call} failed: {code:?}")]
    Driver {
        /// The driver function that failed.
        call: &'static str,
        /// What it returned.
        code: sys::CUresult,
    },
    /// The exporter's device is not one this process sees (by UUID: its
    /// `CUDA_VISIBLE_DEVICES` hides it).
    #[error("the CUDA device {} is not visible in this process", uuid_text(uuid))]
    UnknownDevice {
        /// The device's UUID.
        uuid: [u8; 16],
    },
    /// There is no CUDA device with this ordinal in this process.
    #[error("no CUDA device {ordinal}: this process sees {count}")]
    InvalidDevice {
        /// The ordinal asked for.
        ordinal: usize,
        /// How many devices this process sees.
        count: usize,
    },
    /// A shape, dtype, size or byte range that does not hold together (a descriptor from a
    /// peer with a bad offset or size, a shape too large to address).
    #[error(transparent)]
    Descriptor(#[from] DescriptorError),
    /// A host slice whose length differs from the device buffer it is copied to or from.
    #[error("host slice of {host} bytes for a device buffer of {device} bytes")]
    LengthMismatch {
        /// Bytes on the device.
        device: u64,
        /// Bytes on the host.
        host: u64,
    },
    /// A peer's memory handle could not be opened in this process (the exporter freed it, it
    /// comes from this very process, or the device cannot reach it).
    #[error("cannot open a peer's CUDA memory handle on device {device}: {code:?}")]
    OpenMemHandle {
        /// The device it was opened on.
        device: usize,
        /// What `cuIpcOpenMemHandle` returned.
        code: sys::CUresult,
    },
    /// A peer's event handle could not be opened or waited on, so the data's stream order
    /// cannot be kept.
    #[error("cannot wait on a peer's CUDA event on device {device}: {call}: {code:?}")]
    OpenEventHandle {
        /// The device it was opened on.
        device: usize,
        /// The driver function that failed.
        call: &'static str,
        /// What it returned.
        code: sys::CUresult,
    },
    /// The exports table refused a request (an unknown export, or a release by a peer that
    /// does not hold it).
    #[error(transparent)]
    Export(#[from] ExportError),
}

/// Turns a driver result into `Ok` or [`CudaError::Driver`] naming `call`.
pub(crate) fn check(call: &'static str, code: sys::CUresult) -> Result<(), CudaError> {
    match code {
        sys::CUresult::CUDA_SUCCESS => Ok(()),
        code => Err(CudaError::Driver { call, code }),
    }
}

/// A device UUID as `nvidia-smi -L` shows it (`GPU-xxxxxxxx-xxxx-...`).
fn uuid_text(uuid: &[u8; 16]) -> String {
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
