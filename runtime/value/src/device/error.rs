//! Why a device array cannot be used, sent or received.

use std::error::Error as StdError;
use std::sync::Arc;

use thiserror::Error;

use super::descriptor::{DescriptorError, ExportId};

/// The cause a device library (`troupe-cuda`) gave, kept whole for the caller.
type Cause = Arc<dyn StdError + Send + Sync>;

/// Why a [`DeviceArray`](super::DeviceArray) could not be exported, imported or used.
#[derive(Debug, Clone, Error)]
pub enum DeviceError {
    /// This process has no CUDA driver, so it can neither make nor map device memory.
    #[error("no CUDA driver in this process: a CUDA array cannot be used here")]
    NoDriver,
    /// A peer's array was decoded outside a connection (no plane imported it): only its
    /// descriptor is here.
    #[error("{export} of a peer was decoded outside a connection and not imported")]
    NotImported {
        /// The peer's export.
        export: ExportId,
    },
    /// The peer's array could not be mapped into this process (its release went back at
    /// once).
    #[error("cannot import a peer's CUDA array ({export}): {cause}")]
    Import {
        /// The peer's export.
        export: ExportId,
        /// What the device library said.
        cause: Cause,
    },
    /// This process's array could not be exported to the peer.
    #[error("cannot export a CUDA array: {0}")]
    Export(Cause),
    /// The array was imported from another process than the receiver: CUDA cannot export a
    /// mapping again, so it cannot be sent on (only back to its exporter). Copy it into
    /// memory of this process first.
    #[error(
        "a CUDA array imported from another process cannot be sent on: copy it into a buffer of this process first"
    )]
    Forwarded,
    /// The peer sent back an export of this process that it holds no import of.
    #[error("the peer sent back {0}, which it does not hold")]
    UnknownExport(ExportId),
    /// The peer sent back an export of this process describing more bytes (its dtype times
    /// its shape) than the export has: it would read past the buffer.
    #[error("the peer sent back {export} as {claimed} bytes, but it has {exported}")]
    ReturnedTooLarge {
        /// The export.
        export: ExportId,
        /// Bytes the peer's dtype and shape describe.
        claimed: u64,
        /// Bytes the export has.
        exported: u64,
    },
    /// The array's owner is not memory the connection's plane knows how to export.
    #[error("a device array whose memory the connection does not know cannot be sent")]
    UnknownMemory,
    /// The connection carries no device arrays (it has no plane).
    #[error("this connection carries no CUDA arrays")]
    NoPlane,
    /// The shape, dtype and size do not hold together.
    #[error(transparent)]
    Descriptor(#[from] DescriptorError),
}

impl DeviceError {
    /// An [`DeviceError::Import`] of `export` because of `cause`.
    pub fn import(export: ExportId, cause: impl StdError + Send + Sync + 'static) -> DeviceError {
        DeviceError::Import {
            export,
            cause: Arc::new(cause),
        }
    }

    /// An [`DeviceError::Export`] because of `cause`.
    pub fn export(cause: impl StdError + Send + Sync + 'static) -> DeviceError {
        DeviceError::Export(Arc::new(cause))
    }
}
