//! Pipeline data flow: chains, fan-out/fan-in, flush before end of stream, backpressure and
//! drop policies.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "pipeline_support.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Arbiter;

use support::{Collect, Hold, Range, Seen, ints};
use troupe_nodes::catalog::{self, Built};
use troupe_pipeline::{EdgePolicy, PipelineBuilder, RunSummary};
use troupe_value::{Map, Value};

fn catalog_node(name: &str, params: &[(&str, Value)]) -> Built {
    let mut map = Map::new();
    for (k, v) in params {
        map.insert((*k).to_owned(), v.clone());
    }
    catalog::build(name, map).unwrap()
}

fn add(operand: i64) -> Built {
    catalog_node(
        "data.calculator",
        &[
            ("op", Value::from("add")),
            ("operand", Value::from(operand)),
        ],
    )
}

#[actix::test]
async fn linear_chain_delivers_everything_in_order() {
    let (sink, seen) = Collect::sink(Duration::ZERO);
    let summary = PipelineBuilder::new()
        .source("src", Range::boxed(0, 500))
        .built("copy", catalog_node("data.passthrough", &[]))
        .built("plus1", add(1))
        .node("sink", sink)
        .edge("src", "copy")
        .edge("copy", "plus1")
        .edge("plus1", "sink")
        .capacity("plus1", 3)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    println!("{summary}");
    let seen = seen.lock().unwrap();
    assert_eq!(ints(&seen.items), (1..501).collect::<Vec<_>>());
    assert!(seen.flushed);
    assert_eq!(summary.node("src").unwrap().items_out, 500);
    for id in ["copy", "plus1"] {
        let node = summary.node(id).unwrap();
        assert_eq!((node.items_in, node.items_out, node.errors), (500, 500, 0));
        assert_eq!(node.calls, 500);
        assert!(node.p50.is_some() && node.p99 >= node.p50);
    }
    assert_eq!(summary.node("sink").unwrap().items_in, 500);
    assert!(summary.edges.iter().all(|e| e.drops == 0));
    let table = summary.to_string();
    assert!(table.contains("plus1") && table.contains("data.calculator"));
}

#[actix::test]
async fn fan_out_and_fan_in_pass_eos_after_both_branches() {
    let (sink, seen) = Collect::sink(Duration::ZERO);
    let summary = PipelineBuilder::new()
        .source("src", Range::boxed(0, 100))
        .built("plus1000", add(1000))
        // A slow branch: it holds everything until end of stream.
        .node("hold", Box::new(Hold(Vec::new())))
        .built("join", catalog_node("data.passthrough", &[]))
        .node("sink", sink)
        .edge("src", "plus1000")
        .edge("src", "hold")
        .edge("plus1000", "join")
        .edge("hold", "join")
        .edge("join", "sink")
        .capacity("join", 4)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen.flushed);
    assert_eq!(seen.items_after_flush, 0);
    let got = ints(&seen.items);
    assert_eq!(got.len(), 200);
    // Each branch keeps its order; the held branch comes entirely at its flush, so all of it
    // reached the join before the join passed end of stream.
    let fast: Vec<i64> = got.iter().copied().filter(|&v| v >= 1000).collect();
    let held: Vec<i64> = got.iter().copied().filter(|&v| v < 1000).collect();
    assert_eq!(fast, (1000..1100).collect::<Vec<_>>());
    assert_eq!(held, (0..100).collect::<Vec<_>>());
    assert_eq!(summary.node("join").unwrap().items_in, 200);
    assert_eq!(summary.node("join").unwrap().items_out, 200);
    assert_eq!(summary.node("hold").unwrap().items_out, 100);
    assert_eq!(summary.node("src").unwrap().items_out, 100);
}

#[actix::test]
async fn flush_outputs_arrive_before_end_of_stream() {
    let (sink, seen) = Collect::sink(Duration::ZERO);
    let summary = PipelineBuilder::new()
        .source("src", Range::boxed(0, 10))
        .node("hold", Box::new(Hold(Vec::new())))
        .node("sink", sink)
        .edge("src", "hold")
        .edge("hold", "sink")
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(ints(&seen.items), (0..10).collect::<Vec<_>>());
    assert!(seen.flushed);
    assert_eq!(seen.items_after_flush, 0);
    let hold = summary.node("hold").unwrap();
    assert_eq!((hold.items_in, hold.items_out), (10, 10));
}

