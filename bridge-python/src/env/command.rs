//! Runs an installer step with its output streamed, line by line, to the progress callback
//! and to tracing, keeping the last lines for the error message.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};

use tracing::debug;

use super::error::EnvError;
use super::progress::EnvProgress;

/// Lines kept for an error message: enough for a resolver's explanation.
const TAIL_LINES: usize = 40;

/// How a step ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    /// The last lines of stdout and stderr, interleaved as printed.
    pub(crate) tail: String,
}

/// Runs `command` to its end. stdout and stderr share one pipe, so lines arrive in the
/// order they were printed and no second reader thread is needed.
pub(crate) fn run_streaming(
    mut command: Command,
    progress: &dyn Fn(EnvProgress),
) -> Result<Finished, EnvError> {
    let program = PathBuf::from(command.get_program());
    let (reader, writer) = io::pipe().map_err(EnvError::io(&program))?;
    let writer_too = writer.try_clone().map_err(EnvError::io(&program))?;
    command
        .stdin(Stdio::null())
        .stdout(writer_too)
        .stderr(writer);
    debug!(?command, "running installer step");
    let mut child = command.spawn().map_err(EnvError::io(&program))?;
    // The command holds our copies of the pipe's write end: without dropping it, the
    // reader never sees the end of the output.
    drop(command);

    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                if line.is_empty() {
                    continue;
                }
                debug!(target: "troupe::env::installer", "{line}");
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.clone());
                progress(EnvProgress::Line(line));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(EnvError::io(&program)(e));
            }
        }
    }
    let status = child.wait().map_err(EnvError::io(&program))?;
    Ok(Finished {
        status,
        tail: Vec::from(tail).join("\n"),
    })
}
