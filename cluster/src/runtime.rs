//! The runtime zenoh runs on.
//!
//! zenoh panics when it is driven from tokio's current-thread scheduler, which is what actix
//! runs on, and closing its objects (a dropped session, queryable or token) may block. So
//! every zenoh call runs on this process-wide multi-thread runtime, and every zenoh object is
//! kept in an [`OnCluster`] that drops it here too, whichever thread lets go of it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

use crate::error::ClusterError;

static RUNTIME: OnceLock<Result<Runtime, Arc<std::io::Error>>> = OnceLock::new();

/// The cluster runtime, started on first use (two workers: zenoh has its own threads too).
pub(crate) fn handle() -> Result<&'static Handle, ClusterError> {
    let runtime = RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("troupe-cluster")
            .enable_all()
            .build()
            .map_err(Arc::new)
    });
    match runtime {
        Ok(runtime) => Ok(runtime.handle()),
        Err(error) => Err(ClusterError::Runtime(error.clone())),
    }
}

/// Runs `future` on the cluster runtime and waits for it from any executor. Dropping the
/// returned future aborts the task.
pub(crate) fn spawn<F>(future: F) -> Result<Task<F::Output>, ClusterError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(Task(handle()?.spawn(future)))
}

/// A task on the cluster runtime, aborted when dropped.
pub(crate) struct Task<T>(JoinHandle<T>);

impl<T> Future for Task<T> {
    type Output = Result<T, ClusterError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|joined| joined.map_err(|_| ClusterError::TaskFailed))
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A zenoh object that is dropped on the cluster runtime, wherever its owner lets go.
pub(crate) struct OnCluster<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> OnCluster<T> {
    pub(crate) fn new(value: T) -> OnCluster<T> {
        OnCluster(Some(value))
    }

    pub(crate) fn get(&self) -> &T {
        // Only `drop` takes the value out.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl<T: Send + 'static> Drop for OnCluster<T> {
    fn drop(&mut self) {
        let Some(value) = self.0.take() else { return };
        match handle() {
            Ok(handle) => drop(handle.spawn(async move { drop(value) })),
            // No runtime could ever start, so no zenoh object exists to drop.
            Err(_) => std::mem::forget(value),
        }
    }
}
