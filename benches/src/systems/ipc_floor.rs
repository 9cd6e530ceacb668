//! `ipc-floor`: raw ipc-channel ping-pong with a Rust child, the transport troupe's bridge
//! is built on, with nothing on top: `bytes_channel` both ways, set up through an
//! `IpcOneShotServer` whose `accept` runs on a thread with a deadline.

use std::io;
use std::process::Child;

use ipc_channel::IpcError;
use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcSender};
use serde::{Deserialize, Serialize};

use super::SystemError;
use super::floor::{CRASH, Link};
use super::spawn::{CONNECT_DEADLINE, CRASH_EXIT, accept_within, reap, spawn_child};

/// The system's name in rows (and the child's role).
pub(crate) const SYSTEM: &str = "ipc-floor";

/// The child's only message on the bootstrap channel: both directions.
#[derive(Serialize, Deserialize)]
struct Hello {
    /// Host to child.
    to_child: IpcBytesSender,
    /// Child to host.
    from_child: IpcBytesReceiver,
}

impl Hello {
    /// Both channels, with the child's ends kept apart: `(hello, to_child rx, from_child tx)`.
    fn channels() -> io::Result<(Hello, IpcBytesReceiver, IpcBytesSender)> {
        let (to_child, child_rx) = ipc::bytes_channel()?;
        let (child_tx, from_child) = ipc::bytes_channel()?;
        let hello = Hello {
            to_child,
            from_child,
        };
        Ok((hello, child_rx, child_tx))
    }
}

fn ipc_io(error: IpcError) -> io::Error {
    match error {
        IpcError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// A connected `ipc-floor` child.
pub(crate) struct IpcLink {
    tx: IpcBytesSender,
    rx: IpcBytesReceiver,
    child: Child,
}

impl Link for IpcLink {
    const SYSTEM: &'static str = SYSTEM;

    fn spawn(frame: usize) -> Result<Self, SystemError> {
        let (server, name) =
            IpcOneShotServer::<Hello>::new().map_err(SystemError::io("creating the server"))?;
        let mut child = spawn_child(SYSTEM, &name, frame)?;
        let hello = accept_within(
            &mut child,
            CONNECT_DEADLINE,
            move || server.accept().map(|(_, hello)| hello).map_err(ipc_io),
            move || {
                // Connect and say hello ourselves, so that the accept returns.
                if let (Ok(sender), Ok((hello, _, _))) =
                    (IpcSender::<Hello>::connect(name), Hello::channels())
                {
                    let _ = sender.send(hello);
                }
            },
        )?;
        Ok(IpcLink {
            tx: hello.to_child,
            rx: hello.from_child,
            child,
        })
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), SystemError> {
        self.tx
            .send(frame)
            .map_err(SystemError::io("sending to the child"))
    }

    fn recv(&mut self) -> Result<(), SystemError> {
        self.rx.recv().map(drop).map_err(|e| SystemError::Io {
            context: "receiving from the child",
            source: ipc_io(e),
        })
    }
}

impl Drop for IpcLink {
    fn drop(&mut self) {
        reap(&mut self.child);
    }
}

/// The child: says hello to the server `name`, then echoes messages until the host's
/// sender is gone.
pub(crate) fn child_main(name: &str) -> io::Result<()> {
    let (hello, rx, tx) = Hello::channels()?;
    IpcSender::<Hello>::connect(name.to_owned())?
        .send(hello)
        .map_err(ipc_io)?;
    loop {
        let message = match rx.recv() {
            Ok(message) => message,
            Err(IpcError::Disconnected) => return Ok(()),
            Err(other) => return Err(ipc_io(other)),
        };
        if message.first() == Some(&CRASH) {
            std::process::exit(CRASH_EXIT);
        }
        tx.send(&message)?;
    }
}
