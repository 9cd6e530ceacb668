//! Starting a pipeline's actors, driving its sources, and waiting for the end of the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use troupe_nodes::catalog::Built;
use troupe_runtime::metrics::Metrics;
use troupe_runtime::{ActorBuilder, Address, Lane};

use crate::builder::{EdgePolicy, EdgeSpec, NodeSpec};
use crate::edge::{Drops, OutEdge, Ring};
use crate::error::PipelineError;
use crate::messages::{Event, Interrupt, Stop};
use crate::node_actor::{NodeActor, NodeActorParts};
use crate::progress::{ProgressMeter, SourceClock};
use crate::source_actor::{self, SourceActor, SourceActorParts};
use crate::summary::{EdgeSummary, NodeKind, NodeStats, RunSummary};

/// How often the monitor checks for node actors that stopped without a word.
const WATCH_INTERVAL: Duration = Duration::from_millis(20);

/// State every actor of one run shares.
pub(crate) struct Shared {
    cancelled: AtomicBool,
    events: mpsc::UnboundedSender<Event>,
}

impl Shared {
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    pub(crate) fn report(&self, event: Event) {
        // The monitor is gone once the run is over; late events do not matter then.
        let _ = self.events.send(event);
    }
}

/// A checked pipeline, not started yet. Made by
/// [`PipelineBuilder::build`](crate::PipelineBuilder::build).
pub struct Pipeline {
    name: String,
    nodes: Vec<NodeSpec>,
    edges: Vec<EdgeSpec>,
    /// `edges` as (from, to) node indices.
    resolved: Vec<(usize, usize)>,
    /// Node indices, upstream before downstream.
    order: Vec<usize>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field(
                "nodes",
                &self.nodes.iter().map(|n| &n.id).collect::<Vec<_>>(),
            )
            .field("edges", &self.edges)
            .finish()
    }
}

#[derive(Clone)]
enum Handle {
    Node(Address<NodeActor>),
    Source(Address<SourceActor>),
}

impl Handle {
    fn is_closed(&self) -> bool {
        match self {
            Handle::Node(a) => a.is_closed(),
            Handle::Source(a) => a.is_closed(),
        }
    }

    fn interrupt(&self) -> bool {
        match self {
            Handle::Node(a) => a.try_tell(Lane::Control, Interrupt).is_ok(),
            Handle::Source(a) => a.try_tell(Lane::Control, Interrupt).is_ok(),
        }
    }

    fn stop(&self) {
        let _ = match self {
            Handle::Node(a) => a.try_tell(Lane::Control, Stop).is_ok(),
            Handle::Source(a) => a.try_tell(Lane::Control, Stop).is_ok(),
        };
    }
}

impl Pipeline {
    pub(crate) fn new(
        name: String,
        nodes: Vec<NodeSpec>,
        edges: Vec<EdgeSpec>,
        resolved: Vec<(usize, usize)>,
        order: Vec<usize>,
    ) -> Pipeline {
        Pipeline {
            name,
            nodes,
            edges,
            resolved,
            order,
        }
    }

    /// Runs the pipeline to the end: starts it and waits ([`RunningPipeline::finish`]).
    /// Call it inside an actix `System`.
    pub async fn run(self) -> Result<RunSummary, PipelineError> {
        self.start().finish().await
    }

