//! `data.jsonl_sink`: writes each item as one line of a JSON Lines file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use troupe_value::Value;

use crate::catalog::{Built, NodeType};
use crate::data::json::ToJson;
use crate::node::{Emitter, Node, NodeError};
use crate::params::{ParamKind, ParamSpec, Params};

const NAME: &str = "data.jsonl_sink";

const PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "path",
    kind: ParamKind::Path,
    default: None,
    doc: "The JSON Lines file to write (created at initialize, replaced if it exists).",
}];

/// The `data.jsonl_sink` node type.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Writes each item as one JSON line (bytes as base64, media as summaries).",
    is_source: false,
    params: PARAMS,
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let path = params.str("path", None)?;
    Ok(Built::Node(Box::new(JsonlSink::new(path))))
}

/// Writes every item as one compact JSON line and emits nothing.
///
/// The file is created at `initialize` (or at the first item, if `initialize` was not
/// called). Lines are buffered and written out at `flush` and at `shutdown`. Bytes are
/// base64 inside a summary object; arrays, audio and video are written as summaries
/// without their data (see the `data` module docs).
#[derive(Debug)]
pub struct JsonlSink {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    lines: u64,
}

impl JsonlSink {
    /// A sink writing `path`.
    pub fn new(path: impl AsRef<Path>) -> JsonlSink {
        JsonlSink {
            path: path.as_ref().to_owned(),
            out: None,
            lines: 0,
        }
    }

    /// Number of lines written so far.
    pub fn lines_written(&self) -> u64 {
        self.lines
    }

    fn io(&self, source: std::io::Error) -> NodeError {
        NodeError::Io {
            node: NAME,
            path: self.path.display().to_string(),
            source,
        }
    }

    fn writer(&mut self) -> Result<&mut BufWriter<File>, NodeError> {
        match self.out {
            Some(ref mut out) => Ok(out),
            None => {
                let file = File::create(&self.path).map_err(|e| self.io(e))?;
                Ok(self.out.insert(BufWriter::new(file)))
            }
        }
    }
}

impl Node for JsonlSink {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn initialize(&mut self) -> Result<(), NodeError> {
        self.writer().map(|_| ())
    }

    fn process(&mut self, input: Value, _out: &mut Emitter) -> Result<(), NodeError> {
        // One line is built whole, so a failure leaves no half line behind.
        let mut line = serde_json::to_vec(&ToJson(&input)).map_err(|e| NodeError::Format {
            node: NAME,
            reason: format!("{}: {e}", self.path.display()),
        })?;
        line.push(b'\n');
        let written = self.writer()?.write_all(&line);
        written.map_err(|e| self.io(e))?;
        self.lines += 1;
        Ok(())
    }

    fn flush(&mut self, _out: &mut Emitter) -> Result<(), NodeError> {
        let flushed = match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        };
        flushed.map_err(|e| self.io(e))
    }

    fn shutdown(&mut self) {
        if let Some(mut out) = self.out.take() {
            // Nowhere to report a failure here; `flush` already reported it if it happened.
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_file_at_flush() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.jsonl");
        let mut sink = JsonlSink::new(&path);
        sink.initialize().expect("created");
        let mut out = Emitter::new();
        sink.process(Value::map([("k", 1)]), &mut out)
            .expect("item");
        sink.process(Value::from("x"), &mut out).expect("item");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "");
        sink.flush(&mut out).expect("flush");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"k\":1}\n\"x\"\n"
        );
        assert!(out.is_empty());
        assert_eq!(sink.lines_written(), 2);
    }

    #[test]
    fn an_unwritable_path_is_an_io_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sink = JsonlSink::new(dir.path().join("no/such/dir/out.jsonl"));
        assert!(matches!(sink.initialize(), Err(NodeError::Io { .. })));
    }
}
