//! A method of a bridged Python extension used as a pipeline node.

use troupe_bridge_python::extension::ExtensionRef;
use troupe_nodes::{Emitter, Node, NodeError};
use troupe_value::{CallError, Map, Value};

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
    /// Free-form parameters (the node's `params` table), passed to the method.
    pub params: Map,
}

/// Calls `method(item, **params)` of an extension for every input.
///
/// - A plain method's return value is one output; `None` is no output.
/// - With `generator`, the method yields (or returns a list of) any number of outputs.
/// - With `flush`, `<method>_flush(**params)` runs at end of stream; what it returns (a
///   list, or a generator) is emitted before end of stream passes on.
///
/// Each call is awaited before the next input ([`Emitter::defer`]), so the order of
/// outputs is the order of inputs. A Python exception, a crash of the extension's process
/// or a deadline is [`NodeError::Call`]: the node's error policy decides what follows,
/// while the extension restarts under its own supervision.
#[derive(Debug, Clone)]
pub struct PythonNode {
    extension: ExtensionRef,
    method: String,
    flush_method: Option<String>,
    generator: bool,
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
    /// The node `spec` describes, served by `extension`.
    pub fn new(extension: ExtensionRef, spec: &PythonNodeSpec) -> PythonNode {
        PythonNode {
            extension,
            method: spec.method.clone(),
            flush_method: spec.flush.then(|| format!("{}_flush", spec.method)),
            generator: spec.generator,
            params: spec.params.clone(),
        }
    }

    fn call(&self, method: &str, args: Vec<Value>, many: bool, out: &mut Emitter) {
        let extension = self.extension.clone();
        let mut call = troupe_runtime::Call::new(method.to_owned(), args);
        call.kwargs = self.params.clone();
        let method = method.to_owned();
        out.defer(async move {
            let value =
                extension
                    .call_with(call, None)
                    .await
                    .map_err(|source| NodeError::Call {
                        method: method.clone(),
                        source: Box::new(source),
                    })?;
            match (many, value) {
                (_, Value::Null) => Ok(Vec::new()),
                (true, Value::List(items)) => Ok(items),
                (true, other) => Err(NodeError::Call {
                    method,
                    source: Box::new(troupe_value::CallError::bad_argument(
                        "result",
                        format!("expected a generator or a list, got {}", other.type_name()),
                    )),
                }),
                (false, value) => Ok(vec![value]),
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

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        if let Some(method) = &self.flush_method {
            self.call(method, Vec::new(), true, out);
        }
        Ok(())
    }
}