    /// Starts every node as an actor on the current arbiter (inside an actix `System`) and
    /// starts pulling the sources.
    pub fn start(self) -> RunningPipeline {
        let (events_tx, events) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            cancelled: AtomicBool::new(false),
            events: events_tx,
        });
        let n = self.nodes.len();
        let mut inputs = vec![0usize; n];
        let ports: Vec<usize> = self
            .resolved
            .iter()
            .map(|&(_, to)| {
                inputs[to] += 1;
                inputs[to] - 1
            })
            .collect();
        let metrics = Metrics::global();
        let drops: Vec<Arc<Drops>> = self
            .edges
            .iter()
            .map(|edge| {
                Arc::new(Drops::new(
                    metrics.edge_drops(&self.name, &edge.from, &edge.to),
                ))
            })
            .collect();
        let rings: Vec<Option<Arc<Ring>>> = self
            .edges
            .iter()
            .zip(&self.resolved)
            .map(|(edge, &(_, to))| {
                (edge.policy == EdgePolicy::DropOldest)
                    .then(|| Arc::new(Ring::new(self.nodes[to].capacity)))
            })
            .collect();

        let mut meta = Vec::with_capacity(n);
        let mut bodies = Vec::with_capacity(n);
        for spec in self.nodes {
            let (kind, type_name) = match &spec.body {
                Built::Source(s) => (NodeKind::Source, s.type_name()),
                Built::Node(node) => (NodeKind::Node, node.type_name()),
            };
            meta.push((spec.id.clone(), kind, type_name));
            bodies.push(Some(spec));
        }

        let mut clocks = Vec::new();
        let mut arbiters = Vec::new();
        let mut handles: Vec<Option<Handle>> = vec![None; n];
        let mut node_addresses: Vec<Option<Address<NodeActor>>> = vec![None; n];
        for &i in self.order.iter().rev() {
            let Some(spec) = bodies[i].take() else {
                continue;
            };
            let outs: Vec<OutEdge> = self
                .resolved
                .iter()
                .enumerate()
                .filter(|&(_, &(from, _))| from == i)
                .filter_map(|(e, &(_, to))| {
                    let to = node_addresses[to].clone()?;
                    Some(OutEdge::new(
                        e,
                        to,
                        ports[e],
                        self.edges[e].policy,
                        drops[e].clone(),
                        rings[e].clone(),
                    ))
                })
                .collect();
            let builder = ActorBuilder::new(&spec.id).capacity(spec.capacity);
            let stats = NodeStats::with_metrics(metrics.node(&self.name, &spec.id));
            handles[i] = Some(match spec.body {
                Built::Node(node) => {
                    let rings_in = self
                        .resolved
                        .iter()
                        .zip(&rings)
                        .filter(|&(&(_, to), _)| to == i)
                        .filter_map(|(_, ring)| ring.clone())
                        .collect();
                    let actor = NodeActor::new(NodeActorParts {
                        index: i,
                        id: spec.id,
                        node,
                        policy: spec.policy,
                        inputs: inputs[i],
                        outs,
                        rings: rings_in,
                        shared: shared.clone(),
                        restart: spec.restart,
                        stats,
                    });
                    let address = match &spec.arbiter {
                        Some(arbiter) => builder.spawn_on(arbiter, actor),
                        None => builder.spawn(actor),
                    };
                    node_addresses[i] = Some(address.clone());
                    Handle::Node(address)
                }
                Built::Source(source) => {
                    // A live source blocks in its pulls: on a thread of its own unless told.
                    let own = (spec.arbiter.is_none() && source.is_live()).then(|| {
                        let arbiter = actix::Arbiter::new();
                        let handle = arbiter.handle();
                        arbiters.push(arbiter);
                        handle
                    });
                    let clock = Arc::new(SourceClock::new(source.media_seconds()));
                    clocks.push(clock.clone());
                    let actor = SourceActor::new(SourceActorParts {
                        index: i,
                        id: spec.id,
                        source,
                        policy: spec.policy,
                        outs,
                        shared: shared.clone(),
                        clock,
                        stats,
                    });
                    Handle::Source(match spec.arbiter.as_ref().or(own.as_ref()) {
                        Some(arbiter) => builder.spawn_on(arbiter, actor),
                        None => builder.spawn(actor),
                    })
                }
            });
        }
        let handles: Vec<Handle> = handles.into_iter().flatten().collect();
        for handle in &handles {
            if let Handle::Source(address) = handle {
                actix::spawn(source_actor::drive(address.clone()));
            }
        }
        let started = Instant::now();
        RunningPipeline {
            handles: Arc::from(handles),
            meta,
            edges: self.edges,
            drops,
            shared,
            events,
            progress: ProgressMeter::new(clocks, started),
            started,
            arbiters,
        }
    }
}

/// How long a failed run waits for its nodes' counters as they stop.
const STOP_REPORT_WAIT: Duration = Duration::from_millis(500);

/// How a run ended: its summary (of what was done, when it failed), and its error if any.
#[derive(Debug)]
pub struct RunReport {
    /// Counts, drops and latencies per node and edge.
    pub summary: RunSummary,
    /// Why the run ended early (a node failed, or it was cancelled); `None`: it finished.
    pub error: Option<PipelineError>,
}

/// Ends a running pipeline early: its run ends with [`PipelineError::Cancelled`]. Cheap to
/// clone.
#[derive(Clone)]
pub struct Canceller {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Canceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canceller").finish_non_exhaustive()
    }
}

impl Canceller {
    /// Ends the run: sources stop pulling, nodes stop, and the run's `finish` returns
    /// [`PipelineError::Cancelled`] (with the summary so far from `finish_report`).
    pub fn cancel(&self) {
        self.shared.report(Event::Failed(PipelineError::Cancelled));
    }
}

/// A started pipeline. [`RunningPipeline::finish`] waits for the end of the run.
pub struct RunningPipeline {
    /// Indexed like the nodes.
    handles: Arc<[Handle]>,
    meta: Vec<(String, NodeKind, &'static str)>,
    edges: Vec<EdgeSpec>,
    drops: Vec<Arc<Drops>>,
    shared: Arc<Shared>,
    events: mpsc::UnboundedReceiver<Event>,
    progress: ProgressMeter,
    started: Instant,
    /// The threads of live sources, stopped with the run (one blocked in a read ends when
    /// the read does).
    arbiters: Vec<actix::Arbiter>,
}

impl std::fmt::Debug for RunningPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningPipeline")
            .field("nodes", &self.meta.iter().map(|m| &m.0).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Sends interrupts to a running pipeline's nodes. Cheap to clone.
#[derive(Clone)]
pub struct Interrupter {
    handles: Arc<[Handle]>,
}

impl std::fmt::Debug for Interrupter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupter").finish_non_exhaustive()
    }
}

