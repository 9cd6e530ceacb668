//! The actor that runs one processing node.

use std::sync::Arc;
use std::time::Instant;

use actix::{Actor, ActorContext, Context, Handler};
use troupe_nodes::{Emitter, Node};
use troupe_wire::Value;

use super::builder::ErrorPolicy;
use super::edge::{OutEdge, Outbox, Ring};
use super::error::PipelineError;
use super::messages::{Data, Drain, Event, Interrupt, Packet, Stop};
use super::run::Shared;
use super::summary::NodeStats;

/// Runs a [`Node`]: processes items in arrival order, fans outputs out to every edge, and
/// passes end of stream on once it came from every input.
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
    outbox: Outbox,
    stats: NodeStats,
    shared: Arc<Shared>,
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
            outbox: Outbox::default(),
            stats: NodeStats::default(),
            shared: parts.shared,
            done: false,
        }
    }

    fn active(&self) -> bool {
        !self.done && !self.shared.is_cancelled()
    }

    fn accept(&mut self, packet: Packet) {
        match packet {
            Packet::Item(value) => self.process(value),
            Packet::Eos => self.end_of_stream(),
        }
    }

    fn process(&mut self, value: Value) {
        if !self.active() {
            return;
        }
        let input_index = self.stats.items_in;
        self.stats.items_in += 1;
        let start = Instant::now();
        let result = self.node.process(value, &mut self.emitter);
        self.stats.latencies.push(start.elapsed());
        match result {
            Ok(()) => self.emit(),
            Err(source) => {
                self.stats.errors += 1;
                self.emitter.drain();
                match self.policy {
                    ErrorPolicy::SkipItem => {
                        tracing::debug!(node = %self.id, input_index, error = %source, "skipped");
                    }
                    ErrorPolicy::FailPipeline => self.fail(PipelineError::Process {
                        node: self.id.clone(),
                        input_index,
                        source,
                    }),
                }
            }
        }
    }

    /// Sends everything in the emitter down every edge.
    fn emit(&mut self) {
        let items: Vec<Value> = self.emitter.drain().collect();
        self.stats.items_out += items.len() as u64;
        for item in items {
            fan_out(&self.outs, Packet::Item(item), &mut self.outbox);
        }
    }

    fn end_of_stream(&mut self) {
        self.eos_seen += 1;
        if self.eos_seen < self.inputs || !self.active() {
            return;
        }
        match self.node.flush(&mut self.emitter) {
            Ok(()) => self.emit(),
            Err(source) => {
                self.stats.errors += 1;
                self.emitter.drain();
                if self.policy == ErrorPolicy::FailPipeline {
                    self.fail(PipelineError::Flush {
                        node: self.id.clone(),
                        source,
                    });
                    return;
                }
            }
        }
        fan_out(&self.outs, Packet::Eos, &mut self.outbox);
        self.node.shutdown();
        self.done = true;
        let stats = std::mem::take(&mut self.stats);
        self.shared.report(Event::Finished(self.index, stats));
    }

    fn fail(&mut self, error: PipelineError) {
        self.done = true;
        self.node.shutdown();
        self.shared.report(Event::Failed(error));
    }

    /// Empties every drop-oldest buffer into this node.
    fn drain_rings(&mut self) {
        for i in 0..self.rings.len() {
            let packets = self.rings[i].take();
            for packet in packets {
                self.accept(packet);
            }
        }
    }
}

/// Sends `packet` to every edge (clones for all but the last).
pub(crate) fn fan_out(outs: &[OutEdge], packet: Packet, outbox: &mut Outbox) {
    if let Some((last, rest)) = outs.split_last() {
        for edge in rest {
            edge.send(packet.clone(), outbox);
        }
        last.send(packet, outbox);
    }
}

impl Actor for NodeActor {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        if let Err(source) = self.node.initialize() {
            self.fail(PipelineError::Init {
                node: self.id.clone(),
                source,
            });
        }
    }
}

impl Drop for NodeActor {
    fn drop(&mut self) {
        if !self.done {
            self.shared.report(Event::Stopped(self.index));
        }
    }
}

impl Handler<Data> for NodeActor {
    type Result = ();

    fn handle(&mut self, data: Data, ctx: &mut Context<Self>) {
        tracing::trace!(node = %self.id, port = data.port, "data");
        self.accept(data.packet);
        if !self.rings.is_empty() {
            self.drain_rings();
        }
        self.outbox.flush(ctx);
    }
}

impl Handler<Drain> for NodeActor {
    type Result = ();

    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) {
        self.drain_rings();
        self.outbox.flush(ctx);
    }
}

impl Handler<Interrupt> for NodeActor {
    type Result = ();

    fn handle(&mut self, _: Interrupt, _: &mut Context<Self>) {
        if self.active() {
            self.stats.interrupts += 1;
            self.node.interrupt();
        }
    }
}

impl Handler<Stop> for NodeActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        self.done = true;
        ctx.stop();
    }
}
