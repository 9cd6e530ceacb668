//! The actor that runs one source, pulled by a driver task.

use std::sync::Arc;
use std::time::Instant;

use actix::{Actor, ActorContext, Context, Handler};
use troupe_nodes::{Emitter, Source, SourceState};
use troupe_runtime::Address;

use super::builder::ErrorPolicy;
use super::edge::{OutEdge, Outbox};
use super::error::PipelineError;
use super::messages::{Event, Interrupt, Packet, Pull, Pulled, Stop};
use super::node_actor::fan_out;
use super::run::Shared;
use super::summary::NodeStats;

/// Runs a [`Source`]: each [`Pull`] pulls once and sends the items down every edge. When an
/// edge waits for room the actor handles nothing else, so the next pull waits too.
pub(crate) struct SourceActor {
    index: usize,
    id: String,
    source: Box<dyn Source>,
    policy: ErrorPolicy,
    outs: Vec<OutEdge>,
    emitter: Emitter,
    outbox: Outbox,
    stats: NodeStats,
    pulls: u64,
    shared: Arc<Shared>,
    done: bool,
}

impl SourceActor {
    pub(crate) fn new(
        index: usize,
        id: String,
        source: Box<dyn Source>,
        policy: ErrorPolicy,
        outs: Vec<OutEdge>,
        shared: Arc<Shared>,
    ) -> SourceActor {
        SourceActor {
            index,
            id,
            source,
            policy,
            outs,
            emitter: Emitter::new(),
            outbox: Outbox::default(),
            stats: NodeStats::default(),
            pulls: 0,
            shared,
            done: false,
        }
    }

    fn emit(&mut self) {
        let items: Vec<_> = self.emitter.drain().collect();
        self.stats.items_out += items.len() as u64;
        for item in items {
            fan_out(&self.outs, Packet::Item(item), &mut self.outbox);
        }
    }
}

/// Pulls `source` until it is done, the run is over, or the actor is gone. Each pull waits
/// for the previous pull's items to be taken by the first hop.
pub(crate) async fn drive(source: Address<SourceActor>) {
    while let Ok(Pulled::More) = source.send(Pull).await {
        tokio::task::yield_now().await;
    }
}

impl Actor for SourceActor {
    type Context = Context<Self>;
}

impl Drop for SourceActor {
    fn drop(&mut self) {
        if !self.done {
            self.shared.report(Event::Stopped(self.index));
        }
    }
}

impl Handler<Pull> for SourceActor {
    type Result = actix::MessageResult<Pull>;

    fn handle(&mut self, _: Pull, ctx: &mut Context<Self>) -> Self::Result {
        if self.done || self.shared.is_cancelled() {
            return actix::MessageResult(Pulled::Over);
        }
        let pull_index = self.pulls;
        self.pulls += 1;
        let start = Instant::now();
        let result = self.source.pull(&mut self.emitter);
        self.stats.latencies.push(start.elapsed());
        let pulled = match result {
            Ok(SourceState::More) => {
                self.emit();
                Pulled::More
            }
            Ok(SourceState::Done) => {
                self.emit();
                fan_out(&self.outs, Packet::Eos, &mut self.outbox);
                self.done = true;
                let stats = std::mem::take(&mut self.stats);
                self.shared.report(Event::Finished(self.index, stats));
                Pulled::Over
            }
            Err(source) => {
                self.stats.errors += 1;
                self.emitter.drain();
                match self.policy {
                    ErrorPolicy::SkipItem => Pulled::More,
                    ErrorPolicy::FailPipeline => {
                        self.done = true;
                        self.shared.report(Event::Failed(PipelineError::Pull {
                            node: self.id.clone(),
                            pull_index,
                            source,
                        }));
                        Pulled::Over
                    }
                }
            }
        };
        self.outbox.flush(ctx);
        actix::MessageResult(pulled)
    }
}

impl Handler<Interrupt> for SourceActor {
    type Result = ();

    fn handle(&mut self, _: Interrupt, _: &mut Context<Self>) {
        // Sources have no state to drop; counted only.
        self.stats.interrupts += 1;
    }
}

impl Handler<Stop> for SourceActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        self.done = true;
        ctx.stop();
    }
}
