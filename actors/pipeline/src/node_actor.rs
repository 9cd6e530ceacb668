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
    /// Outputs the node deferred (an asynchronous node): awaited before its next input.
    awaiting: Option<Awaiting>,
    /// With [`Node::concurrency`] above 1: the inputs in hand, oldest first, each running
    /// to its end on its own task; delivered in this order.
    in_flight: VecDeque<InFlight>,
    /// Its own address (weak: it does not keep the actor alive), for inputs in flight to
    /// wake it.
    me: Option<actix::WeakAddr<NodeActor>>,
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

/// An input in hand of a node with several (see [`NodeActor::start`]).
struct InFlight {
    /// Its outputs, once its task is done (taken while the actor waits for them).
    outputs: Option<tokio::sync::oneshot::Receiver<Vec<Result<Value, NodeError>>>>,
    /// Its outputs, when the actor waited for them (or they came at once).
    done: Option<Vec<Result<Value, NodeError>>>,
    step: Step,
    /// The task producing them; none for outputs that came at once.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for InFlight {
    /// A run that ends (cancelled, failed) stops the inputs it had in hand.
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
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
            awaiting: None,
            in_flight: VecDeque::new(),
            me: None,
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
        if self.node.concurrency() > 1 || !self.in_flight.is_empty() {
            return self.pump_concurrent(ctx);
        }
        self.process_backlog();
        self.stats.backlog(self.backlog.len());
        if self.ready() && !self.rings.is_empty() {
            for ring in &self.rings {
                self.backlog.extend(ring.take());
            }
            self.process_backlog();
        }
        if let Some(Awaiting { mut outputs, step }) = self.awaiting.take() {
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

    /// Whether the next packet may be processed now: with inputs in flight, another input
    /// while the node has room for it, end of stream only once none is in flight.
    fn ready(&self) -> bool {
        if self.backoff.is_some() || self.awaiting.is_some() {
            return false;
        }
        match self.backlog.front() {
            _ if self.in_flight.is_empty() => true,
            Some(Packet::Eos) => false,
            _ => self.in_flight.len() < self.node.concurrency(),
        }
    }

    /// [`pump`](Self::pump) for a node with several inputs in hand: starts what the backlog
    /// allows, delivers every finished input at the head of the line (in input order),
    /// and then either waits (the node is full, or a restart's backoff) or lets the next
    /// message in; an input that finishes later wakes the actor ([`Drain`]).
    fn pump_concurrent(&mut self, ctx: &mut Context<Self>) {
        loop {
            self.process_backlog();
            if self.ready() && !self.rings.is_empty() {
                for ring in &self.rings {
                    self.backlog.extend(ring.take());
                }
                self.process_backlog();
            }
            if !self.deliver_finished() {
                break;
            }
        }
        self.stats.backlog(self.backlog.len());
        let full = !self.backlog.is_empty() && !self.ready();
        let head = match self.in_flight.front_mut() {
            Some(head) if full && self.backoff.is_none() => head.outputs.take(),
            _ => None,
        };
        match (head, self.backoff.take()) {
            // Full: no message comes in until the oldest input is done.
            (Some(outputs), _) => {
                let delivery = self.batches.delivery();
                let wait = async move {
                    delivery.await;
                    outputs.await.unwrap_or_default()
                };
                ctx.wait(wrap_future::<_, Self>(wait).map(|outputs, actor, ctx| {
                    if let Some(head) = actor.in_flight.front_mut() {
                        head.done = Some(outputs);
                    }
                    actor.pump(ctx);
                }));
            }
            (None, Some(delay)) => {
                let delivery = self.batches.delivery();
                let wait = async move {
                    delivery.await;
                    tokio::time::sleep(delay).await;
                };
                ctx.wait(wrap_future::<_, Self>(wait).map(|(), actor, ctx| actor.pump(ctx)));
            }
            (None, None) => self.batches.flush(ctx),
        }
    }

    /// Delivers the inputs at the head of the line that are done; whether any was.
    fn deliver_finished(&mut self) -> bool {
        let mut any = false;
        while let Some(head) = self.in_flight.front_mut() {
            let outputs = match (head.done.take(), head.outputs.as_mut()) {
                (Some(outputs), _) => outputs,
                (None, Some(pending)) => match pending.try_recv() {
                    Ok(outputs) => outputs,
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty) => break,
                    // Its task was stopped: nothing came.
                    Err(tokio::sync::oneshot::error::TryRecvError::Closed) => Vec::new(),
                },
                (None, None) => break,
            };
            let Some(InFlight { step, .. }) = self.in_flight.pop_front() else {
                break;
            };
            any = true;
            self.settle_all(outputs, step);
        }
        any
    }

    /// Delivers one finished input's outputs (up to its error).
    fn settle_all(&mut self, outputs: Vec<Result<Value, NodeError>>, step: Step) {
        if !self.active() {
            return;
        }
        for output in outputs {
            match output {
                Ok(output) => self.emitter.emit(output),
                Err(source) => {
                    return match step {
                        Step::Item { index, start } => {
                            self.emit();
                            self.stats.record(start);
                            self.item_failed(index, source);
                        }
                        Step::Flush => {
                            self.emit();
                            self.flush_failed(source);
                        }
                    };
                }
            }
        }
        self.emit();
        match step {
            Step::Item { start, .. } => self.stats.record(start),
            Step::Flush => self.finish_stream(),
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
                Some(outputs) if self.node.concurrency() > 1 => {
                    self.start(outputs, Step::Item { index, start });
                }
                Some(outputs) => {
                    self.awaiting = Some(Awaiting {
                        outputs,
                        step: Step::Item { index, start },
                    });
                }
                // Earlier inputs' outputs are still coming: these wait their turn.
                None if !self.in_flight.is_empty() => {
                    let ready = self.emitter.drain().map(Ok).collect();
                    self.in_flight.push_back(InFlight {
                        outputs: None,
                        done: Some(ready),
                        step: Step::Item { index, start },
                        task: None,
                    });
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

    /// Runs `outputs` of `step` to their end on a task of their own, their place kept in
    /// line; the task wakes the actor when done.
    fn start(&mut self, mut outputs: Deferred, step: Step) {
        let (done, pending) = tokio::sync::oneshot::channel();
        let wake = self.me.clone();
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
            if let Some(actor) = wake.and_then(|me| me.upgrade()) {
                actor.do_send(Drain);
            }
        });
        self.in_flight.push_back(InFlight {
            outputs: Some(pending),
            done: None,
            step,
            task: Some(task),
        });
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
                self.awaiting = Some(Awaiting { outputs, step });
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
                Some(outputs) if self.node.concurrency() > 1 => self.start(outputs, Step::Flush),
                Some(outputs) => {
                    self.awaiting = Some(Awaiting {
                        outputs,
                        step: Step::Flush,
                    });
                }
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

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.me = Some(ctx.address().downgrade());
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
