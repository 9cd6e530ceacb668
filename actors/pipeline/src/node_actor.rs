//! The actor that runs one processing node.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::fut::{ActorFutureExt, wrap_future};
use actix::{Actor, ActorContext, AsyncContext, Context, Handler};
use troupe_nodes::{Deferred, Emitter, Node, NodeError};
use troupe_runtime::supervision::Decision;
use troupe_value::Value;

use crate::builder::ErrorPolicy;
use crate::edge::{EdgeBatches, OutEdge, Ring};
use crate::error::PipelineError;
use crate::messages::{Data, Drain, Event, Interrupt, Packet, Stop};
use crate::restart::{MakeError, Restarter, catch_panic};
use crate::run::Shared;
use crate::summary::NodeStats;

/// Skipped inputs whose errors are logged as warnings, per node and run.
const SHOWN_SKIPS: u64 = 5;

/// Runs a [`Node`]: processes items in arrival order, fans outputs out to every edge, and
/// passes end of stream on once it came from every input. A panic in the node is caught:
/// with a [`Restarter`] the node is made anew (after a backoff, during which its inputs
/// wait), without one the run fails.
pub(crate) struct NodeActor {
    index: usize,
    id: String,
    node: Box<dyn Node>,
    policy: ErrorPolicy,
    inputs: usize,
    eos_seen: usize,
    outs: Vec<OutEdge>,
    rings: Vec<Arc<Ring>>,
    emitter: Emitter,
    batches: EdgeBatches,
    stats: NodeStats,
    shared: Arc<Shared>,
    restart: Option<Restarter>,
    /// Packets taken in and not processed yet: what a restart's backoff held up.
    backlog: VecDeque<Packet>,
    /// Set by a restart: wait this long before the new instance takes its next input.
    backoff: Option<Duration>,
    /// Outputs the node deferred (an asynchronous node), oldest input first: delivered in
    /// this order; the node takes a next input only while fewer than its
    /// [`Node::concurrency`] wait here (and end of stream only once none do).
    awaiting: VecDeque<Awaiting>,
    /// Finished or failed: nothing more to do, and no `Stopped` event when dropped.
    done: bool,
}

pub(crate) struct NodeActorParts {
    pub(crate) index: usize,
    pub(crate) id: String,
    pub(crate) node: Box<dyn Node>,
    pub(crate) policy: ErrorPolicy,
    pub(crate) inputs: usize,
    pub(crate) outs: Vec<OutEdge>,
    pub(crate) rings: Vec<Arc<Ring>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) restart: Option<Restarter>,
    pub(crate) stats: NodeStats,
}

/// Deferred outputs in flight, with what finishing them needs.
struct Awaiting {
    outputs: Deferred,
    step: Step,
}

/// What deferred its outputs.
#[derive(Clone, Copy)]
enum Step {
    /// `process` of input `index`, begun at `start` (when timed).
    Item { index: u64, start: Option<Instant> },
    /// `flush` at end of stream.
    Flush,
}

impl NodeActor {
    pub(crate) fn new(parts: NodeActorParts) -> NodeActor {
        NodeActor {
            index: parts.index,
            id: parts.id,
            node: parts.node,
            policy: parts.policy,
            inputs: parts.inputs,
            eos_seen: 0,
            outs: parts.outs,
            rings: parts.rings,
            emitter: Emitter::new(),
            batches: EdgeBatches::default(),
            stats: parts.stats,
            shared: parts.shared,
            restart: parts.restart,
            backlog: VecDeque::new(),
            backoff: None,
            awaiting: VecDeque::new(),
            done: false,
        }
    }

    fn active(&self) -> bool {
        !self.done && !self.shared.is_cancelled()
    }

