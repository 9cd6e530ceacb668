use std::future::Future;
use std::pin::Pin;

use thiserror::Error;
use troupe_value::Value;

use crate::params::ParamError;

/// Why a node could not build or could not process an item.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The node's parameters are wrong (unknown node type, missing, wrong type, out of range).
    #[error(transparent)]
    Params(#[from] ParamError),
    /// The input is not what the node takes (e.g. text given to an audio node).
    #[error("{node} expects {expected}, got {got}")]
    WrongInput {
        /// The node type.
        node: &'static str,
        /// What it takes.
        expected: &'static str,
        /// The type name of what it got ([`Value::type_name`]).
        got: &'static str,
    },
    /// The input has the right type but a value the node cannot process (divide by zero,
    /// unknown operator, sample rate it cannot handle...).
    #[error("{node}: {reason}")]
    InvalidInput {
        /// The node type.
        node: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{node}: {path}: {source}")]
    Io {
        /// The node type.
        node: &'static str,
        /// The file.
        path: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The method of a bridged extension that implements the node failed for this input (a
    /// Python exception, a crash of its process, a deadline).
    #[error("python node calling {method}: {source}")]
    Call {
        /// The extension method called.
        method: String,
        /// Why it gave no answer (boxed: it is large, and rare).
        #[source]
        source: Box<troupe_value::CallError>,
    },
    /// The node runs on another host (`host = "NAME"`) and gave no outputs for this input
    /// there: the node failed on it (a [`CallError::Remote`](troupe_value::CallError::Remote)
    /// named `NodeError`), or the batch carrying it failed (its host lost past the resend
    /// window, a restarted host that lost the node's state).
    #[error("node {node} on host {host}: {source}")]
    Remote {
        /// The node, as `PIPELINE/NODE`.
        node: String,
        /// The host that runs it.
        host: String,
        /// Why there are no outputs (boxed: it is large, and rare).
        #[source]
        source: Box<troupe_value::CallError>,
    },
    /// A file's contents could not be decoded or encoded (bad WAV header, corrupt frame...).
    #[error("{node}: {reason}")]
    Format {
        /// The node type.
        node: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Outputs that arrive later, one by one: what an asynchronous node (a method of a bridged
/// Python extension, say) hands to [`Emitter::defer`] or [`Emitter::defer_stream`].
pub struct Deferred(Pin<Box<dyn OutputStream>>);

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deferred")
    }
}

impl Deferred {
    /// The next output; `None` once there are no more. After an error, nothing more comes.
    pub async fn next(&mut self) -> Option<Result<Value, NodeError>> {
        std::future::poll_fn(|cx| self.0.as_mut().poll_next(cx)).await
    }
}

/// Outputs produced over time (a generator in another process, say), each as soon as it
/// exists.
pub trait OutputStream: Send + 'static {
    /// Polls for the next output: `Ready(None)` once there are no more.
    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Value, NodeError>>>;
}

/// A future of all outputs at once, as a stream of them.
struct AllAtOnce<F> {
    outputs: Option<Pin<Box<F>>>,
    ready: std::vec::IntoIter<Value>,
}

impl<F> OutputStream for AllAtOnce<F>
where
    F: Future<Output = Result<Vec<Value>, NodeError>> + Send + 'static,
{
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Value, NodeError>>> {
        use std::task::Poll;
        if let Some(outputs) = self.outputs.as_mut() {
            let outputs = std::task::ready!(outputs.as_mut().poll(cx));
            self.outputs = None;
            match outputs {
                Ok(outputs) => self.ready = outputs.into_iter(),
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
        Poll::Ready(self.ready.next().map(Ok))
    }
}

/// Where a node puts its outputs: 0..N per input, at once ([`Emitter::emit`]) or later
/// ([`Emitter::defer`]).
#[derive(Default)]
pub struct Emitter {
    items: Vec<Value>,
    deferred: Option<Deferred>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("items", &self.items)
            .field("deferred", &self.deferred.is_some())
            .finish()
    }
}

impl Emitter {
    /// An empty emitter.
    pub fn new() -> Emitter {
        Emitter::default()
    }

    /// Emits one output.
    pub fn emit(&mut self, value: impl Into<Value>) {
        self.items.push(value.into());
    }

    /// Makes this input's outputs (after those emitted already) the ones `outputs` resolves
    /// to. The runtime awaits it before the node's next input, so order is kept; an error
    /// counts as the node's error for this input. A second call replaces the first.
    pub fn defer<F>(&mut self, outputs: F)
    where
        F: Future<Output = Result<Vec<Value>, NodeError>> + Send + 'static,
    {
        self.deferred = Some(Deferred(Box::pin(AllAtOnce {
            outputs: Some(Box::pin(outputs)),
            ready: Vec::new().into_iter(),
        })));
    }

    /// Makes this input's outputs (after those emitted already) the ones `outputs` produces,
    /// each sent downstream as soon as it comes. The runtime takes the next one only once
    /// the last was taken downstream (backpressure reaches the producer), and takes the
    /// node's next input only after the last; an error ends the stream and counts as the
    /// node's error for this input (outputs sent before it stay sent). A second call
    /// replaces the first.
    pub fn defer_stream(&mut self, outputs: impl OutputStream) {
        self.deferred = Some(Deferred(Box::pin(outputs)));
    }

    /// Takes the deferred outputs, if the node deferred any.
    pub fn take_deferred(&mut self) -> Option<Deferred> {
        self.deferred.take()
    }

    /// Takes the outputs emitted so far, in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Value> {
        self.items.drain(..)
    }

    /// The outputs emitted so far.
    pub fn items(&self) -> &[Value] {
        &self.items
    }

    /// Number of outputs emitted so far.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing has been emitted.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// A processing node: takes items, emits 0..N items for each.
///
/// A node answers at once through the [`Emitter`], or later by handing it a future
/// ([`Emitter::defer`]): the runtime awaits it before the next input.
///
/// The runtime calls `initialize` once, then `process` for every input in order, then
/// `flush` once at end of stream (its outputs are delivered before end of stream passes on),
/// then `shutdown`. `interrupt` comes on the control lane (barge-in): drop buffered state.
pub trait Node: Send + 'static {
    /// The node's type name, as in the catalog (`"audio.resample"`).
    fn type_name(&self) -> &'static str;

    /// Called once before the first input.
    fn initialize(&mut self) -> Result<(), NodeError> {
        Ok(())
    }

    /// Processes one input.
    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError>;

    /// How many inputs may have deferred outputs pending at once (at least 1, the
    /// default). With more, the runtime hands the node its next input while earlier
    /// inputs' deferred outputs are still coming (each runs to its end as soon as it is
    /// deferred) and delivers every input's outputs in input order: for a node whose work
    /// happens elsewhere (a remote call), several round trips overlap.
    fn concurrency(&self) -> usize {
        1
    }

    /// End of stream: emit whatever is still buffered.
    fn flush(&mut self, _out: &mut Emitter) -> Result<(), NodeError> {
        Ok(())
    }

    /// Interrupt (barge-in): drop buffered state without emitting it.
    fn interrupt(&mut self) {}

    /// Called once after the last `flush`, also after an error.
    fn shutdown(&mut self) {}
}

/// Whether a source has more to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    /// Call `pull` again.
    More,
    /// The stream is over.
    Done,
}

/// A node that produces a stream from nothing (a file, a generator).
pub trait Source: Send + 'static {
    /// The node's type name, as in the catalog (`"audio.file_source"`).
    fn type_name(&self) -> &'static str;

    /// Emits the next item or items; returns [`SourceState::Done`] at the end.
    fn pull(&mut self, out: &mut Emitter) -> Result<SourceState, NodeError>;

    /// Whether it reads a live stream (a FIFO, a socket): then its pulls may block, so the
    /// pipeline runs it on a thread of its own (unless given an arbiter), and each pull's
    /// items go downstream at once, rather than a few pulls' worth together.
    fn is_live(&self) -> bool {
        false
    }

    /// Total length of the stream in seconds of media, when known (for progress bars).
    fn media_seconds(&self) -> Option<f64> {
        None
    }
}
