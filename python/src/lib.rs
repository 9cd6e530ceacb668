//! `troupe._host`: troupe's runtime for Python programs, the native half of `troupe.Host`
//! and `troupe.Pipeline` (the Python half is `troupe/_hosting.py` and `troupe/pipelines.py`).
//!
//! A thin binding: extensions start through the same extension host, calls go through the
//! same call path, pipelines build from the same manifest loader as in a Rust program or
//! `troupe run`. The runtime runs on a thread of its own ([`runtime`]); Python threads wait
//! for it without the GIL, and asyncio futures are settled on their loop's thread
//! ([`completion`]); values convert as in an extension (`troupe-pyvalue`), so numpy
//! arrays of 64 KiB and more cross through shared memory without a copy both ways.
//!
//! ```text
//! Host(manifest=None, quiet=False)          add_extension / add_singleton / add_pipeline,
//!                                           serve(name) -> JobQueue, start(), shutdown(),
//!                                           extension(name) / singleton(name) -> Target
//! Target                                    call(method, args, kwargs, timeout),
//!                                           call_async(queue, future, ...) -> Pending,
//!                                           stream(method, ...) -> CallItems,
//!                                           status(), events(), pid, methods
//! Events.next(timeout) / next_async(...)    an extension's supervision events
//! JobQueue.next() -> (method, args, kwargs, Reply) | None       a Python object's calls
//! PipelineRun                               a running pipeline fed from Python
//! LoopQueue                                 an event loop's finished calls (eventfd)
//! pool_alloc / slot_of / pool_stats / HostArray / BufferView    shared memory, as in a child
//! shutdown_runtime()                        at interpreter exit
//! ```

#![warn(missing_docs, unreachable_pub)]

mod completion;
mod errors;
mod events;
mod host;
mod pipeline;
mod runtime;
mod served;
mod streamed;
mod target;

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// This process's pool: `live_slots`, `live_bytes`, `regions`, `region_bytes`.
#[pyfunction]
fn pool_stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    troupe_pyvalue::pool::pool_counters(py)
}

/// Stops the runtime (at interpreter exit, after every host has shut down).
#[pyfunction]
fn shutdown_runtime(py: Python<'_>) {
    if let Some(runtime) = runtime::started() {
        runtime::linger_at_exit(py, LINGER_AT_EXIT);
        py.detach(|| runtime.stop());
    }
}

/// How long interpreter exit waits for starts and shutdowns that Ctrl-C stopped waiting
/// for (a second Ctrl-C stops it sooner).
const LINGER_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `os.register_at_fork(after_in_child=...)`: marks the runtime as the parent's.
#[pyfunction]
fn after_fork_in_child() {
    runtime::after_fork_in_child();
}

/// The `troupe._host` module.
#[pymodule]
#[pyo3(name = "_host")]
fn host_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    troupe_pyvalue::register(m)?;
    m.add_function(wrap_pyfunction!(pool_stats, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown_runtime, m)?)?;
    let after_fork = wrap_pyfunction!(after_fork_in_child, m)?;
    let kwargs = pyo3::types::PyDict::new(m.py());
    kwargs.set_item("after_in_child", &after_fork)?;
    m.py()
        .import("os")?
        .call_method("register_at_fork", (), Some(&kwargs))?;
    m.add_function(after_fork)?;
    m.add_class::<host::Host>()?;
    m.add_class::<target::Target>()?;
    m.add_class::<target::Pending>()?;
    m.add_class::<events::Events>()?;
    m.add_class::<streamed::CallItems>()?;
    m.add_class::<served::JobQueue>()?;
    m.add_class::<served::Reply>()?;
    m.add_class::<pipeline::PipelineRun>()?;
    m.add_class::<completion::LoopQueue>()?;
    Ok(())
}
