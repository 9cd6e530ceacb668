//! `data.text`: small string operations.

use troupe_value::Value;

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, Node, NodeError};
use crate::params::{ParamKind, ParamSpec, Params};

const NAME: &str = "data.text";

const PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "op",
    kind: ParamKind::Choice(TextOp::NAMES),
    default: None,
    doc: "upper, lower, title (each word's first letter upper, the rest lower), reverse \
          (by character), remove_spaces (all whitespace) -> text; word_count, char_count \
          -> integer; first_word, last_word -> text (\"\" when there is none). Words are \
          separated by whitespace; characters are Unicode scalar values.",
}];

/// The `data.text` node type.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Applies a string operation to text (a string, or a map's \"text\" entry).",
    is_source: false,
    params: PARAMS,
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let op = params.choice("op", TextOp::NAMES, None)?;
    let op = TextOp::from_name(op).ok_or_else(|| params.out_of_range("op", "unknown"))?;
    Ok(Built::Node(Box::new(Text::new(op))))
}

/// What [`Text`] does to its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    /// Upper case (Unicode rules: `"ß"` becomes `"SS"`).
    Upper,
    /// Lower case.
    Lower,
    /// Each whitespace-separated word's first character upper case, the rest lower.
    Title,
    /// Characters in reverse order.
    Reverse,
    /// Number of whitespace-separated words (an integer).
    WordCount,
    /// Number of characters, Unicode scalar values (an integer).
    CharCount,
    /// The first word, or `""`.
    FirstWord,
    /// The last word, or `""`.
    LastWord,
    /// The text without any whitespace.
    RemoveSpaces,
}

impl TextOp {
    /// Parameter spellings, in declaration order.
    pub(crate) const NAMES: &'static [&'static str] = &[
        "upper",
        "lower",
        "title",
        "reverse",
        "word_count",
        "char_count",
        "first_word",
        "last_word",
        "remove_spaces",
    ];

    const ALL: [TextOp; 9] = [
        TextOp::Upper,
        TextOp::Lower,
        TextOp::Title,
        TextOp::Reverse,
        TextOp::WordCount,
        TextOp::CharCount,
        TextOp::FirstWord,
        TextOp::LastWord,
        TextOp::RemoveSpaces,
    ];

    /// The operation called `name` (one of the `op` parameter's choices).
    pub fn from_name(name: &str) -> Option<TextOp> {
        let i = TextOp::NAMES.iter().position(|n| *n == name)?;
        TextOp::ALL.get(i).copied()
    }

    /// The operation applied to `text`: a [`Value::Str`], or a [`Value::Int`] for counts.
    pub fn apply(self, text: &str) -> Value {
        let count = |n: usize| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        match self {
            TextOp::Upper => text.to_uppercase().into(),
            TextOp::Lower => text.to_lowercase().into(),
            TextOp::Title => title_case(text).into(),
            TextOp::Reverse => text.chars().rev().collect::<String>().into(),
            TextOp::WordCount => count(text.split_whitespace().count()),
            TextOp::CharCount => count(text.chars().count()),
            TextOp::FirstWord => text.split_whitespace().next().unwrap_or("").into(),
            TextOp::LastWord => text.split_whitespace().next_back().unwrap_or("").into(),
            TextOp::RemoveSpaces => text
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .into(),
        }
    }
}

/// Keeps whitespace as it is; a word starts after whitespace or at the start.
fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at_word_start = true;
    for c in text.chars() {
        if c.is_whitespace() {
            out.push(c);
            at_word_start = true;
        } else if at_word_start {
            out.extend(c.to_uppercase());
            at_word_start = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Applies one [`TextOp`] to every item.
///
/// Takes a string, or a map with a string `"text"` entry (its other entries are ignored);
/// emits the bare result, a string or an integer, for either.
#[derive(Debug, Clone)]
pub struct Text {
    op: TextOp,
}

impl Text {
    /// A node applying `op`.
    pub fn new(op: TextOp) -> Text {
        Text { op }
    }
}

impl Node for Text {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let text = match &input {
            Value::Str(text) => text,
            Value::Map(map) => match map.get("text") {
                Some(Value::Str(text)) => text,
                Some(other) => {
                    return Err(NodeError::InvalidInput {
                        node: NAME,
                        reason: format!("the \"text\" entry is {}, not str", other.type_name()),
                    });
                }
                None => {
                    return Err(NodeError::InvalidInput {
                        node: NAME,
                        reason: "the map has no \"text\" entry".to_owned(),
                    });
                }
            },
            other => {
                return Err(NodeError::WrongInput {
                    node: NAME,
                    expected: "str, or a map with a \"text\" str",
                    got: other.type_name(),
                });
            }
        };
        out.emit(self.op.apply(text));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_names_itself() {
        for name in TextOp::NAMES {
            assert!(TextOp::from_name(name).is_some(), "{name}");
        }
        assert_eq!(TextOp::from_name("shout"), None);
    }

    #[test]
    fn title_keeps_spacing() {
        assert_eq!(title_case("  hELLO\twORLD  x"), "  Hello\tWorld  X");
    }

    #[test]
    fn maps_are_read_through_their_text_entry() {
        let mut node = Text::new(TextOp::WordCount);
        let mut out = Emitter::new();
        node.process(Value::map([("text", "a b c"), ("id", "7")]), &mut out)
            .expect("map");
        assert_eq!(out.items(), &[Value::Int(3)]);
        assert!(matches!(
            node.process(Value::map([("text", 1)]), &mut out),
            Err(NodeError::InvalidInput { .. })
        ));
        assert!(matches!(
            node.process(Value::Int(1), &mut out),
            Err(NodeError::WrongInput { got: "int", .. })
        ));
    }
}
