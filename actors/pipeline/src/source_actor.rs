//! The actor that runs one source, pulled by a driver task.

use std::sync::Arc;

use actix::{Actor, ActorContext, Context, Handler};
use troupe_nodes::{Emitter, Source, SourceState};
use troupe_runtime::Address;

use crate::builder::ErrorPolicy;
use crate::edge::{EdgeBatches, OutEdge};
use crate::error::PipelineError;
use crate::messages::{Event, Interrupt, Packet, Pull, Pulled, Stop};
use crate::node_actor::fan_out;
use crate::progress::SourceClock;
use crate::restart::catch_panic;
use crate::run::Shared;
use crate::summary::NodeStats;

/// What [`SourceActor::new`] needs.
pub(crate) struct SourceActorParts {
    pub(crate) index: usize,
    pub(crate) id: String,
    pub(crate) source: Box<dyn Source>,
    pub(crate) policy: ErrorPolicy,
    pub(crate) outs: Vec<OutEdge>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) clock: Arc<SourceClock>,
    pub(crate) stats: NodeStats,
}

/// Runs a [`Source`]: each [`Pull`] pulls once and sends the items down every edge. When an
/// edge waits for room the actor handles nothing else, so the next pull waits too. Sources
/// are not restarted (a new instance would start the stream over): a panic ends the run.
pub(crate) struct SourceActor {
    index: usize,
    id: String,
    source: Box<dyn Source>,
    policy: ErrorPolicy,
    outs: Vec<OutEdge>,
    emitter: Emitter,
    batches: EdgeBatches,
    stats: NodeStats,
    pulls: u64,
    shared: Arc<Shared>,
    clock: Arc<SourceClock>,
    done: bool,
}

impl SourceActor {
    pub(crate) fn new(parts: SourceActorParts) -> SourceActor {
        SourceActor {
            index: parts.index,
            id: parts.id,
            source: parts.source,
            policy: parts.policy,
            outs: parts.outs,
            emitter: Emitter::new(),
            batches: EdgeBatches::default(),
            stats: parts.stats,
            pulls: 0,
            shared: parts.shared,
            clock: parts.clock,
            done: false,
        }
    }

    fn emit(&mut self) {
        self.stats.sent(self.emitter.len());
        for item in self.emitter.drain() {
            self.clock.saw(&item);
            fan_out(&self.outs, Packet::Item(item), &mut self.batches);
        }
    }
}

/// Pulls one [`Pull`] message makes at most. Several pulls per message save a round trip
/// per item; a pull whose items do not all fit downstream ends the turn at once.
const PULLS_PER_TURN: usize = 16;

/// Pulls `source` until it is done, the run is over, or the actor is gone. Each turn of
/// pulls waits for its items to be taken by the first hop before the next turn.
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
            let stats = std::mem::take(&mut self.stats);
            self.shared.report(Event::Stopped(self.index, stats));
        }
    }
}

impl Handler<Pull> for SourceActor {
    type Result = actix::MessageResult<Pull>;

    fn handle(&mut self, _: Pull, ctx: &mut Context<Self>) -> Self::Result {
        let mut pulled = Pulled::More;
        // A live source's items go downstream as each pull gives them.
        let pulls = if self.source.is_live() {
            1
        } else {
            PULLS_PER_TURN
        };
        for _ in 0..pulls {
            pulled = self.pull_once();
            if pulled == Pulled::Over || self.batches.is_waiting() {
                break;
            }
        }
        self.batches.flush(ctx);
        actix::MessageResult(pulled)
    }
}

impl SourceActor {
    fn pull_once(&mut self) -> Pulled {
        if self.done || self.shared.is_cancelled() {
            return Pulled::Over;
        }
        let pull_index = self.pulls;
        self.pulls += 1;
        let start = NodeStats::clock(pull_index);
        let (source, emitter) = (&mut self.source, &mut self.emitter);
        let result = catch_panic(|| source.pull(emitter));
        self.stats.record(start);
        let result = match result {
            Ok(result) => result,
            Err(message) => {
                tracing::error!(node = %self.id, %message, "source panicked");
                self.emitter.drain();
                self.fail(PipelineError::Panicked {
                    node: self.id.clone(),
                });
                return Pulled::Over;
            }
        };
        match result {
            Ok(SourceState::More) => {
                self.emit();
                Pulled::More
            }
            Ok(SourceState::Done) => {
                self.emit();
                fan_out(&self.outs, Packet::Eos, &mut self.batches);
                self.clock.finish();
                self.done = true;
                let stats = std::mem::take(&mut self.stats);
                self.shared.report(Event::Finished(self.index, stats));
                Pulled::Over
            }
            Err(source) => {
                self.stats.failed();
                self.emitter.drain();
                match self.policy {
                    ErrorPolicy::SkipItem => Pulled::More,
                    ErrorPolicy::FailPipeline => {
                        self.fail(PipelineError::Pull {
                            node: self.id.clone(),
                            pull_index,
                            source,
                        });
                        Pulled::Over
                    }
                }
            }
        }
    }
}

impl SourceActor {
    /// Ends the run with `error`, and reports what the source did for the run's summary.
    fn fail(&mut self, error: PipelineError) {
        self.done = true;
        self.shared.report(Event::Failed(error));
        let stats = std::mem::take(&mut self.stats);
        self.shared.report(Event::Stopped(self.index, stats));
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

    /// The run is over: the actor stops (unfinished, it reports its counters as it goes).
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