#[actix::test]
async fn backpressure_with_a_slow_sink_loses_nothing() {
    let (sink, seen) = Collect::sink(Duration::from_millis(2));
    // The sink sleeps: give it its own thread so the rest of the graph keeps going.
    let sink_thread = Arbiter::new();
    let summary = PipelineBuilder::new()
        .source("src", Range::boxed(0, 60))
        .built("copy", catalog_node("data.passthrough", &[]))
        .node("sink", sink)
        .arbiter("sink", sink_thread.handle())
        .edge("src", "copy")
        .edge("copy", "sink")
        .capacity("copy", 2)
        .capacity("sink", 2)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    sink_thread.stop();
    assert_eq!(
        ints(&seen.lock().unwrap().items),
        (0..60).collect::<Vec<_>>()
    );
    assert_eq!(summary.drops_into("sink"), 0);
    assert_eq!(summary.node("sink").unwrap().items_in, 60);
}

/// 200 items through a passthrough into a 2 ms sink of capacity 2 (on its own thread, so
/// the rest of the graph keeps going), over an edge with `policy`.
async fn run_into_slow_sink(policy: EdgePolicy) -> (RunSummary, Arc<Mutex<Seen>>) {
    let (sink, seen) = Collect::sink(Duration::from_millis(2));
    let sink_thread = Arbiter::new();
    let summary = PipelineBuilder::new()
        .source("src", Range::boxed(0, 200))
        .built("copy", catalog_node("data.passthrough", &[]))
        .node("sink", sink)
        .arbiter("sink", sink_thread.handle())
        .edge("src", "copy")
        .edge_with("copy", "sink", policy)
        .capacity("sink", 2)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    sink_thread.stop();
    (summary, seen)
}

#[actix::test]
async fn drop_newest_counts_drops_with_a_slow_sink() {
    let (summary, seen) = run_into_slow_sink(EdgePolicy::DropNewest).await;
    println!("{summary}");
    let drops = summary.drops("copy", "sink");
    let copy = summary.node("copy").unwrap();
    let sink = summary.node("sink").unwrap();
    assert!(drops > 0, "{summary}");
    assert_eq!(sink.items_in + drops, copy.items_out);
    assert_eq!(copy.items_out, 200);
    let seen = seen.lock().unwrap();
    assert!(seen.flushed);
    // What got through is in order (the first items always do).
    let got = ints(&seen.items);
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(got.first(), Some(&0));
}

#[actix::test]
async fn drop_oldest_keeps_the_newest_items() {
    let (summary, seen) = run_into_slow_sink(EdgePolicy::DropOldest).await;
    let drops = summary.drops("copy", "sink");
    let sink = summary.node("sink").unwrap();
    assert!(drops > 0, "{summary}");
    assert_eq!(sink.items_in + drops, 200);
    let seen = seen.lock().unwrap();
    assert!(seen.flushed);
    let got = ints(&seen.items);
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    // The newest item is never the one dropped.
    assert_eq!(got.last(), Some(&199));
}

/// Per-hop overhead: a chain of passthrough nodes. Run with
/// `cargo test --release -p troupe-pipeline --test pipeline_flow -- --ignored --nocapture`.
#[actix::test]
#[ignore = "measurement, not a check"]
async fn measure_per_hop_overhead() {
    const ITEMS: i64 = 200_000;
    let mut wall = Vec::new();
    for hops in [1usize, 9] {
        let mut builder = PipelineBuilder::new().source("src", Range::boxed(0, ITEMS));
        let mut prev = "src".to_owned();
        for h in 0..hops {
            let id = format!("p{h}");
            builder = builder
                .built(id.clone(), catalog_node("data.passthrough", &[]))
                .edge(prev, id.clone());
            prev = id;
        }
        let summary = builder.build().unwrap().run().await.unwrap();
        wall.push(summary.wall_time);
        println!(
            "{hops} hops: {:.0} ns/item",
            summary.wall_time.as_nanos() as f64 / ITEMS as f64
        );
    }
    let per_hop = (wall[1].as_nanos() as f64 - wall[0].as_nanos() as f64) / (8.0 * ITEMS as f64);
    println!("per-hop overhead: {per_hop:.0} ns/item");
}

/// A node whose outputs come later, out of order (an input's delay depends on its value),
/// with up to `concurrency` inputs in hand; counts how many it had in hand at most.
struct Overlapping {
    concurrency: usize,
    in_hand: Arc<std::sync::atomic::AtomicUsize>,
    most: Arc<std::sync::atomic::AtomicUsize>,
}

