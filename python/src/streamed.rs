//! `troupe._host.CallItems`: a streaming call a Python host reads, each item as the target
//! yields it (an extension's generator method), blocking or awaited.
//!
//! The call goes through the runtime's streaming call path ([`Caller::call_stream`]), so the
//! credit window bounds what the generator runs ahead of the reader, the deadline covers
//! the whole stream, and closing the items (or dropping them) abandons the call: the
//! extension stops its generator at its next `yield`.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use troupe_pyvalue::convert::{Path, to_python};
use troupe_runtime::{Call, CallStream, Caller};
use troupe_value::{CallError, Value};

use crate::completion::LoopQueue;
use crate::errors::call_error;
use crate::runtime::runtime;

/// Items the extension may produce ahead of the reader.
pub(crate) const STREAM_WINDOW: u32 = 16;

/// The stream, shared by the reads in flight; `None` once closed.
type Shared = Arc<tokio::sync::Mutex<Option<CallStream>>>;

/// The reader's end of a streaming call (see the module).
#[pyclass(frozen, module = "troupe._host", name = "CallItems")]
pub(crate) struct CallItems {
    stream: Shared,
    /// Set by [`CallItems::close`]: reads in flight end at once.
    closed: tokio::sync::watch::Sender<bool>,
}

impl CallItems {
    /// Starts `call` on `caller` as a stream with deadline `timeout` (`None`: the target's
    /// default).
    pub(crate) fn start(caller: &Caller, call: Call, timeout: Option<Duration>) -> CallItems {
        let stream = caller.call_stream(call, timeout, STREAM_WINDOW);
        CallItems {
            stream: Arc::new(tokio::sync::Mutex::new(Some(stream))),
            closed: tokio::sync::watch::Sender::new(false),
        }
    }

    /// A read of the next item: `Ok(Some)`, `Ok(None)` at the end (or once closed), or the
    /// call's error (which ends the stream).
    fn read(&self) -> impl Future<Output = Result<Option<Value>, CallError>> + Send + 'static {
        let stream = self.stream.clone();
        let mut closed = self.closed.subscribe();
        async move {
            let next = async {
                let mut stream = stream.lock().await;
                match stream.as_mut() {
                    Some(stream) => stream.next().await.transpose(),
                    None => Ok(None),
                }
            };
            tokio::select! {
                next = next => next,
                _ = closed.wait_for(|closed| *closed) => Ok(None),
            }
        }
    }
}

#[pymethods]
impl CallItems {
    /// The next item, blocking without the GIL (Ctrl-C abandons the call); `None` at the
    /// end. The call's error is raised as its `troupe.CallError` class.
    fn next(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let read = self.read();
        match runtime()?.run(py, move || read) {
            Ok(Ok(Some(item))) => Ok(Some(to_python(py, &item, &Path::Root("item"))?.unbind())),
            Ok(Ok(None)) => Ok(None),
            Ok(Err(error)) => Err(call_error(py, &error)),
            Err(interrupted) => {
                self.close();
                Err(interrupted)
            }
        }
    }

    /// Settles `future` (of the loop `queue` serves) with the next item, or
    /// `troupe._hosting._END`, or the call's error.
    fn next_async(&self, queue: &LoopQueue, future: Py<PyAny>) -> PyResult<()> {
        let read = self.read();
        let settle = queue.settle();
        runtime()?.spawn(move || async move { settle.complete(future, read.await) })?;
        Ok(())
    }

    /// Abandons the call (the extension's generator stops at its next `yield`); reads end.
    fn close(&self) {
        // The first close only (the watch's previous value says).
        if self.closed.send_replace(true) {
            return;
        }
        // Dropping the stream abandons the call; a read in flight lets go of it first.
        let stream = self.stream.clone();
        if let Ok(runtime) = runtime() {
            let _ = runtime.spawn(move || async move {
                stream.lock().await.take();
            });
        }
    }
}

impl Drop for CallItems {
    fn drop(&mut self) {
        self.close();
    }
}
