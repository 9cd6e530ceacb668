//! What a run reports: counts, drops and latencies per node and edge.

use std::fmt;
use std::time::{Duration, Instant};

use troupe_runtime::metrics::NodeMetrics;

use crate::builder::EdgePolicy;

/// Counters a node actor keeps while it runs (for the run's summary), each also counted in
/// the process's metrics ([`troupe_runtime::metrics`]) when it has them.
#[derive(Debug, Default, Clone)]
pub(crate) struct NodeStats {
    pub(crate) metrics: Option<NodeMetrics>,
    pub(crate) items_in: u64,
    pub(crate) items_out: u64,
    pub(crate) errors: u64,
    pub(crate) interrupts: u64,
    pub(crate) restarts: u64,
    pub(crate) lost: u64,
    /// Duration of the `process` (or `pull`) calls timed (see [`NodeStats::clock`]).
    pub(crate) latencies: Vec<Duration>,
}

/// Calls timed before sampling starts.
const TIME_ALL: u64 = 1024;
/// Past [`TIME_ALL`], one call in this many is timed.
const TIME_EVERY: u64 = 16;

impl NodeStats {
    /// The start time of call `index` if it is to be timed: every call of the first
    /// [`TIME_ALL`], then one in [`TIME_EVERY`]. Enough for p50 and p99, without two
    /// clock reads per item on long runs (they were an eighth of a passthrough hop).
    pub(crate) fn clock(index: u64) -> Option<Instant> {
        (index < TIME_ALL || index.is_multiple_of(TIME_EVERY)).then(Instant::now)
    }

    /// Counts in `metrics` too from now on.
    pub(crate) fn with_metrics(metrics: NodeMetrics) -> NodeStats {
        NodeStats {
            metrics: Some(metrics),
            ..NodeStats::default()
        }
    }

    /// Records the duration of a call [`NodeStats::clock`] chose to time (the metrics'
    /// histogram sees the same sample).
    pub(crate) fn record(&mut self, start: Option<Instant>) {
        if let Some(start) = start {
            let elapsed = start.elapsed();
            self.latencies.push(elapsed);
            if let Some(metrics) = &self.metrics {
                metrics.seconds.observe(elapsed.as_secs_f64());
            }
        }
    }

    /// An input was taken; returns its index.
    pub(crate) fn took_in(&mut self) -> u64 {
        if let Some(metrics) = &self.metrics {
            metrics.items_in.inc();
        }
        self.items_in += 1;
        self.items_in - 1
    }

    /// `n` outputs went downstream.
    pub(crate) fn sent(&mut self, n: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.items_out.inc_by(n as u64);
        }
        self.items_out += n as u64;
    }

    /// An input (or a pull, or the flush) failed.
    pub(crate) fn failed(&mut self) {
        if let Some(metrics) = &self.metrics {
            metrics.errors.inc();
        }
        self.errors += 1;
    }

    /// The node was made anew after a panic.
    pub(crate) fn restarted(&mut self) {
        if let Some(metrics) = &self.metrics {
            metrics.restarts.inc();
        }
        self.restarts += 1;
    }

    /// `n` inputs wait to be processed.
    pub(crate) fn backlog(&self, n: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.backlog.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    fn percentile(sorted: &[Duration], p: usize) -> Option<Duration> {
        if sorted.is_empty() {
            return None;
        }
        let rank = ((sorted.len() * p).div_ceil(100)).clamp(1, sorted.len());
        sorted.get(rank - 1).copied()
    }

    pub(crate) fn into_summary(
        mut self,
        id: String,
        kind: NodeKind,
        type_name: &'static str,
    ) -> NodeSummary {
        self.latencies.sort_unstable();
        NodeSummary {
            id,
            kind,
            type_name,
            items_in: self.items_in,
            items_out: self.items_out,
            errors: self.errors,
            interrupts: self.interrupts,
            restarts: self.restarts,
            lost: self.lost,
            calls: self.latencies.len() as u64,
            p50: Self::percentile(&self.latencies, 50),
            p99: Self::percentile(&self.latencies, 99),
        }
    }
}

/// Whether a node is a source or a processing node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Produces items ([`troupe_nodes::Source`]).
    Source,
    /// Processes items ([`troupe_nodes::Node`]).
    Node,
}

