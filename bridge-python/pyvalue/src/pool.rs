//! This process's shared-memory pool as Python sees it: what `troupe.empty` and
//! `troupe.zeros` wrap, and which slot an array views.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use troupe_shm::pool::Pool;

use crate::view::{BufferView, find_view};

/// A writable buffer of `nbytes` in this process's shared-memory pool (what `troupe.empty`
/// and `troupe.zeros` wrap in a numpy array); zero-filled when `zero`.
#[pyfunction]
#[pyo3(signature = (nbytes, zero=false))]
pub fn pool_alloc(py: Python<'_>, nbytes: usize, zero: bool) -> PyResult<BufferView> {
    crate::convert::pool_view(py, nbytes, zero).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// `(region id, offset, local)` of the pool slot whose start `obj` (a numpy array) views,
/// or `None`; `local` says whether the slot is this process's.
#[pyfunction]
pub fn slot_of(obj: &Bound<'_, PyAny>) -> Option<(u64, u64, bool)> {
    let view = find_view(obj)?;
    let buffer = view.get().buffer();
    let key = buffer.pool_key()?;
    Some((key.region, key.offset, buffer.in_own_pool()))
}

/// The pool's counters as a dict: `live_slots`, `live_bytes`, `regions`, `region_bytes`.
///
/// # Errors
/// Python's, when the dict cannot be filled.
pub fn pool_counters(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let stats = Pool::global().stats();
    let dict = PyDict::new(py);
    dict.set_item("live_slots", stats.live_slots)?;
    dict.set_item("live_bytes", stats.live_bytes)?;
    dict.set_item("regions", stats.regions)?;
    dict.set_item("region_bytes", stats.region_bytes)?;
    Ok(dict)
}
