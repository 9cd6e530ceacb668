//! Values written by `data.jsonl_sink` come back equal from `data.jsonl_source`, and a bad
//! line stops the source with an error naming that line.

use std::path::Path;

use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{Emitter, Node, NodeError, Source, SourceState};
use troupe_value::{Buffer, Map, Value};

fn path_params(path: &Path) -> Map {
    [(
        "path".to_owned(),
        Value::from(path.to_str().expect("utf-8 path")),
    )]
    .into_iter()
    .collect()
}

fn sink(path: &Path) -> Box<dyn Node> {
    match catalog::build("data.jsonl_sink", path_params(path)) {
        Ok(Built::Node(node)) => node,
        other => panic!("data.jsonl_sink did not build: {other:?}"),
    }
}

fn source(path: &Path) -> Box<dyn Source> {
    match catalog::build("data.jsonl_source", path_params(path)) {
        Ok(Built::Source(source)) => source,
        other => panic!("data.jsonl_source did not build: {other:?}"),
    }
}

fn read_all(source: &mut dyn Source) -> Result<Vec<Value>, NodeError> {
    let mut out = Emitter::new();
    while source.pull(&mut out)? == SourceState::More {}
    Ok(out.drain().collect())
}

#[test]
fn jsonl_round_trips() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data.jsonl");
    let values = vec![
        Value::Null,
        Value::Bool(true),
        Value::Int(-42),
        Value::Int(i64::MAX),
        Value::Float(0.1),
        Value::Float(-2.0),
        Value::from("line\nbreak \"quoted\" é"),
        Value::List(vec![Value::Int(1), Value::from("two"), Value::List(vec![])]),
        Value::map([
            ("zeta", Value::Int(1)),
            ("alpha", Value::map([("inner", Value::Float(2.5))])),
            ("mid", Value::Null),
        ]),
    ];
    let mut node = sink(&path);
    let mut out = Emitter::new();
    node.initialize().expect("initialize");
    for v in values.iter().cloned() {
        node.process(v, &mut out).expect("write");
    }
    node.process(Value::Bytes(Buffer::from(b"hi!".to_vec())), &mut out)
        .expect("write bytes");
    node.flush(&mut out).expect("flush");
    node.shutdown();
    assert!(out.is_empty(), "a sink emits nothing");

    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(text.lines().count(), values.len() + 1);
    assert_eq!(
        text.lines().last(),
        Some(r#"{"type":"bytes","len":3,"base64":"aGkh"}"#)
    );

    let read = read_all(source(&path).as_mut()).expect("valid file");
    assert_eq!(read[..values.len()], values[..]);
    // Map order survives, not only map equality.
    let keys: Vec<&String> = read[8].as_map().expect("map").keys().collect();
    assert_eq!(keys, ["zeta", "alpha", "mid"]);
}

#[test]
fn a_bad_line_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, "{\"ok\": 1}\n\n[1, 2,]\n{\"never\": \"read\"}\n").expect("write");
    let mut src = source(&path);
    let mut out = Emitter::new();
    assert_eq!(src.pull(&mut out).expect("line 1"), SourceState::More);
    let err = src.pull(&mut out).expect_err("line 3 is not JSON");
    let text = err.to_string();
    assert!(matches!(
        err,
        NodeError::Format {
            node: "data.jsonl_source",
            ..
        }
    ));
    assert!(text.contains("bad.jsonl: line 3:"), "{text}");
    assert_eq!(out.items(), &[Value::map([("ok", 1)])]);
}