/// One node's part of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    /// The node's id in the pipeline.
    pub id: String,
    /// Source or node.
    pub kind: NodeKind,
    /// Its type name (`"data.calculator"`).
    pub type_name: &'static str,
    /// Items it took in (0 for a source).
    pub items_in: u64,
    /// Items it emitted, flush outputs included (each counted once, whatever the fan-out).
    pub items_out: u64,
    /// Errors counted under [`ErrorPolicy::SkipItem`](crate::ErrorPolicy) (and the one that
    /// ended a run).
    pub errors: u64,
    /// Interrupts it handled.
    pub interrupts: u64,
    /// Times it crashed (panicked) and was made anew.
    pub restarts: u64,
    /// Inputs it was processing when it crashed: taken in, never finished, nothing emitted
    /// for them. (What a crashed instance held in its own buffers is lost too, uncounted.)
    pub lost: u64,
    /// `process` (or `pull`) calls timed.
    pub calls: u64,
    /// Median duration of a `process` (or `pull`) call; `None` without calls.
    pub p50: Option<Duration>,
    /// 99th percentile duration of a `process` (or `pull`) call; `None` without calls.
    pub p99: Option<Duration>,
}

/// One edge's part of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSummary {
    /// Upstream node id.
    pub from: String,
    /// Downstream node id.
    pub to: String,
    /// The edge's policy.
    pub policy: EdgePolicy,
    /// Items the policy dropped (always 0 under [`EdgePolicy::Backpressure`]).
    pub drops: u64,
}

/// The result of a finished run. `Display` prints it as a table.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Every node, in the order they were added.
    pub nodes: Vec<NodeSummary>,
    /// Every edge, in the order they were added.
    pub edges: Vec<EdgeSummary>,
    /// From the start of the run until end of stream passed through every node.
    pub wall_time: Duration,
    /// Seconds of media (audio, video) the sources emitted; 0 for other data.
    pub media_seconds: f64,
}

impl RunSummary {
    /// The node called `id`.
    pub fn node(&self, id: &str) -> Option<&NodeSummary> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Items dropped on the edges from `from` to `to`.
    pub fn drops(&self, from: &str, to: &str) -> u64 {
        self.edges
            .iter()
            .filter(|e| e.from == from && e.to == to)
            .map(|e| e.drops)
            .sum()
    }

    /// Inputs lost to crashes, over every node.
    pub fn lost(&self) -> u64 {
        self.nodes.iter().map(|n| n.lost).sum()
    }

    /// Seconds of media per second of wall time; `None` without media.
    pub fn realtime_factor(&self) -> Option<f64> {
        let wall = self.wall_time.as_secs_f64();
        (self.media_seconds > 0.0 && wall > 0.0).then(|| self.media_seconds / wall)
    }

    /// Items dropped on every edge into `to`.
    pub fn drops_into(&self, to: &str) -> u64 {
        self.edges
            .iter()
            .filter(|e| e.to == to)
            .map(|e| e.drops)
            .sum()
    }
}

struct Latency(Option<Duration>);

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.pad("-"),
            Some(d) if d < Duration::from_micros(1) => f.pad(&format!("{}ns", d.as_nanos())),
            Some(d) if d < Duration::from_millis(1) => {
                f.pad(&format!("{:.1}us", d.as_secs_f64() * 1e6))
            }
            Some(d) => f.pad(&format!("{:.2}ms", d.as_secs_f64() * 1e3)),
        }
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .nodes
            .iter()
            .map(|n| n.id.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "{:<width$}  {:<20}  {:>8}  {:>8}  {:>6}  {:>8}  {:>6}  {:>10}  {:>10}",
            "node", "type", "in", "out", "errors", "restarts", "lost", "p50", "p99"
        )?;
        for n in &self.nodes {
            writeln!(
                f,
                "{:<width$}  {:<20}  {:>8}  {:>8}  {:>6}  {:>8}  {:>6}  {:>10}  {:>10}",
                n.id,
                n.type_name,
                n.items_in,
                n.items_out,
                n.errors,
                n.restarts,
                n.lost,
                Latency(n.p50),
                Latency(n.p99)
            )?;
        }
        if !self.edges.is_empty() {
            writeln!(f)?;
            writeln!(f, "{:<30}  {:<12}  {:>8}", "edge", "policy", "drops")?;
            for e in &self.edges {
                let name = format!("{} -> {}", e.from, e.to);
                let policy = format!("{:?}", e.policy);
                writeln!(f, "{name:<30}  {policy:<12}  {:>8}", e.drops)?;
            }
        }
        write!(f, "wall time: {:.3}s", self.wall_time.as_secs_f64())?;
        if let Some(factor) = self.realtime_factor() {
            write!(
                f,
                ", media: {:.1}s ({factor:.0}x real time)",
                self.media_seconds
            )?;
        }
        Ok(())
    }
}
