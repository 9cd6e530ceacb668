//! A supervised node that panics is made anew per its restart policy: the input it held is
//! lost and counted, everything queued behind it reaches the next instance in order.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "pipeline_support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::{Collect, PanicAt, Range, Seen, ints};
use troupe_nodes::{Emitter, Node, NodeError};
use troupe_pipeline::{EdgePolicy, PipelineBuilder, PipelineError, RunSummary};
use troupe_runtime::supervision::{Backoff, RestartLimit, RestartPolicy, RestartSpec};
use troupe_value::Value;

/// Panics on each of `at`; otherwise passes its input on.
struct PanicOn(Vec<i64>);

impl Node for PanicOn {
    fn type_name(&self) -> &'static str {
        "test.panic_on"
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        if self.0.contains(&input.as_int().unwrap()) {
            panic!("test node panics on {input:?}");
        }
        out.emit(input);
        Ok(())
    }
}

fn spec(policy: RestartPolicy, max_restarts: u32, backoff: Backoff) -> RestartSpec {
    RestartSpec {
        policy,
        limit: RestartLimit {
            max_restarts,
            within: Duration::from_secs(60),
        },
        backoff,
    }
}

/// Fails the test instead of hanging it.
async fn bounded<T>(run: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run must not hang")
}

/// Runs `0..300` through a supervised node `flaky` (mailbox of 4) into a collecting sink.
async fn run_chain<F>(spec: RestartSpec, factory: F) -> (Result<RunSummary, PipelineError>, Seen)
where
    F: FnMut() -> Result<Box<dyn Node>, NodeError> + Send + 'static,
{
    let (sink, seen) = Collect::sink(Duration::ZERO);
    let result = bounded(
        PipelineBuilder::new()
            .source("src", Range::boxed(0, 300))
            .supervised_node("flaky", spec, factory)
            .node("sink", sink)
            .edge("src", "flaky")
            .edge("flaky", "sink")
            .capacity("flaky", 4)
            .build()
            .unwrap()
            .run(),
    )
    .await;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (result, seen)
}

#[actix::test]
async fn crashes_lose_one_input_each_and_the_rest_arrives_in_order() {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = made.clone();
    // A backoff long enough that inputs pile up in the mailbox while the node is down.
    let backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(20),
        multiplier: 1.0,
        jitter: 0.0,
    };
    let (summary, seen) = run_chain(spec(RestartPolicy::Permanent, 5, backoff), move || {
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(Box::new(PanicOn(vec![5, 17, 250])) as Box<dyn Node>)
    })
    .await;
    let summary = summary.unwrap();
    println!("{summary}");
    let want: Vec<i64> = (0..300).filter(|i| ![5, 17, 250].contains(i)).collect();
    assert_eq!(ints(&seen.items), want);
    let flaky = summary.node("flaky").unwrap();
    assert_eq!((flaky.items_in, flaky.items_out), (300, 297));
    assert_eq!((flaky.restarts, flaky.lost), (3, 3));
    assert_eq!(summary.lost(), 3);
    assert_eq!(made.load(Ordering::Relaxed), 4, "one instance per start");
}

#[actix::test]
async fn a_restarted_node_behind_a_drop_oldest_edge_keeps_the_buffered_items() {
    // The edge's buffer holds the whole stream, so nothing is dropped: the items drained
    // from it after the crash wait out the backoff and go to the new instance.
    let (sink, seen) = Collect::sink(Duration::ZERO);
    let backoff = Backoff {
        initial: Duration::from_millis(10),
        ..Backoff::NONE
    };
    let summary = bounded(
        PipelineBuilder::new()
            .source("src", Range::boxed(0, 100))
            .supervised_node("flaky", spec(RestartPolicy::Transient, 2, backoff), || {
                Ok(Box::new(PanicOn(vec![40])) as Box<dyn Node>)
            })
            .node("sink", sink)
            .edge_with("src", "flaky", EdgePolicy::DropOldest)
            .edge("flaky", "sink")
            .capacity("flaky", 128)
            .build()
            .unwrap()
            .run(),
    )
    .await
    .unwrap();
    assert_eq!(summary.drops("src", "flaky"), 0);
    assert_eq!(summary.node("flaky").unwrap().lost, 1);
    let want: Vec<i64> = (0..100).filter(|&i| i != 40).collect();
    assert_eq!(ints(&seen.lock().unwrap().items), want);
}

#[actix::test]
async fn the_run_fails_once_the_restart_limit_is_hit() {
    let (result, _) = run_chain(spec(RestartPolicy::Permanent, 2, Backoff::NONE), || {
        Ok(Box::new(PanicOn(vec![3, 4, 5, 6])) as Box<dyn Node>)
    })
    .await;
    match result {
        Err(PipelineError::GaveUp { node, give_up }) => {
            assert_eq!(node, "flaky");
            assert_eq!(give_up.restarts, 2);
            assert!(give_up.last_exit.to_string().contains("panics on"));
        }
        other => panic!("expected GaveUp, got {other:?}"),
    }
}

#[actix::test]
async fn a_temporary_node_is_not_restarted_and_a_failing_factory_is_an_error() {
    let (result, _) = run_chain(spec(RestartPolicy::Temporary, 5, Backoff::NONE), || {
        Ok(Box::new(PanicAt(7)) as Box<dyn Node>)
    })
    .await;
    assert!(
        matches!(&result, Err(PipelineError::Panicked { node }) if node == "flaky"),
        "{result:?}"
    );

    // The first instance is made at build; the factory's error is reported there.
    let made = Arc::new(AtomicUsize::new(0));
    let counter = made.clone();
    let (result, _) = run_chain(
        spec(RestartPolicy::Permanent, 5, Backoff::NONE),
        move || match counter.fetch_add(1, Ordering::Relaxed) {
            0 => Ok(Box::new(PanicAt(7)) as Box<dyn Node>),
            _ => Err(NodeError::InvalidInput {
                node: "test.factory",
                reason: "no second instance".into(),
            }),
        },
    )
    .await;
    assert!(
        matches!(&result, Err(PipelineError::Make { node, .. }) if node == "flaky"),
        "{result:?}"
    );
    let failing = PipelineBuilder::new()
        .source("src", Range::boxed(0, 1))
        .supervised_node("never", RestartSpec::default(), || {
            Err(NodeError::InvalidInput {
                node: "test.factory",
                reason: "no instance".into(),
            })
        })
        .edge("src", "never")
        .build();
    assert!(matches!(failing, Err(PipelineError::Make { node, .. }) if node == "never"));
}