impl Interrupter {
    /// Sends an interrupt on every node's control lane: it is handled before any data still
    /// queued, and the node drops its buffered state ([`troupe_nodes::Node::interrupt`]).
    /// Returns how many nodes took it (a full control lane or a stopped node does not).
    pub fn interrupt(&self) -> usize {
        self.handles.iter().filter(|h| h.interrupt()).count()
    }
}

impl RunningPipeline {
    /// A handle that interrupts this run's nodes, usable while [`RunningPipeline::finish`]
    /// waits.
    pub fn interrupter(&self) -> Interrupter {
        Interrupter {
            handles: self.handles.clone(),
        }
    }

    /// A handle that reads this run's progress through its media, usable while
    /// [`RunningPipeline::finish`] waits.
    pub fn progress(&self) -> ProgressMeter {
        self.progress.clone()
    }

    /// [`Interrupter::interrupt`] on this run.
    pub fn interrupt(&self) -> usize {
        self.interrupter().interrupt()
    }

    /// A handle that ends this run early, usable while [`RunningPipeline::finish`] waits.
    pub fn canceller(&self) -> Canceller {
        Canceller {
            shared: self.shared.clone(),
        }
    }

    /// Waits until end of stream has passed through every node, or the run fails. Either
    /// way every actor of the run is stopped afterwards.
    pub async fn finish(self) -> Result<RunSummary, PipelineError> {
        let report = self.finish_report().await;
        match report.error {
            Some(error) => Err(error),
            None => Ok(report.summary),
        }
    }

    /// [`RunningPipeline::finish`], with the summary also when the run failed or was
    /// cancelled: then it counts what each node had done when its actor stopped.
    pub async fn finish_report(mut self) -> RunReport {
        let n = self.handles.len();
        let mut stats: Vec<Option<NodeStats>> = vec![None; n];
        let mut remaining = n;
        let mut watch = tokio::time::interval(WATCH_INTERVAL);
        let result = loop {
            if remaining == 0 {
                break Ok(());
            }
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(Event::Finished(i, s)) => {
                        if stats[i].is_none() {
                            remaining -= 1;
                        }
                        stats[i] = Some(s);
                    }
                    Some(Event::Failed(error)) => break Err(error),
                    Some(Event::Stopped(i, _)) if stats[i].is_none() => {
                        break Err(PipelineError::Panicked { node: self.meta[i].0.clone() });
                    }
                    Some(Event::Stopped(..)) | None => {}
                },
                _ = watch.tick() => {
                    if let Some(i) = (0..n).find(|&i| stats[i].is_none() && self.handles[i].is_closed()) {
                        break Err(PipelineError::Panicked { node: self.meta[i].0.clone() });
                    }
                }
            }
        };
        let wall_time = self.started.elapsed();
        self.shared.cancelled.store(true, Ordering::Relaxed);
        for handle in self.handles.iter() {
            handle.stop();
        }
        if result.is_err() {
            self.collect_stopped(&mut stats).await;
        }
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        let nodes = self
            .meta
            .into_iter()
            .zip(stats)
            .map(|((id, kind, type_name), s)| {
                s.unwrap_or_default().into_summary(id, kind, type_name)
            })
            .collect();
        let edges = self
            .edges
            .into_iter()
            .zip(&self.drops)
            .map(|(edge, drops)| EdgeSummary {
                from: edge.from,
                to: edge.to,
                policy: edge.policy,
                drops: drops.count(),
            })
            .collect();
        RunReport {
            summary: RunSummary {
                nodes,
                edges,
                wall_time,
                media_seconds: self.progress.read().media_seconds,
            },
            error: result.err(),
        }
    }

    /// After a failure: the counters of the nodes that had not finished, as their actors
    /// stop (for a moment at most: a node busy in a long call is reported as it stood).
    async fn collect_stopped(&mut self, stats: &mut [Option<NodeStats>]) {
        let deadline = tokio::time::sleep(STOP_REPORT_WAIT);
        tokio::pin!(deadline);
        while stats.iter().any(Option::is_none) {
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(Event::Stopped(i, s) | Event::Finished(i, s)) => {
                        stats[i].get_or_insert(s);
                    }
                    Some(Event::Failed(_)) => {}
                    None => break,
                },
                () = &mut deadline => break,
            }
        }
    }
}
