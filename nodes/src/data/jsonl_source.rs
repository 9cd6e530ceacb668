//! `data.jsonl_source`: one value per line of a JSON Lines file.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::catalog::{Built, NodeType};
use crate::data::json;
use crate::node::{Emitter, NodeError, Source, SourceState};
use crate::params::{ParamKind, ParamSpec, Params};

const NAME: &str = "data.jsonl_source";

const PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "path",
    kind: ParamKind::Path,
    default: None,
    doc: "The JSON Lines file to read (one JSON value per line, UTF-8).",
}];

/// The `data.jsonl_source` node type.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Reads a JSON Lines file, one value per non-blank line.",
    is_source: true,
    params: PARAMS,
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let path = params.str("path", None)?;
    Ok(Built::Source(Box::new(JsonlSource::open(path)?)))
}

/// Emits one [`Value`](troupe_value::Value) per line of a JSON Lines file.
///
/// Lines holding only whitespace are skipped. A line that is not one JSON value (or not
/// UTF-8) is a [`NodeError::Format`] error naming the file and its 1-based line number;
/// the stream stops there. See the `data` module docs for how JSON maps to values.
#[derive(Debug)]
pub struct JsonlSource {
    path: PathBuf,
    reader: BufReader<File>,
    line: Vec<u8>,
    line_no: u64,
    done: bool,
}

impl JsonlSource {
    /// Opens `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> Result<JsonlSource, NodeError> {
        let path = path.as_ref().to_owned();
        let file = File::open(&path).map_err(|source| NodeError::Io {
            node: NAME,
            path: path.display().to_string(),
            source,
        })?;
        Ok(JsonlSource {
            path,
            reader: BufReader::new(file),
            line: Vec::new(),
            line_no: 0,
            done: false,
        })
    }

    /// Lines read so far (blank ones included).
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }

    fn format_error(&mut self, reason: impl std::fmt::Display) -> NodeError {
        self.done = true;
        NodeError::Format {
            node: NAME,
            reason: format!("{}: line {}: {reason}", self.path.display(), self.line_no),
        }
    }
}

impl Source for JsonlSource {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn pull(&mut self, out: &mut Emitter) -> Result<SourceState, NodeError> {
        while !self.done {
            self.line.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.line)
                .map_err(|source| NodeError::Io {
                    node: NAME,
                    path: self.path.display().to_string(),
                    source,
                })?;
            if n == 0 {
                self.done = true;
                break;
            }
            self.line_no += 1;
            let text = match std::str::from_utf8(&self.line) {
                Ok(text) => text.trim(),
                Err(e) => return Err(self.format_error(format_args!("not UTF-8 ({e})"))),
            };
            if text.is_empty() {
                continue;
            }
            match json::parse(text) {
                Ok(value) => {
                    out.emit(value);
                    return Ok(SourceState::More);
                }
                Err(e) => {
                    // serde_json counts lines and columns within the text it got: keep the
                    // column, the line number is ours.
                    let message = e.to_string();
                    let message = message.split(" at line ").next().unwrap_or_default();
                    let column = e.column();
                    let reason = format!("invalid JSON at column {column}: {message}");
                    return Err(self.format_error(reason));
                }
            }
        }
        Ok(SourceState::Done)
    }
}

#[cfg(test)]
mod tests {
    use troupe_value::Value;

    use super::*;

    #[test]
    fn blank_lines_are_skipped_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, "1\n\n  \r\n{\"a\": [1, 2.5]}\r\n{oops}\n3\n").expect("write");
        let mut source = JsonlSource::open(&path).expect("open");
        let mut out = Emitter::new();
        assert_eq!(source.pull(&mut out).expect("line 1"), SourceState::More);
        assert_eq!(source.pull(&mut out).expect("line 4"), SourceState::More);
        assert_eq!(
            out.items(),
            &[
                Value::Int(1),
                Value::map([("a", Value::List(vec![Value::Int(1), Value::Float(2.5)]))])
            ]
        );
        let err = source.pull(&mut out).expect_err("line 5 is bad");
        let text = err.to_string();
        assert!(matches!(err, NodeError::Format { .. }));
        assert!(text.contains("line 5: invalid JSON at column 2"), "{text}");
        assert_eq!(source.pull(&mut out).expect("stopped"), SourceState::Done);
    }
}
