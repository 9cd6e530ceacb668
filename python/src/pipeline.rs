//! Pipelines from Python: a manifest's pipeline (or one described in code) run on the
//! runtime, fed from Python and read back as its outputs come.
//!
//! - Each *input* is a source fed from Python ([`Input`]): a `host.input` node of the
//!   pipeline, or a source of the manifest's replaced. At most
//!   [`INPUT_QUEUE`] items wait for the pipeline; past that the feeder waits (backpressure,
//!   as on an edge).
//! - Each *output* node's outputs go to Python as `(node, value)` through one queue of
//!   [`OUTPUT_QUEUE`] items; a program that stops reading holds the pipeline.
//! - Python callables are the pipeline's `host.node` nodes ([`CallableNode`]): each input
//!   is a call of the object's worker (`troupe._hosting`), answered with the list of
//!   outputs.

use std::collections::HashMap;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use tokio::sync::mpsc;
use troupe_manifest::NodeBody;
use troupe_nodes::{Emitter, Node, NodeError, Source, SourceState};
use troupe_pipeline::{Canceller, Interrupter, RunReport};
use troupe_pyvalue::convert::{Path, from_python, to_python};
use troupe_runtime::{Call, Caller};
use troupe_value::{CallError, Value};

use crate::completion::LoopQueue;
use crate::errors::HostError;
use crate::host::Host;
use crate::runtime::{SIGNAL_CHECK, runtime};
use crate::served::{self, JobQueue};

/// Items fed from Python that may wait for an input's source.
pub(crate) const INPUT_QUEUE: usize = 32;
/// Outputs that may wait for the Python program.
pub(crate) const OUTPUT_QUEUE: usize = 256;

/// A source fed from Python: each item sent is one output; the end comes when the sender
/// closes.
struct Fed {
    items: crossbeam_channel::Receiver<Value>,
}

impl Source for Fed {
    fn type_name(&self) -> &'static str {
        "python.input"
    }

    fn pull(&mut self, out: &mut Emitter) -> Result<SourceState, NodeError> {
        match self.items.recv() {
            Ok(value) => {
                out.emit(value);
                Ok(SourceState::More)
            }
            Err(_) => Ok(SourceState::Done),
        }
    }

    fn is_live(&self) -> bool {
        true
    }
}

/// An output node: what it takes goes to Python as `[node, value]`.
struct Egress {
    node: String,
    out: mpsc::Sender<Value>,
}

impl Node for Egress {
    fn type_name(&self) -> &'static str {
        "python.output"
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let item = Value::List(vec![Value::from(self.node.as_str()), input]);
        let queue = self.out.clone();
        out.defer(async move {
            // A program that stopped reading takes nothing more.
            let _ = queue.send(item).await;
            Ok(Vec::new())
        });
        Ok(())
    }
}

/// A Python callable as a node: each input is a `process` call of its worker, whose answer
/// is the list of outputs.
struct CallableNode {
    caller: Caller,
}

impl Node for CallableNode {
    fn type_name(&self) -> &'static str {
        "python.callable"
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let caller = self.caller.clone();
        out.defer(async move {
            let error = |source: CallError| NodeError::Call {
                method: "process".into(),
                source: Box::new(source),
            };
            match caller.call(Call::new("process", vec![input])).await {
                Ok(Value::List(outputs)) => Ok(outputs),
                Ok(other) => Err(error(CallError::bad_argument(
                    "result",
                    format!("a callable node answers a list of outputs, got {other:?}"),
                ))),
                Err(e) => Err(error(e)),
            }
        });
        Ok(())
    }
}

/// The Python end of an input.
#[pyclass(frozen, module = "troupe._host", name = "Input")]
pub(crate) struct Input {
    items: Mutex<Option<crossbeam_channel::Sender<Value>>>,
}

