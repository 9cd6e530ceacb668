//! A method of a Python extension used as a pipeline node: an extension of this host
//! (bridged) or of another one (over the cluster), behind the same [`Caller`].

use std::pin::Pin;
use std::task::{Context, Poll};

use troupe_bridge_python::extension::ExtensionRef;
use troupe_nodes::{Emitter, Node, NodeError, OutputStream};
use troupe_runtime::{CallStream, Caller};
use troupe_value::{CallError, Map, Value};

/// Items a generator node may yield ahead of what downstream has taken.
pub const STREAM_WINDOW: u32 = 8;

/// A python node as data: which method of which extension it calls, and how. A manifest's
/// `type = "python"` node is one; [`PythonNode::new`] makes it into a node.
#[derive(Debug, Clone, PartialEq)]
pub struct PythonNodeSpec {
    /// The node's id.
    pub node: String,
    /// The extension, by the name it was started under.
    pub extension: String,
    /// The method called with each input.
    pub method: String,
    /// Whether the method is a generator: each value it yields is one output.
    pub generator: bool,
    /// Whether the extension has a `flush` for this node, called at end of stream.
    pub flush: bool,
    /// How many inputs' calls may be in flight at once (outputs still come in input
    /// order; see [`Node::concurrency`]). 1 unless the method is safe to call concurrently
    /// and round trips dominate (an extension on another host).
    pub concurrency: usize,
    /// Free-form parameters (the node's `params` table), passed to the method.
    pub params: Map,
}

/// Calls `method(item, **params)` of an extension for every input.
///
/// - A plain method's return value is one output; `None` is no output.
/// - With `generator`, the method yields (or returns a list of) any number of outputs, each
///   sent downstream as soon as it is yielded; the generator waits at its `yield` while
///   downstream is full (a window of [`STREAM_WINDOW`] items between them).
/// - With `flush`, `<method>_flush(**params)` runs at end of stream; what it yields or
///   returns (a list) is emitted, as it comes, before end of stream passes on.
///
/// Each call ends before the next input ([`Emitter::defer`], [`Emitter::defer_stream`]), so
/// the order of outputs is the order of inputs. A Python exception, a crash of the extension's process
/// or a deadline is [`NodeError::Call`]: the node's error policy decides what follows,
/// while the extension restarts under its own supervision. On a remote extension the same
/// holds across the link (a generator's window is granted as credit over it), and a lost
/// host is [`CallError::HostLost`].
#[derive(Debug, Clone)]
pub struct PythonNode {
    extension: Caller,
    method: String,
    flush_method: Option<String>,
    generator: bool,
    concurrency: usize,
    params: Map,
}

/// Checks, before a run, that the running `extension` offers what `spec` calls: its method,
/// and `<method>_flush` when the node flushes. (An extension not running yet is checked by
/// its first call.)
///
/// # Errors
/// [`NodeError::Call`] with [`CallError::UnknownMethod`] naming the missing method.
pub(crate) fn check_methods(
    extension: &ExtensionRef,
    spec: &PythonNodeSpec,
) -> Result<(), NodeError> {
    let Some(methods) = extension.methods() else {
        return Ok(());
    };
    let flush = spec.flush.then(|| format!("{}_flush", spec.method));
    for method in std::iter::once(spec.method.clone()).chain(flush) {
        if !methods.contains(&method) {
            return Err(NodeError::Call {
                method: method.clone(),
                source: Box::new(CallError::UnknownMethod { method }),
            });
        }
    }
    Ok(())
}

impl PythonNode {
    /// The node `spec` describes, served by `extension` (an [`ExtensionRef::caller`], or a
    /// remote extension's caller).
    pub fn new(extension: Caller, spec: &PythonNodeSpec) -> PythonNode {
        PythonNode {
            extension,
            method: spec.method.clone(),
            flush_method: spec.flush.then(|| format!("{}_flush", spec.method)),
            generator: spec.generator,
            concurrency: spec.concurrency.max(1),
            params: spec.params.clone(),
        }
    }

    /// Calls `method` for one input (or the flush): one output from its answer, or, when
    /// it `streams`, one per value it yields.
    fn call(&self, method: &str, args: Vec<Value>, streams: bool, out: &mut Emitter) {
        let mut call = troupe_runtime::Call::new(method.to_owned(), args);
        call.kwargs = self.params.clone();
        let method = method.to_owned();
        if streams {
            let items = self.extension.call_stream(call, None, STREAM_WINDOW);
            out.defer_stream(Yielded { items, method });
            return;
        }
        let extension = self.extension.clone();
        out.defer(async move {
            match extension.call(call).await {
                Ok(Value::Null) => Ok(Vec::new()),
                Ok(value) => Ok(vec![value]),
                Err(source) => Err(NodeError::Call {
                    method,
                    source: Box::new(source),
                }),
            }
        });
    }
}

impl Node for PythonNode {
    fn type_name(&self) -> &'static str {
        "python"
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        self.call(&self.method, vec![input], self.generator, out);
        Ok(())
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        if let Some(method) = &self.flush_method {
            self.call(method, Vec::new(), true, out);
        }
        Ok(())
    }
}

/// What a generator method yields, as a node's outputs.
struct Yielded {
    items: CallStream,
    method: String,
}

impl OutputStream for Yielded {
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Value, NodeError>>> {
        let this = &mut *self;
        this.items.poll_next(cx).map(|item| {
            item.map(|item| {
                item.map_err(|source| NodeError::Call {
                    method: this.method.clone(),
                    source: Box::new(source),
                })
            })
        })
    }
}