    /// Processes the backlog and everything the drop-oldest buffers hold, then makes the
    /// actor wait for its outputs to be taken downstream (and for deferred outputs, or a
    /// restart's backoff, after which it goes on with what is left).
    fn pump(&mut self, ctx: &mut Context<Self>) {
        self.process_backlog();
        self.stats.backlog(self.backlog.len());
        if self.ready() && !self.rings.is_empty() {
            for ring in &self.rings {
                self.backlog.extend(ring.take());
            }
            self.process_backlog();
        }
        if let Some(Awaiting { mut outputs, step }) = self.awaiting.pop_front() {
            // What was emitted goes first (waiting for room downstream: backpressure), then
            // the next deferred output is awaited.
            let delivery = self.batches.delivery();
            let wait = async move {
                delivery.await;
                let next = outputs.next().await;
                (outputs, next)
            };
            ctx.wait(
                wrap_future::<_, Self>(wait).map(move |(outputs, next), actor, ctx| {
                    actor.settle(outputs, step, next);
                    actor.pump(ctx);
                }),
            );
            return;
        }
        match self.backoff.take() {
            None => self.batches.flush(ctx),
            Some(delay) => {
                let delivery = self.batches.delivery();
                let wait = async move {
                    delivery.await;
                    tokio::time::sleep(delay).await;
                };
                ctx.wait(wrap_future::<_, Self>(wait).map(|(), actor, ctx| actor.pump(ctx)));
            }
        }
    }

    /// Whether the next packet may be processed now: an input while the node has room for
    /// one more in hand, end of stream once nothing is in hand.
    fn ready(&self) -> bool {
        if self.backoff.is_some() {
            return false;
        }
        match self.backlog.front() {
            Some(Packet::Eos) => self.awaiting.is_empty(),
            _ => self.awaiting.len() < self.node.concurrency().max(1),
        }
    }

    fn process_backlog(&mut self) {
        while self.ready() {
            let Some(packet) = self.backlog.pop_front() else {
                break;
            };
            match packet {
                Packet::Item(value) => self.process(value),
                Packet::Eos => self.end_of_stream(),
            }
        }
    }

    /// Queues `outputs` of `step` behind the inputs in hand; one that is not first in line
    /// runs to its end now ([`started`]) and is delivered when its turn comes.
    fn defer(&mut self, outputs: Deferred, step: Step) {
        let outputs = if self.awaiting.is_empty() {
            outputs
        } else {
            started(outputs)
        };
        self.awaiting.push_back(Awaiting { outputs, step });
    }

    fn process(&mut self, value: Value) {
        if !self.active() {
            return;
        }
        let index = self.stats.took_in();
        let start = NodeStats::clock(index);
        let (node, emitter) = (&mut self.node, &mut self.emitter);
        let result = catch_panic(|| node.process(value, emitter));
        match result {
            Ok(Ok(())) => match self.emitter.take_deferred() {
                Some(outputs) => self.defer(outputs, Step::Item { index, start }),
                // Earlier inputs' outputs are still coming: these wait their turn.
                None if !self.awaiting.is_empty() => {
                    let ready: Vec<Value> = self.emitter.drain().collect();
                    self.emitter.defer(std::future::ready(Ok(ready)));
                    if let Some(outputs) = self.emitter.take_deferred() {
                        self.defer(outputs, Step::Item { index, start });
                    }
                }
                None => {
                    self.stats.record(start);
                    self.emit();
                }
            },
            Ok(Err(source)) => {
                self.stats.record(start);
                self.item_failed(index, source);
            }
            Err(message) => {
                self.stats.record(start);
                self.stats.lost += 1;
                self.crashed(message);
            }
        }
    }

    /// The next deferred output arrived (`Some(Ok)`: it goes downstream now, and the one
    /// after is awaited next), or their error, or their end.
    fn settle(&mut self, outputs: Deferred, step: Step, next: Option<Result<Value, NodeError>>) {
        if !self.active() {
            return;
        }
        match (step, next) {
            (_, Some(Ok(output))) => {
                self.emitter.emit(output);
                self.emit();
                self.awaiting.push_front(Awaiting { outputs, step });
            }
            (Step::Item { index, start }, Some(Err(source))) => {
                self.stats.record(start);
                self.item_failed(index, source);
            }
            (Step::Item { start, .. }, None) => self.stats.record(start),
            (Step::Flush, Some(Err(source))) => self.flush_failed(source),
            (Step::Flush, None) => self.finish_stream(),
        }
    }

