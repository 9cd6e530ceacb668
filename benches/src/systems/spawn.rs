//! Floor children: the harness re-executes its own binary with [`CHILD_ENV`] set, and the
//! entry point hands control to [`child_main_if_requested`] before anything else.
//!
//! Connecting has no timeout in either transport (`accept` blocks forever when the child
//! dies first), so [`accept_within`] accepts on a thread, watches the child and a
//! deadline, and unblocks the thread when either gives up.

use std::ffi::OsString;
use std::io;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{SystemError, ipc_floor, uds_floor};

/// Names the child role (`uds-floor`, `ipc-floor`) of a re-executed harness binary.
pub(crate) const CHILD_ENV: &str = "TROUPE_BENCH_CHILD";
/// Where the child connects: a socket path or an ipc-channel server name.
const ADDR_ENV: &str = "TROUPE_BENCH_ADDR";
/// The size of the frames the child echoes.
const FRAME_ENV: &str = "TROUPE_BENCH_FRAME";

/// How long a floor child may take to connect.
pub(crate) const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// The exit code of a child asked to crash.
pub(crate) const CRASH_EXIT: i32 = 3;

/// If this process is a floor child spawned by the harness, runs it and exits; otherwise
/// returns at once. Call it first thing in every entry point that can run the harness.
pub(crate) fn child_main_if_requested() {
    let Some(role) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let addr = std::env::var(ADDR_ENV).unwrap_or_default();
    let frame = std::env::var(FRAME_ENV)
        .ok()
        .and_then(|f| f.parse::<usize>().ok())
        .unwrap_or(64);
    let result = match role.to_str() {
        Some(uds_floor::SYSTEM) => uds_floor::child_main(&addr, frame),
        Some(ipc_floor::SYSTEM) => ipc_floor::child_main(&addr),
        _ => Err(io::Error::other(format!("unknown child role {role:?}"))),
    };
    match result {
        Ok(()) => std::process::exit(0),
        Err(error) => {
            eprintln!("troupe-bench child {role:?}: {error}");
            std::process::exit(1)
        }
    }
}

/// Starts this executable again as the `role` child, connecting to `addr`. The parent's
/// arguments are passed on, so an entry point that parses them before calling
/// [`crate::run`] still reaches the child check there.
pub(crate) fn spawn_child(role: &str, addr: &str, frame: usize) -> Result<Child, SystemError> {
    let exe = std::env::current_exe().map_err(|source| SystemError::Spawn {
        what: "the current executable".to_owned(),
        source,
    })?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    Command::new(&exe)
        .args(args)
        .env(CHILD_ENV, role)
        .env(ADDR_ENV, addr)
        .env(FRAME_ENV, frame.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| SystemError::Spawn {
            what: exe.display().to_string(),
            source,
        })
}

/// Runs `accept` on a thread and returns what it accepted, unless `child` exits or
/// `deadline` passes first: then the child is killed and reaped, `unblock` releases the
/// blocked thread, and the error says which happened.
pub(crate) fn accept_within<T: Send + 'static>(
    child: &mut Child,
    deadline: Duration,
    accept: impl FnOnce() -> io::Result<T> + Send + 'static,
    unblock: impl FnOnce(),
) -> Result<T, SystemError> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(accept());
    });
    let give_up = Instant::now() + deadline;
    let failure = loop {
        match rx.recv_timeout(Duration::from_millis(2)) {
            Ok(accepted) => return accepted.map_err(SystemError::io("accepting the child")),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break SystemError::Io {
                    context: "accepting the child",
                    source: io::Error::other("the accept thread ended without an answer"),
                };
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        match child.try_wait() {
            Ok(Some(status)) => break SystemError::ChildExited { status },
            Ok(None) if Instant::now() >= give_up => break SystemError::Deadline(deadline),
            Ok(None) => {}
            Err(source) => {
                break SystemError::Io {
                    context: "watching the child",
                    source,
                };
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    unblock();
    Err(failure)
}

/// Kills and reaps a floor child (it may be gone already).
pub(crate) fn reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::{UnixListener, UnixStream};

    use super::*;

    fn sh(script: &str) -> Child {
        Command::new("sh")
            .args(["-c", script])
            .spawn()
            .expect("sh runs")
    }

    fn listener() -> (UnixListener, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "troupe-bench-test-{}-{:?}.sock",
            std::process::id(),
            thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        (UnixListener::bind(&path).expect("binds"), path)
    }

    fn accept(
        child: &mut Child,
        deadline: Duration,
    ) -> (Result<UnixStream, SystemError>, Duration) {
        let (listener, path) = listener();
        let unblock = path.clone();
        let started = Instant::now();
        let result = accept_within(
            child,
            deadline,
            move || listener.accept().map(|(s, _)| s),
            move || drop(UnixStream::connect(unblock)),
        );
        let _ = std::fs::remove_file(&path);
        (result, started.elapsed())
    }

    #[test]
    fn a_child_that_dies_before_connecting_is_reported_at_once() {
        let mut child = sh("exit 7");
        let (result, took) = accept(&mut child, Duration::from_secs(30));
        match result {
            Err(SystemError::ChildExited { status }) => assert_eq!(status.code(), Some(7)),
            other => panic!("expected ChildExited, got {other:?}"),
        }
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }

    #[test]
    fn a_child_that_never_connects_is_killed_at_the_deadline() {
        let mut child = sh("sleep 30");
        let (result, took) = accept(&mut child, Duration::from_millis(200));
        assert!(
            matches!(result, Err(SystemError::Deadline(_))),
            "{result:?}"
        );
        assert!(took < Duration::from_secs(5), "took {took:?}");
        assert!(
            child.try_wait().expect("waits").is_some(),
            "killed and reaped"
        );
    }
}