impl Overlapping {
    /// The node, and the count of inputs it had in hand at most.
    fn new(concurrency: usize) -> (Box<Overlapping>, Arc<std::sync::atomic::AtomicUsize>) {
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let node = Overlapping {
            concurrency,
            in_hand: Arc::default(),
            most: most.clone(),
        };
        (Box::new(node), most)
    }
}

impl troupe_nodes::Node for Overlapping {
    fn type_name(&self) -> &'static str {
        "test.overlapping"
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn process(
        &mut self,
        input: Value,
        out: &mut troupe_nodes::Emitter,
    ) -> Result<(), troupe_nodes::NodeError> {
        use std::sync::atomic::Ordering;
        let n = ints(std::slice::from_ref(&input))[0];
        let (in_hand, most) = (self.in_hand.clone(), self.most.clone());
        let now = in_hand.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(now, Ordering::SeqCst);
        // Later inputs finish first within a group of 8.
        let delay = Duration::from_millis(1 + (7 - (n % 8)) as u64);
        out.defer(async move {
            tokio::time::sleep(delay).await;
            in_hand.fetch_sub(1, Ordering::SeqCst);
            // Some inputs have no output, some two, some fail (skipped).
            match n % 15 {
                _ if n % 50 == 49 => Err(troupe_nodes::NodeError::InvalidInput {
                    node: "test.overlapping",
                    reason: format!("no {n}"),
                }),
                0 => Ok(vec![]),
                5 | 10 => Ok(vec![Value::from(n), Value::from(n)]),
                _ => Ok(vec![Value::from(n)]),
            }
        });
        Ok(())
    }

    fn flush(&mut self, out: &mut troupe_nodes::Emitter) -> Result<(), troupe_nodes::NodeError> {
        out.defer(async { Ok(vec![Value::from(-1)]) });
        Ok(())
    }
}

#[actix::test]
async fn a_node_with_concurrency_overlaps_inputs_and_keeps_their_order() {
    // 32: more than one upstream message (16 items at most) in hand at once.
    for concurrency in [1, 8, 32] {
        let (node, most) = Overlapping::new(concurrency);
        let (sink, seen) = Collect::sink(Duration::ZERO);
        let summary = PipelineBuilder::new()
            .source("src", Range::boxed(0, 200))
            .node("slow", node)
            .node("sink", sink)
            .edge("src", "slow")
            .edge("slow", "sink")
            .error_policy("slow", troupe_pipeline::ErrorPolicy::SkipItem)
            .build()
            .unwrap()
            .run()
            .await
            .unwrap();
        assert_eq!(summary.node("slow").unwrap().errors, 4, "skipped");
        let mut expected: Vec<i64> = (0..200)
            .filter(|n| n % 50 != 49)
            .flat_map(|n| match n % 15 {
                0 => vec![],
                5 | 10 => vec![n, n],
                _ => vec![n],
            })
            .collect();
        expected.push(-1);
        let seen = seen.lock().unwrap();
        assert_eq!(ints(&seen.items), expected, "concurrency {concurrency}");
        let most = most.load(std::sync::atomic::Ordering::SeqCst);
        if concurrency <= 16 {
            assert_eq!(most, concurrency, "in hand at most");
        } else {
            assert!(
                (17..=concurrency).contains(&most),
                "{most} in hand at most, for concurrency {concurrency}: the node took messages while inputs were in flight"
            );
        }
    }
}

#[actix::test]
async fn a_node_with_concurrency_behind_a_drop_oldest_edge_ends_in_order() {
    let (node, _) = Overlapping::new(4);
    let (sink, seen) = Collect::sink(Duration::ZERO);
    let summary = PipelineBuilder::new()
        .source("src", Range::boxed(0, 500))
        .node("slow", node)
        .node("sink", sink)
        .edge_with("src", "slow", EdgePolicy::DropOldest)
        .capacity("slow", 2)
        .edge("slow", "sink")
        .error_policy("slow", troupe_pipeline::ErrorPolicy::SkipItem)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen.flushed, "end of stream came through");
    let got = ints(&seen.items);
    assert_eq!(got.last(), Some(&-1), "the flush last");
    let items = &got[..got.len() - 1];
    assert!(
        items.windows(2).all(|w| w[0] <= w[1]),
        "in order: {items:?}"
    );
    assert!(summary.drops("src", "slow") > 0, "{summary}");
}
