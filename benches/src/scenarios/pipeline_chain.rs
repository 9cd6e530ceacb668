//! `pipeline-chain`: items per second through a chain of 10 passthrough nodes.
//!
//! `troupe` is a pipeline: a source emitting N ints, then 10 `data.passthrough` nodes in a
//! line (10 edges, default mailboxes of 64, backpressure), all actors on one arbiter.
//! `tokio-mpsc` is the same shape written by hand: a producer task and 10 tasks forwarding
//! over bounded tokio channels of 64, on the same single-threaded runtime. A sample is one
//! run's wall time per item; `items_per_s` is from the median run and `per_hop_ns` divides
//! it by the 10 hops (one core does all the work, so this is the CPU cost of a hop).
//! Targets: a hop <= 2 us, >= 1 M items/s.

use std::time::Instant;

use tokio::sync::mpsc;
use troupe_host::extension_host::{PythonNode, PythonNodeSpec};
use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{Emitter, Node, NodeError, Source, SourceState};
use troupe_pipeline::{DEFAULT_NODE_CAPACITY, PipelineBuilder};
use troupe_runtime::Caller;
use troupe_value::{Map, Value};

use crate::{BenchError, Effort, Measurement};

const SCENARIO: &str = "pipeline-chain";
const HOPS: usize = 10;

/// Emits `0..end`, one int per pull.
struct Count {
    next: i64,
    end: i64,
}

impl Source for Count {
    fn type_name(&self) -> &'static str {
        "bench.count"
    }

    fn pull(&mut self, out: &mut Emitter) -> Result<SourceState, NodeError> {
        if self.next >= self.end {
            return Ok(SourceState::Done);
        }
        out.emit(self.next);
        self.next += 1;
        Ok(SourceState::More)
    }
}

/// Runs `count -> py` of `items` ints, `py` a python node calling `method` of `caller`
/// with `concurrency` calls in flight; an error says why, or how many items came out.
pub(crate) async fn through_python_node(
    caller: Caller,
    method: &str,
    items: usize,
    concurrency: usize,
) -> Result<(), String> {
    let spec = PythonNodeSpec {
        node: "py".into(),
        extension: caller.name().to_owned(),
        method: method.into(),
        generator: false,
        flush: false,
        concurrency,
        params: Map::new(),
    };
    through_node(Box::new(PythonNode::new(caller, &spec)), items).await
}

/// Runs `count -> py` of `items` items through `node` (as `py`) to the end; an error
/// unless every item came out.
pub(crate) async fn through_node(node: Box<dyn Node>, items: usize) -> Result<(), String> {
    let summary = PipelineBuilder::new()
        .source(
            "count",
            Box::new(Count {
                next: 0,
                end: items as i64,
            }),
        )
        .node("py", node)
        .edge("count", "py")
        .build()
        .map_err(|e| e.to_string())?
        .run()
        .await
        .map_err(|e| e.to_string())?;
    let out = summary.node("py").map_or(0, |n| n.items_out);
    if out != items as u64 {
        return Err(format!("{out} of {items} items came out"));
    }
    Ok(())
}

fn failed(reason: impl std::fmt::Display) -> BenchError {
    BenchError::Scenario {
        scenario: SCENARIO,
        reason: reason.to_string(),
    }
}

async fn troupe_run(n: u64) -> Result<u64, BenchError> {
    let mut builder = PipelineBuilder::new().source(
        "src",
        Box::new(Count {
            next: 0,
            end: n as i64,
        }),
    );
    let mut previous = "src".to_owned();
    for hop in 0..HOPS {
        let id = format!("pass{hop}");
        let Built::Node(node) = catalog::build("data.passthrough", Map::new()).map_err(failed)?
        else {
            return Err(failed("data.passthrough is a source"));
        };
        builder = builder.node(id.clone(), node).edge(previous, id.clone());
        previous = id;
    }
    let pipeline = builder.build().map_err(failed)?;
    let start = Instant::now();
    let summary = pipeline.run().await.map_err(failed)?;
    let elapsed = start.elapsed().as_nanos() as u64;
    let last = summary.node(&previous).map_or(0, |s| s.items_out);
    if last != n {
        return Err(failed(format!("{last} of {n} items came through")));
    }
    Ok(elapsed)
}

async fn mpsc_run(n: u64) -> Result<u64, BenchError> {
    let (first_tx, mut rx) = mpsc::channel::<Value>(DEFAULT_NODE_CAPACITY);
    for _ in 1..HOPS {
        let (tx, next_rx) = mpsc::channel::<Value>(DEFAULT_NODE_CAPACITY);
        let mut input = std::mem::replace(&mut rx, next_rx);
        tokio::task::spawn_local(async move {
            while let Some(item) = input.recv().await {
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
    }
    let last = tokio::task::spawn_local(async move {
        let mut seen = 0u64;
        while rx.recv().await.is_some() {
            seen += 1;
        }
        seen
    });
    let start = Instant::now();
    for i in 0..n {
        if first_tx.send(Value::Int(i as i64)).await.is_err() {
            break;
        }
    }
    drop(first_tx);
    let seen = last.await.map_err(failed)?;
    let elapsed = start.elapsed().as_nanos() as u64;
    if seen != n {
        return Err(failed(format!(
            "{seen} of {n} items came through the mpsc chain"
        )));
    }
    Ok(elapsed)
}

/// Runs the scenario.
pub(super) fn run(effort: Effort) -> Result<Vec<Measurement>, BenchError> {
    let n: u64 = effort.pick(100_000, 500_000);
    let runs = effort.pick(5, 11);
    let system = actix::System::new();
    let mut troupe = Vec::new();
    let mut mpsc = Vec::new();
    for _ in 0..runs {
        troupe.push(system.block_on(troupe_run(n))? / n);
        mpsc.push(system.block_on(mpsc_run(n))? / n);
    }
    let row = |system: &str, samples: &mut Vec<u64>| {
        let m = Measurement::from_samples(SCENARIO, system, 8, 1, samples);
        let per_item = m.median_ns.max(1) as f64;
        m.with("items_per_s", (1e9 / per_item).round())
            .with("per_hop_ns", (per_item / HOPS as f64).round())
            .with("chain_len", HOPS as u64)
            .with("items_per_run", n)
    };
    Ok(vec![
        row("troupe", &mut troupe),
        row("tokio-mpsc", &mut mpsc),
    ])
}
