//! Pipeline errors: error policies, panics, and graph checks at build time.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "pipeline_support.rs"]
mod support;

use std::time::Duration;

use support::{Collect, PanicAt, Range, ints};
use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{Emitter, Node, NodeError, Source, SourceState};
use troupe_pipeline::{ErrorPolicy, PipelineBuilder, PipelineError};
use troupe_value::{Map, Value};

fn divide_by(operand: i64) -> Built {
    let mut map = Map::new();
    map.insert("op".to_owned(), Value::from("divide"));
    map.insert("operand".to_owned(), Value::from(operand));
    catalog::build("data.calculator", map).unwrap()
}

fn passthrough() -> Built {
    catalog::build("data.passthrough", Map::new()).unwrap()
}

/// Emits the ints in `items`, one per pull.
struct List(Vec<i64>);

impl Source for List {
    fn type_name(&self) -> &'static str {
        "test.list"
    }

    fn pull(&mut self, out: &mut Emitter) -> Result<SourceState, NodeError> {
        if self.0.is_empty() {
            return Ok(SourceState::Done);
        }
        out.emit(self.0.remove(0));
        Ok(SourceState::More)
    }
}

/// `x / 0` in `data.calculator` fails on its first input: the run ends naming the node,
/// input #0 and the cause.
#[actix::test]
async fn fail_pipeline_names_node_and_input_index() {
    let err = PipelineBuilder::new()
        .source("src", Box::new(List(vec![4, 8, 12])))
        .built("div0", divide_by(0))
        .edge("src", "div0")
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    match &err {
        PipelineError::Process {
            node,
            input_index,
            source,
        } => {
            assert_eq!(node, "div0");
            assert_eq!(*input_index, 0);
            assert!(source.to_string().contains("division by zero"), "{source}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("div0"));
}

/// Fails on every int equal to 0 (a stand-in for a calculator computing 1 / x).
struct Reciprocal;

impl Node for Reciprocal {
    fn type_name(&self) -> &'static str {
        "test.reciprocal"
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        match input.as_int() {
            Some(0) => Err(NodeError::InvalidInput {
                node: "test.reciprocal",
                reason: "division by zero".into(),
            }),
            Some(x) => {
                out.emit(1.0 / x as f64);
                Ok(())
            }
            None => Err(NodeError::WrongInput {
                node: "test.reciprocal",
                expected: "int",
                got: input.type_name(),
            }),
        }
    }
}

#[actix::test]
async fn fail_pipeline_reports_the_failing_input_index() {
    let err = PipelineBuilder::new()
        .source("src", Box::new(List(vec![4, 2, 1, 0, 5])))
        .node("recip", Box::new(Reciprocal))
        .edge("src", "recip")
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PipelineError::Process { node, input_index: 3, .. } if node == "recip"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "node `recip` failed on input #3: test.reciprocal: division by zero"
    );
}

#[actix::test]
async fn skip_item_counts_errors_and_goes_on() {
    let (sink, seen) = Collect::sink(Duration::ZERO);
    let summary = PipelineBuilder::new()
        .source("src", Range::boxed(0, 20))
        .built("div0", divide_by(0))
        .built("half", divide_by(2))
        .node("sink", sink)
        .edge("src", "div0")
        .edge("src", "half")
        .edge("half", "sink")
        .error_policy("div0", ErrorPolicy::SkipItem)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let div0 = summary.node("div0").unwrap();
    assert_eq!((div0.items_in, div0.items_out, div0.errors), (20, 0, 20));
    assert_eq!(summary.node("half").unwrap().errors, 0);
    assert_eq!(seen.lock().unwrap().items.len(), 20);
}

#[actix::test]
async fn a_panicking_node_ends_the_run_with_an_error() {
    let (sink, _seen) = Collect::sink(Duration::ZERO);
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        PipelineBuilder::new()
            .source("src", Range::boxed(0, 1000))
            .node("boom", Box::new(PanicAt(5)))
            .node("sink", sink)
            .edge("src", "boom")
            .edge("boom", "sink")
            .capacity("boom", 2)
            .build()
            .unwrap()
            .run(),
    )
    .await
    .expect("the run must not hang");
    assert!(
        matches!(&result, Err(PipelineError::Panicked { node }) if node == "boom"),
        "{result:?}"
    );
}

#[test]
fn build_errors() {
    let cycle = PipelineBuilder::new()
        .source("src", Range::boxed(0, 1))
        .built("a", passthrough())
        .built("b", passthrough())
        .edge("src", "a")
        .edge("a", "b")
        .edge("b", "a")
        .build()
        .unwrap_err();
    match &cycle {
        PipelineError::Cycle { path } => assert_eq!(path, &["a", "b", "a"]),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(cycle.to_string(), "cycle: a -> b -> a");

    let unknown = PipelineBuilder::new()
        .source("src", Range::boxed(0, 1))
        .built("a", passthrough())
        .edge("src", "a")
        .edge("a", "nowhere")
        .build()
        .unwrap_err();
    assert!(
        matches!(&unknown, PipelineError::UnknownEndpoint { from, to, missing }
            if from == "a" && to == "nowhere" && missing == "nowhere"),
        "{unknown:?}"
    );

    let orphan = PipelineBuilder::new()
        .source("src", Range::boxed(0, 1))
        .built("a", passthrough())
        .build()
        .unwrap_err();
    assert!(matches!(&orphan, PipelineError::NoInputs { node } if node == "a"));

    let into_source = PipelineBuilder::new()
        .source("src", Range::boxed(0, 1))
        .built("a", passthrough())
        .edge("src", "a")
        .edge("a", "src")
        .build()
        .unwrap_err();
    assert!(matches!(into_source, PipelineError::EdgeIntoSource { .. }));

    let duplicate = PipelineBuilder::new()
        .source("a", Range::boxed(0, 1))
        .built("a", passthrough())
        .build()
        .unwrap_err();
    assert!(matches!(duplicate, PipelineError::DuplicateId { .. }));

    let setting = PipelineBuilder::new()
        .source("src", Range::boxed(0, 1))
        .capacity("nope", 3)
        .build()
        .unwrap_err();
    assert!(matches!(setting, PipelineError::UnknownId { .. }));
}

#[test]
fn ints_helper_is_used() {
    assert_eq!(ints(&[Value::from(1)]), vec![1]);
}