    /// The node returned an error for input `index`: skip it or fail, per policy.
    fn item_failed(&mut self, index: u64, source: NodeError) {
        self.stats.failed();
        self.emitter.drain();
        match self.policy {
            // The first few are shown; the rest are counted (the summary's `errors`).
            ErrorPolicy::SkipItem if self.stats.errors <= SHOWN_SKIPS => {
                tracing::warn!(node = %self.id, input_index = index, error = %source, "input skipped");
                if self.stats.errors == SHOWN_SKIPS {
                    tracing::warn!(node = %self.id, "more skipped inputs are counted, not shown");
                }
            }
            ErrorPolicy::SkipItem => {
                tracing::debug!(node = %self.id, input_index = index, error = %source, "input skipped");
            }
            ErrorPolicy::FailPipeline => self.fail(PipelineError::Process {
                node: self.id.clone(),
                input_index: index,
                source,
            }),
        }
    }

    /// `flush` returned an error: fail, or (skipping) pass end of stream on regardless.
    fn flush_failed(&mut self, source: NodeError) {
        self.stats.failed();
        self.emitter.drain();
        if self.policy == ErrorPolicy::FailPipeline {
            self.fail(PipelineError::Flush {
                node: self.id.clone(),
                source,
            });
        } else {
            self.finish_stream();
        }
    }

    /// Sends everything in the emitter down every edge.
    fn emit(&mut self) {
        self.stats.sent(self.emitter.len());
        for item in self.emitter.drain() {
            fan_out(&self.outs, Packet::Item(item), &mut self.batches);
        }
    }

    fn end_of_stream(&mut self) {
        self.eos_seen += 1;
        if self.eos_seen < self.inputs || !self.active() {
            return;
        }
        let (node, emitter) = (&mut self.node, &mut self.emitter);
        match catch_panic(|| node.flush(emitter)) {
            Ok(Ok(())) => match self.emitter.take_deferred() {
                Some(outputs) => self.defer(outputs, Step::Flush),
                None => {
                    self.emit();
                    self.finish_stream();
                }
            },
            Ok(Err(source)) => self.flush_failed(source),
            // What the crashed instance held is lost; a restarted one has nothing to flush.
            Err(message) => {
                self.crashed(message);
                if !self.done {
                    self.finish_stream();
                }
            }
        }
    }

    /// Passes end of stream on, shuts the node down and reports its statistics.
    fn finish_stream(&mut self) {
        fan_out(&self.outs, Packet::Eos, &mut self.batches);
        self.shutdown();
        self.done = true;
        let stats = std::mem::take(&mut self.stats);
        self.shared.report(Event::Finished(self.index, stats));
    }

    fn initialize(&mut self) {
        let node = &mut self.node;
        match catch_panic(|| node.initialize()) {
            Ok(Ok(())) => {}
            Ok(Err(source)) => self.fail(PipelineError::Init {
                node: self.id.clone(),
                source,
            }),
            Err(message) => {
                tracing::error!(node = %self.id, %message, "node panicked in initialize");
                self.end(self.panicked());
            }
        }
    }

    /// The node panicked with `message`: drop its outputs for the input in hand, and restart
    /// it if its policy allows, or end the run.
    fn crashed(&mut self, message: String) {
        self.emitter.drain();
        tracing::error!(node = %self.id, %message, "node panicked");
        let Some(restarter) = self.restart.as_mut() else {
            return self.end(self.panicked());
        };
        match restarter.on_crash(message) {
            Decision::Restart { attempt, delay } => match restarter.make() {
                Ok(node) => {
                    tracing::warn!(node = %self.id, attempt, ?delay, "restarting node");
                    self.node = node;
                    self.stats.restarted();
                    self.backoff = Some(delay);
                    self.initialize();
                }
                Err(MakeError::Failed(source)) => self.end(PipelineError::Make {
                    node: self.id.clone(),
                    source,
                }),
                Err(MakeError::Panicked(message)) => {
                    tracing::error!(node = %self.id, %message, "node factory panicked");
                    self.end(self.panicked());
                }
            },
            Decision::Stop => self.end(self.panicked()),
            Decision::GiveUp(give_up) => self.end(PipelineError::GaveUp {
                node: self.id.clone(),
                give_up: Box::new(give_up),
            }),
        }
    }

