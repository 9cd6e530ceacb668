//! A child's stdout and stderr, forwarded line by line to `tracing` and remembered.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};
use std::thread;

/// Lines of stderr kept for crash reports.
const TAIL_LINES: usize = 40;

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
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&raw);
                let line = line.trim_end_matches(['\n', '\r']);
                match stream {
                    Stream::Stdout => {
                        tracing::info!(target: "troupe::extension", extension = %extension, pid, stream = "stdout", "{line}")
                    }
                    Stream::Stderr => {
                        tracing::info!(target: "troupe::extension", extension = %extension, pid, stream = "stderr", "{line}")
                    }
                }
                if let Some(tail) = &tail {
                    tail.push(line.to_owned());
                }
            }
        })
}
