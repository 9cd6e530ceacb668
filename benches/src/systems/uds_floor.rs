//! `uds-floor`: Unix-socket ping-pong between two processes, the cheapest way a frame can
//! go to another process and back. One `write` and one `read` per side and direction; the
//! frame size is agreed at spawn, so there is no header.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};

use super::SystemError;
use super::floor::{CRASH, Link};
use super::spawn::{CONNECT_DEADLINE, CRASH_EXIT, accept_within, reap, spawn_child};

/// The system's name in rows (and the child's role).
pub(crate) const SYSTEM: &str = "uds-floor";

/// A connected `uds-floor` child.
pub(crate) struct UdsLink {
    stream: UnixStream,
    buf: Vec<u8>,
    child: Child,
}

/// A fresh socket path in the temporary directory.
fn socket_path() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("troupe-bench-{}-{n}.sock", std::process::id()))
}

impl Link for UdsLink {
    const SYSTEM: &'static str = SYSTEM;

    fn spawn(frame: usize) -> Result<Self, SystemError> {
        let path = socket_path();
        let listener = UnixListener::bind(&path).map_err(SystemError::io("binding a socket"))?;
        let addr = path.to_string_lossy().into_owned();
        let accepted = spawn_child(SYSTEM, &addr, frame).and_then(|mut child| {
            let unblock = path.clone();
            let stream = accept_within(
                &mut child,
                CONNECT_DEADLINE,
                move || listener.accept().map(|(stream, _)| stream),
                move || drop(UnixStream::connect(unblock)),
            )?;
            Ok((stream, child))
        });
        let _ = std::fs::remove_file(&path);
        let (stream, child) = accepted?;
        Ok(UdsLink {
            stream,
            buf: vec![0; frame],
            child,
        })
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), SystemError> {
        self.stream
            .write_all(frame)
            .map_err(SystemError::io("writing to the child"))
    }

    fn recv(&mut self) -> Result<(), SystemError> {
        self.stream
            .read_exact(&mut self.buf)
            .map_err(SystemError::io("reading from the child"))
    }
}

impl Drop for UdsLink {
    fn drop(&mut self) {
        reap(&mut self.child);
    }
}

/// The child: connects to `addr` and echoes `frame`-byte frames until the socket closes.
pub(crate) fn child_main(addr: &str, frame: usize) -> io::Result<()> {
    let mut stream = UnixStream::connect(addr)?;
    let mut buf = vec![0; frame.max(1)];
    loop {
        match stream.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        if buf[0] == CRASH {
            std::process::exit(CRASH_EXIT);
        }
        stream.write_all(&buf)?;
    }
}
