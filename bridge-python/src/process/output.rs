//! A child's stdout and stderr, forwarded line by line to `tracing` and remembered.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};
use std::thread;

/// Lines of stderr kept for crash reports.
const TAIL_LINES: usize = 40;

/// The longest line kept whole: the rest of a longer one is dropped (and counted), so a
/// child writing without newlines costs the host this much memory, not what it wrote.
pub(crate) const MAX_LINE: usize = 16 * 1024;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// The last lines a child wrote to stderr.
#[derive(Debug, Clone, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The remembered lines, oldest first, joined with newlines.
    pub fn text(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Forwards `pipe` line by line on a thread of its own until the child closes it. Returns the
/// thread so that a crash report can wait for the last lines.
pub(crate) fn forward(
    pipe: impl Read + Send + 'static,
    stream: Stream,
    extension: Arc<str>,
    pid: u32,
    tail: Option<StderrTail>,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name(format!("troupe-{}-{stream:?}", extension).to_lowercase())
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                let dropped = match read_line(&mut reader, &mut raw) {
                    Ok(None) | Err(_) => break,
                    Ok(Some(dropped)) => dropped,
                };
                let text = String::from_utf8_lossy(&raw);
                let text = text.trim_end_matches(['\n', '\r']);
                let line = if dropped > 0 {
                    format!("{text}... [{dropped} more bytes of this line dropped]")
                } else {
                    text.to_owned()
                };
                match stream {
                    Stream::Stdout => {
                        tracing::info!(target: "troupe::extension", extension = %extension, pid, stream = "stdout", "{line}")
                    }
                    Stream::Stderr => {
                        tracing::info!(target: "troupe::extension", extension = %extension, pid, stream = "stderr", "{line}")
                    }
                }
                if let Some(tail) = &tail {
                    tail.push(line);
                }
            }
        })
}

/// Reads one line into `line`, keeping at most [`MAX_LINE`] bytes of it; returns how many
/// bytes past that were dropped, or `None` at the end of the stream.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    let mut dropped = 0usize;
    let mut any = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(any.then_some(dropped));
        }
        any = true;
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(at) => (&available[..=at], true),
            None => (available, false),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        let kept = chunk.len().min(room);
        line.extend_from_slice(&chunk[..kept]);
        // The newline ending a cut line is not counted as dropped text.
        let newline_cut = usize::from(done && kept < chunk.len());
        dropped = dropped.saturating_add(chunk.len() - kept - newline_cut);
        let used = chunk.len();
        reader.consume(used);
        if done {
            return Ok(Some(dropped));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_at_the_limit_and_the_rest_counted() {
        let mut input = vec![b'a'; MAX_LINE + 100];
        input.extend_from_slice(b"\nshort\nlast");
        let mut reader = BufReader::with_capacity(1000, &input[..]);
        let mut line = Vec::new();
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), Some(100));
        assert_eq!(line.len(), MAX_LINE);
        line.clear();
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), Some(0));
        assert_eq!(line, b"short\n");
        line.clear();
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), Some(0));
        assert_eq!(line, b"last");
        line.clear();
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), None);
    }
}
