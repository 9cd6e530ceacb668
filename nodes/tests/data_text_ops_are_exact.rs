//! Every `data.text` operation, built from the catalog, gives exactly the expected output.

use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{Emitter, Node, NodeError};
use troupe_value::{Map, Value};

fn text_node(op: &str) -> Box<dyn Node> {
    let params: Map = [("op".to_owned(), Value::from(op))].into_iter().collect();
    match catalog::build("data.text", params) {
        Ok(Built::Node(node)) => node,
        other => panic!("data.text op={op} did not build: {other:?}"),
    }
}

fn run(op: &str, input: impl Into<Value>) -> Result<Value, NodeError> {
    let mut out = Emitter::new();
    text_node(op).process(input.into(), &mut out)?;
    assert_eq!(out.len(), 1);
    Ok(out.drain().next().unwrap_or_default())
}

#[test]
fn text_ops_are_exact() {
    let s = "  hello wORLD\tfrom  Troupe ";
    let cases: [(&str, Value); 9] = [
        ("upper", "  HELLO WORLD\tFROM  TROUPE ".into()),
        ("lower", "  hello world\tfrom  troupe ".into()),
        ("title", "  Hello World\tFrom  Troupe ".into()),
        ("reverse", " epuorT  morf\tDLROw olleh  ".into()),
        ("word_count", Value::Int(4)),
        ("char_count", Value::Int(27)),
        ("first_word", "hello".into()),
        ("last_word", "Troupe".into()),
        ("remove_spaces", "hellowORLDfromTroupe".into()),
    ];
    for (op, want) in cases {
        assert_eq!(run(op, s).expect(op), want, "op {op}");
    }
}

#[test]
fn unicode_and_empty_text() {
    assert_eq!(run("reverse", "añb").expect("reverse"), Value::from("bña"));
    assert_eq!(run("char_count", "añb").expect("count"), Value::Int(3));
    assert_eq!(
        run("upper", "straße").expect("upper"),
        Value::from("STRASSE")
    );
    assert_eq!(run("first_word", " \t").expect("empty"), Value::from(""));
    assert_eq!(run("word_count", "").expect("empty"), Value::Int(0));
}

#[test]
fn maps_use_their_text_entry_and_other_input_is_refused() {
    let input = Value::map([("text", "a b"), ("lang", "en")]);
    assert_eq!(run("upper", input).expect("map"), Value::from("A B"));
    assert!(matches!(
        run("upper", Value::Int(3)),
        Err(NodeError::WrongInput {
            node: "data.text",
            got: "int",
            ..
        })
    ));
    assert!(matches!(
        run("upper", Value::map([("body", "x")])),
        Err(NodeError::InvalidInput { .. })
    ));
    let params: Map = [("op".to_owned(), Value::from("shout"))]
        .into_iter()
        .collect();
    assert!(matches!(
        catalog::build("data.text", params),
        Err(NodeError::Params(_))
    ));
}