    fn panicked(&self) -> PipelineError {
        PipelineError::Panicked {
            node: self.id.clone(),
        }
    }

    fn shutdown(&mut self) {
        let node = &mut self.node;
        if let Err(message) = catch_panic(|| node.shutdown()) {
            tracing::error!(node = %self.id, %message, "node panicked in shutdown");
        }
    }

    /// Ends the run with `error` after shutting the node down.
    fn fail(&mut self, error: PipelineError) {
        self.shutdown();
        self.end(error);
    }

    /// Ends the run with `error` (a crashed instance is not shut down), and reports what the
    /// node did for the run's summary.
    fn end(&mut self, error: PipelineError) {
        self.done = true;
        if let Some(restarter) = &mut self.restart {
            restarter.finish();
        }
        self.shared.report(Event::Failed(error));
        let stats = std::mem::take(&mut self.stats);
        self.shared.report(Event::Stopped(self.index, stats));
    }
}

/// Sends `packet` to every edge (clones for all but the last).
pub(crate) fn fan_out(outs: &[OutEdge], packet: Packet, batches: &mut EdgeBatches) {
    if let Some((last, rest)) = outs.split_last() {
        for edge in rest {
            edge.send(packet.clone(), batches);
        }
        last.send(packet, batches);
    }
}

impl Actor for NodeActor {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        self.initialize();
    }
}

impl Drop for NodeActor {
    fn drop(&mut self) {
        if !self.done {
            let stats = std::mem::take(&mut self.stats);
            self.shared.report(Event::Stopped(self.index, stats));
        }
    }
}

impl Handler<Data> for NodeActor {
    type Result = ();

    fn handle(&mut self, data: Data, ctx: &mut Context<Self>) {
        tracing::trace!(node = %self.id, port = data.port, packets = data.packets.len(), "data");
        self.backlog.extend(data.packets);
        self.pump(ctx);
    }
}

impl Handler<Drain> for NodeActor {
    type Result = ();

    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) {
        self.pump(ctx);
    }
}

impl Handler<Interrupt> for NodeActor {
    type Result = ();

    fn handle(&mut self, _: Interrupt, ctx: &mut Context<Self>) {
        if self.active() {
            self.stats.interrupts += 1;
            let node = &mut self.node;
            if let Err(message) = catch_panic(|| node.interrupt()) {
                self.crashed(message);
                self.pump(ctx);
            }
        }
    }
}

impl Handler<Stop> for NodeActor {
    type Result = ();

    /// The run is over: the actor stops (unfinished, it reports its counters as it goes).
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// `outputs` running to their end now, on this arbiter, what they produce (up to the first
/// error) kept until their turn: how a node with [`Node::concurrency`] above 1 has several
/// inputs in flight. Dropping the result (a cancelled run) stops them.
fn started(mut outputs: Deferred) -> Deferred {
    let (done, collected) = tokio::sync::oneshot::channel();
    let task = actix::spawn(async move {
        let mut all = Vec::new();
        while let Some(output) = outputs.next().await {
            let failed = output.is_err();
            all.push(output);
            if failed {
                break;
            }
        }
        let _ = done.send(all);
    });
    let mut emitter = Emitter::new();
    emitter.defer_stream(Started {
        task,
        collected: Some(collected),
        ready: Vec::new().into_iter(),
    });
    emitter
        .take_deferred()
        .unwrap_or_else(|| unreachable!("deferred just above"))
}

/// What [`started`] hands back: the outputs, once all came.
struct Started {
    task: tokio::task::JoinHandle<()>,
    collected: Option<tokio::sync::oneshot::Receiver<Vec<Result<Value, NodeError>>>>,
    ready: std::vec::IntoIter<Result<Value, NodeError>>,
}

impl troupe_nodes::OutputStream for Started {
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Value, NodeError>>> {
        use std::task::Poll;
        if let Some(collected) = self.collected.as_mut() {
            let all = std::task::ready!(std::pin::Pin::new(collected).poll(cx));
            self.collected = None;
            // A task that ended without sending was stopped: nothing came.
            self.ready = all.unwrap_or_default().into_iter();
        }
        Poll::Ready(self.ready.next())
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.task.abort();
    }
}