impl Input {
    fn sender(&self) -> Option<crossbeam_channel::Sender<Value>> {
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[pymethods]
impl Input {
    /// Feeds `item`, waiting (without the GIL) while the input is full; `False` once the
    /// run no longer reads it.
    fn send(&self, py: Python<'_>, item: &Bound<'_, PyAny>) -> PyResult<bool> {
        let value = from_python(item, &Path::Root("item"), 0)?;
        let Some(sender) = self.sender() else {
            return Ok(false);
        };
        let mut value = match sender.try_send(value) {
            Ok(()) => return Ok(true),
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => return Ok(false),
            Err(crossbeam_channel::TrySendError::Full(value)) => value,
        };
        // Full: wait for room without the GIL, letting Ctrl-C through (which abandons this
        // item: it is not sent later).
        loop {
            let sent = py.detach(|| sender.send_timeout(value, SIGNAL_CHECK));
            match sent {
                Ok(()) => return Ok(true),
                Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return Ok(false),
                Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => {
                    py.check_signals()?;
                    value = back;
                }
            }
        }
    }

    /// Feeds `item` only if the input has room now: `True` if it took it.
    fn try_send(&self, item: &Bound<'_, PyAny>) -> PyResult<bool> {
        let value = from_python(item, &Path::Root("item"), 0)?;
        Ok(self
            .sender()
            .is_some_and(|sender| sender.try_send(value).is_ok()))
    }

    /// Ends the input: its source ends once what was fed has gone in.
    fn close(&self) {
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }
}

/// A started run, its inputs by id and its callables' queues by id.
type Started = (
    PipelineRun,
    HashMap<String, Input>,
    HashMap<String, JobQueue>,
);

/// A running pipeline.
#[pyclass(frozen, module = "troupe._host", name = "PipelineRun")]
pub(crate) struct PipelineRun {
    outputs: Arc<tokio::sync::Mutex<mpsc::Receiver<Value>>>,
    interrupter: Interrupter,
    canceller: Canceller,
    report: Mutex<Option<std::sync::mpsc::Receiver<RunReport>>>,
    finished: Mutex<Option<Py<PyDict>>>,
}

/// Takes the next output on the runtime.
async fn next_output(outputs: Arc<tokio::sync::Mutex<mpsc::Receiver<Value>>>) -> Option<Value> {
    outputs.lock().await.recv().await
}

#[pymethods]
impl PipelineRun {
    /// Starts pipeline `name` of `host`: `inputs` fed from Python (its `host.input`
    /// nodes, or sources of those ids replaced), its `host.node` nodes served by Python
    /// objects (their queues are returned), `outputs` read back. Returns the run, the
    /// inputs by id and the callables' queues by id.
    #[staticmethod]
    fn start(
        py: Python<'_>,
        host: &Host,
        name: String,
        inputs: Vec<String>,
        outputs: Vec<String>,
    ) -> PyResult<Started> {
        let running = host.running()?;
        let mut fed = HashMap::new();
        let mut feeds = Vec::new();
        for id in inputs {
            let (tx, rx) = crossbeam_channel::bounded(INPUT_QUEUE);
            fed.insert(
                id.clone(),
                Input {
                    items: Mutex::new(Some(tx)),
                },
            );
            feeds.push((id, Fed { items: rx }));
        }
        let (out_tx, out_rx) = mpsc::channel(OUTPUT_QUEUE);
        let (report_tx, report_rx) = std::sync::mpsc::channel();
        let started = runtime()?.run(py, move || async move {
            let pipeline = running
                .manifest
                .pipeline(Some(&name))
                .map_err(HostError::from)?;
            let builtin_sources: Vec<String> = pipeline
                .nodes
                .iter()
                .filter(|node| {
                    matches!(
                        node.body,
                        NodeBody::Builtin {
                            is_source: true,
                            ..
                        }
                    )
                })
                .map(|node| node.id.clone())
                .collect();
            let callables: Vec<String> = pipeline
                .nodes
                .iter()
                .filter(|node| matches!(node.body, NodeBody::Supplied { is_source: false }))
                .map(|node| node.id.clone())
                .collect();
            let loader = running
                .manifest
                .loader()
                .python_nodes(running.extensions.python_nodes())
                .remote_nodes(running.remote.node_maker());
            let mut builder = loader.builder(&name).map_err(HostError::from)?;
            for (id, source) in feeds {
                builder = if builtin_sources.contains(&id) {
                    builder.replace_source(&id, Box::new(source))
                } else {
                    builder.source(id, Box::new(source))
                };
            }
            let mut queues = HashMap::new();
            for id in callables {
                let (caller, queue) = served::serve(&id);
                queues.insert(id.clone(), queue);
                builder = builder.node(id, Box::new(CallableNode { caller }));
            }
            for node in outputs {
                let id = format!("{node}.output");
                let egress = Egress {
                    node: node.clone(),
                    out: out_tx.clone(),
                };
                builder = builder.node(id.clone(), Box::new(egress)).edge(node, id);
            }
            drop(out_tx);
            let running = builder.build().map_err(HostError::from)?.start();
            let control = (running.interrupter(), running.canceller());
            actix_rt::spawn(async move {
                let _ = report_tx.send(running.finish_report().await);
            });
            Ok::<_, HostError>((control, queues))
        })?;
        let ((interrupter, canceller), queues) = started?;
        let run = PipelineRun {
            outputs: Arc::new(tokio::sync::Mutex::new(out_rx)),
            interrupter,
            canceller,
            report: Mutex::new(Some(report_rx)),
            finished: Mutex::new(None),
        };
        Ok((run, fed, queues))
    }

    /// The next output as `[node, value]`, waiting without the GIL; `None` at the end.
    fn next(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let outputs = self.outputs.clone();
        match runtime()?.run(py, move || next_output(outputs))? {
            Some(value) => Ok(Some(to_python(py, &value, &Path::Root("output"))?.unbind())),
            None => Ok(None),
        }
    }

    /// Settles `future` (of the loop `queue` serves) with the next output, or
    /// `troupe._hosting._END`.
    fn next_async(&self, queue: &LoopQueue, future: Py<PyAny>) -> PyResult<()> {
        let outputs = self.outputs.clone();
        let settle = queue.settle();
        runtime()?.spawn(move || async move {
            settle.complete(future, Ok(next_output(outputs).await));
        })?;
        Ok(())
    }

    /// Sends an interrupt ahead of the data to every node (barge-in); returns how many
    /// nodes took it.
    fn interrupt(&self) -> usize {
        self.interrupter.interrupt()
    }

    /// Ends the run early: it finishes with a `Cancelled` error.
    fn cancel(&self) {
        self.canceller.cancel();
    }

    /// Waits for the run to end and returns its summary: `{"error": str | None,
    /// "wall_time_s": float, "nodes": [{"id", "type", "items_in", "items_out", "errors",
    /// "restarts", "lost"}], "text": str}`. Outputs not read yet are dropped.
    fn wait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        if let Some(done) = self
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            return Ok(done.bind(py).clone());
        }
        // Outputs nobody reads must not hold the run.
        let outputs = self.outputs.clone();
        runtime()?.spawn(move || async move {
            let mut outputs = outputs.lock().await;
            outputs.close();
            while outputs.recv().await.is_some() {}
        })?;
        // The receiver goes back when a signal ends the wait, so a later wait still gets
        // the report. (Another thread waiting meanwhile is told the run is being waited on.)
        let mut receiver = self
            .report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("another thread is waiting for this run"))?;
        let report = loop {
            let (back, received) = py.detach(move || {
                let received = receiver.recv_timeout(SIGNAL_CHECK);
                (receiver, received)
            });
            receiver = back;
            match received {
                Ok(report) => break report,
                Err(RecvTimeoutError::Disconnected) => return Err(HostError::Stopped.into()),
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(signal) = py.check_signals() {
                        *self
                            .report
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(receiver);
                        return Err(signal);
                    }
                }
            }
        };
        let summary = summary_dict(py, &report)?;
        *self
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(summary.clone().unbind());
        Ok(summary)
    }
}

/// A run's report as a dict (see [`PipelineRun::wait`]).
fn summary_dict<'py>(py: Python<'py>, report: &RunReport) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("error", report.error.as_ref().map(ToString::to_string))?;
    dict.set_item("wall_time_s", report.summary.wall_time.as_secs_f64())?;
    let nodes = PyList::empty(py);
    for node in &report.summary.nodes {
        let entry = PyDict::new(py);
        entry.set_item("id", &node.id)?;
        entry.set_item("type", node.type_name)?;
        entry.set_item("items_in", node.items_in)?;
        entry.set_item("items_out", node.items_out)?;
        entry.set_item("errors", node.errors)?;
        entry.set_item("restarts", node.restarts)?;
        entry.set_item("lost", node.lost)?;
        nodes.append(entry)?;
    }
    dict.set_item("nodes", nodes)?;
    dict.set_item("text", report.summary.to_string())?;
    Ok(dict)
}
