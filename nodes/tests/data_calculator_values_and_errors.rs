//! `data.calculator`, built from the catalog: exact values, int/float typing, and typed
//! errors for bad input.

use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{Emitter, Node, NodeError};
use troupe_value::{Map, Value};

fn calc(op: &str, operand: impl Into<Value>) -> Box<dyn Node> {
    let params: Map = [
        ("op".to_owned(), Value::from(op)),
        ("operand".to_owned(), operand.into()),
    ]
    .into_iter()
    .collect();
    match catalog::build("data.calculator", params) {
        Ok(Built::Node(node)) => node,
        other => panic!("data.calculator op={op} did not build: {other:?}"),
    }
}

fn run(op: &str, input: impl Into<Value>, operand: impl Into<Value>) -> Result<Value, NodeError> {
    let mut out = Emitter::new();
    calc(op, operand).process(input.into(), &mut out)?;
    assert_eq!(out.len(), 1);
    Ok(out.drain().next().unwrap_or_default())
}

fn reason(result: Result<Value, NodeError>) -> String {
    match result {
        Err(NodeError::InvalidInput { node, reason }) => {
            assert_eq!(node, "data.calculator");
            reason
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

/// The result of `input <op> operand`, which must not fail.
fn ok(op: &str, input: impl Into<Value>, operand: impl Into<Value>) -> Value {
    run(op, input, operand).unwrap_or_else(|e| panic!("{op}: {e}"))
}

#[test]
fn exact_values() {
    assert_eq!(ok("add", 2, 3), Value::Int(5));
    assert_eq!(ok("subtract", 2, 3), Value::Int(-1));
    assert_eq!(ok("multiply", -4, 3), Value::Int(-12));
    assert_eq!(ok("divide", 12, 4), Value::Int(3));
    assert_eq!(ok("divide", 7, 2), Value::Float(3.5));
    assert_eq!(ok("power", 2, 10), Value::Int(1024));
    assert_eq!(ok("power", 2, -1), Value::Float(0.5));
    assert_eq!(ok("modulo", 7, 3), Value::Int(1));
    assert_eq!(ok("modulo", -7, 3), Value::Int(2));
    assert_eq!(ok("add", 1.5, 1), Value::Float(2.5));
    assert_eq!(ok("multiply", 3, 0.5), Value::Float(1.5));
    assert_eq!(ok("power", 9.0, 0.5), Value::Float(3.0));
    assert_eq!(ok("divide", 1.0, 4), Value::Float(0.25));
    assert_eq!(ok("add", i64::MAX - 1, 1), Value::Int(i64::MAX));
    assert_eq!(ok("power", 3, 39), Value::Int(4052555153018976267));
}

#[test]
fn bad_input_is_a_typed_error() {
    assert!(reason(run("divide", 1, 0)).contains("division by zero"));
    assert!(reason(run("divide", 1.0, 0.0)).contains("division by zero"));
    assert!(reason(run("modulo", 5, 0)).contains("modulo by zero"));
    assert!(reason(run("power", 2, 64)).contains("overflow"));
    assert!(reason(run("power", 10, 19)).contains("overflow"));
    assert!(reason(run("add", i64::MAX, 1)).contains("overflow"));
    assert!(reason(run("multiply", i64::MIN, -1)).contains("overflow"));
    assert!(reason(run("power", 10.0, 400)).contains("overflow"));
    assert!(matches!(
        run("add", "3", 1),
        Err(NodeError::WrongInput {
            node: "data.calculator",
            got: "str",
            ..
        })
    ));
    assert!(matches!(
        run("add", true, 1),
        Err(NodeError::WrongInput { got: "bool", .. })
    ));
}

#[test]
fn bad_params_are_refused_at_build() {
    let build = |pairs: &[(&str, Value)]| {
        let params: Map = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        catalog::build("data.calculator", params)
    };
    assert!(matches!(
        build(&[("op", "root".into()), ("operand", 2.into())]),
        Err(NodeError::Params(_))
    ));
    assert!(matches!(
        build(&[("op", "add".into()), ("operand", "two".into())]),
        Err(NodeError::Params(_))
    ));
    assert!(matches!(
        build(&[("op", "add".into())]),
        Err(NodeError::Params(_))
    ));
}
