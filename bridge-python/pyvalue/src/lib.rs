//! troupe's values as Python objects and back, for the two native modules of the `troupe`
//! package: the child side of the bridge (`troupe._native`, in every extension's venv) and
//! the Python host (`troupe._host`). One conversion serves both, so a value reads the same
//! wherever Python meets troupe.
//!
//! - [`convert`]: [`Value`](troupe_value::Value) to Python and back (numpy views of shared
//!   memory, media, DLPack, CUDA tensors), with errors that say where a value sits.
//! - [`view`]: the buffer object numpy arrays of troupe memory view.
//! - [`pool`]: this process's shared-memory pool as Python sees it (`troupe.empty`).
//! - [`call_error`]: a call's error as the `troupe.CallError` hierarchy takes it.
//! - [`HostArray`](host_array::HostArray) and, with `cuda`, [`CudaArray`](cuda::CudaArray).

#![warn(missing_docs, unreachable_pub)]

pub mod call_error;
pub mod convert;
#[cfg(feature = "cuda")]
pub mod cuda;
mod dlpack;
pub mod errors;
pub mod host_array;
pub mod pool;
pub mod view;

use pyo3::prelude::*;

/// Adds what both native modules offer to `m`: `BufferView`, `HostArray`, `CudaArray`
/// (with `cuda`), `pool_alloc`, `slot_of` and `SHM_THRESHOLD`.
///
/// # Errors
/// Python's, when the module cannot take an attribute.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pool::pool_alloc, m)?)?;
    m.add_function(wrap_pyfunction!(pool::slot_of, m)?)?;
    m.add_class::<view::BufferView>()?;
    m.add_class::<host_array::HostArray>()?;
    #[cfg(feature = "cuda")]
    m.add_class::<cuda::CudaArray>()?;
    m.add("SHM_THRESHOLD", troupe_protocol::SHM_THRESHOLD)?;
    Ok(())
}
