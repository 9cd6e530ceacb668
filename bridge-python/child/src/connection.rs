//! The child's end of the ipc-channel link: bootstrap, sending from any thread, receiving.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender, IpcSender};
use ipc_channel::{IpcError, TryRecvError};
use troupe_wire::protocol::{
    DOORBELL_ENV, Doorbell, Outbox, PROTOCOL_VERSION, SERVER_ENV, SHM_THRESHOLD, ToChild, ToHost,
};

use crate::errors::ConnectionError;

/// What the bootstrap sends the host: the receiver of the child's frames and the sender of
/// the host's.
type Bootstrap = (IpcBytesReceiver, IpcBytesSender);

/// Longest sleep between two polls while receiving with a timeout.
const MAX_POLL_SLEEP: Duration = Duration::from_millis(1);

static CONNECTION: OnceLock<Connection> = OnceLock::new();

/// The one connection of this process to its host.
pub(crate) struct Connection {
    sender: Mutex<IpcBytesSender>,
    receiver: Mutex<IpcBytesReceiver>,
    outbox: Outbox,
    /// The host's doorbell, when it gave one (a host that does not is polled on the channel).
    doorbell: Option<Doorbell>,
    next_call: AtomicU64,
    /// The extension's public methods, once `started` said them.
    methods: RwLock<Option<HashSet<String>>>,
}

/// What one receive brought.
pub(crate) enum Incoming {
    /// A frame for the Python side (never `Release`, which is handled here).
    Frame(ToChild),
    /// The host's end is gone: the child should exit.
    Closed,
    /// Nothing arrived within the timeout.
    TimedOut,
}

/// The connection, once [`Connection::connect`] made it.
pub(crate) fn connection() -> Result<&'static Connection, ConnectionError> {
    CONNECTION.get().ok_or(ConnectionError::NotConnected)
}

impl Connection {
    /// Connects to the host named by [`SERVER_ENV`] and says hello.
    pub(crate) fn connect(python_version: String) -> Result<&'static Connection, ConnectionError> {
        if CONNECTION.get().is_some() {
            return Err(ConnectionError::AlreadyConnected);
        }
        let name = std::env::var(SERVER_ENV).map_err(|_| ConnectionError::NoServerName)?;
        let bootstrap_err = |e: &dyn std::fmt::Display| ConnectionError::Bootstrap(e.to_string());
        let (to_host_tx, to_host_rx) = ipc::bytes_channel().map_err(|e| bootstrap_err(&e))?;
        let (to_child_tx, to_child_rx) = ipc::bytes_channel().map_err(|e| bootstrap_err(&e))?;
        let server = IpcSender::<Bootstrap>::connect(name).map_err(|e| bootstrap_err(&e))?;
        server
            .send((to_host_rx, to_child_tx))
            .map_err(|e| bootstrap_err(&e))?;
        let doorbell = match std::env::var(DOORBELL_ENV) {
            Ok(name) => match Doorbell::open(&name) {
                Ok(doorbell) => Some(doorbell),
                Err(e) => {
                    eprintln!("troupe: polling the channel, the host's doorbell is unusable: {e}");
                    None
                }
            },
            Err(_) => None,
        };
        let made = Connection {
            sender: Mutex::new(to_host_tx),
            receiver: Mutex::new(to_child_rx),
            outbox: Outbox::new(SHM_THRESHOLD).with_devices(crate::cuda::devices()),
            doorbell,
            next_call: AtomicU64::new(1),
            methods: RwLock::new(None),
        };
        CONNECTION
            .set(made)
            .map_err(|_| ConnectionError::AlreadyConnected)?;
        let connection = connection()?;
        let releases = connection.outbox.releases().clone();
        std::thread::Builder::new()
            .name("troupe-release".into())
            .spawn(move || {
                while let Some(slots) = releases.wait() {
                    if connection.send(ToHost::ReleaseSlots { slots }).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| bootstrap_err(&e))?;
        connection.send(ToHost::Hello {
            protocol: PROTOCOL_VERSION,
            pid: std::process::id(),
            python: python_version,
        })?;
        Ok(connection)
    }

    /// Seals and sends `frame`; any thread may call this.
    pub(crate) fn send(&self, frame: ToHost) -> Result<(), ConnectionError> {
        let bytes = self.outbox.seal(frame)?;
        lock(&self.sender)
            .send(&bytes)
            .map_err(ConnectionError::Send)?;
        if let Some(doorbell) = &self.doorbell {
            doorbell.ring();
        }
        Ok(())
    }

    /// A fresh id for a call this child makes.
    pub(crate) fn next_call_id(&self) -> u64 {
        self.next_call.fetch_add(1, Ordering::Relaxed)
    }

    /// Records the methods the host may call (`Started`).
    pub(crate) fn set_methods(&self, methods: impl IntoIterator<Item = String>) {
        *self.methods.write().unwrap_or_else(|p| p.into_inner()) =
            Some(methods.into_iter().collect());
    }

    /// `Some(true)` for a method the extension offers, `None` before start-up finished.
    pub(crate) fn has_method(&self, name: &str) -> Option<bool> {
        let methods = self.methods.read().unwrap_or_else(|p| p.into_inner());
        methods.as_ref().map(|m| m.contains(name))
    }

    /// How many of this child's envelopes still wait for the host's `Release`.
    pub(crate) fn held(&self) -> usize {
        self.outbox.held()
    }

    /// How many slots of this child's pool the host holds.
    pub(crate) fn lent(&self) -> usize {
        self.outbox.lent()
    }

    /// How many releases of the host's slots wait to be sent.
    pub(crate) fn owed(&self) -> usize {
        self.outbox.releases().pending()
    }

    /// Waits for the next frame for the Python side (at most `timeout` when given). Answers
    /// `Release` for every envelope that holds buffers, handles the host's `Release` frames,
    /// and skips (with a line on stderr) frames that do not decode.
    pub(crate) fn next_frame(&self, timeout: Option<Duration>) -> Incoming {
        let deadline = timeout.map(|t| Instant::now() + t);
        let receiver = lock(&self.receiver);
        loop {
            let bytes = match receive(&receiver, self.doorbell.as_ref(), deadline) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => return Incoming::TimedOut,
                Err(IpcError::Disconnected) => return Incoming::Closed,
                Err(e) => {
                    eprintln!("troupe: the channel from the host failed: {e}");
                    return Incoming::Closed;
                }
            };
            let envelope = match self.outbox.open::<ToChild>(&bytes) {
                Ok(envelope) => envelope,
                Err(e) => {
                    eprintln!("troupe: ignoring a frame from the host that does not decode: {e}");
                    // Still let the host free what it holds for it.
                    if let Ok((Some(hold), _)) = postcard::take_from_bytes::<Option<u64>>(&bytes)
                        && self.send(ToHost::Release { hold }).is_err()
                    {
                        return Incoming::Closed;
                    }
                    continue;
                }
            };
            if let Some(hold) = envelope.hold
                && self.send(ToHost::Release { hold }).is_err()
            {
                return Incoming::Closed;
            }
            match envelope.body {
                ToChild::Release { hold } => {
                    self.outbox.release(hold);
                }
                ToChild::ReleaseSlots { slots } => {
                    self.outbox.release_slots(&slots);
                }
                frame => return Incoming::Frame(frame),
            }
        }
    }
}

/// One message; `None` when `deadline` passed first. Every message taken is counted on the
/// doorbell.
///
/// Without a deadline it polls briefly (the doorbell when there is one, else the channel),
/// then blocks in the kernel. With one it polls the channel, backing off to
/// [`MAX_POLL_SLEEP`]: that form only serves waits for async lifecycle hooks, where a
/// millisecond does not matter.
fn receive(
    receiver: &IpcBytesReceiver,
    doorbell: Option<&Doorbell>,
    deadline: Option<Instant>,
) -> Result<Option<Vec<u8>>, IpcError> {
    match (deadline, doorbell) {
        (None, Some(doorbell)) => doorbell.receive(|| receiver.recv().map(Some)),
        (None, None) => troupe_wire::protocol::poll_then_block(
            || match receiver.try_recv() {
                Ok(bytes) => Some(Ok(Some(bytes))),
                Err(TryRecvError::IpcError(e)) => Some(Err(e)),
                Err(TryRecvError::Empty) => None,
            },
            || receiver.recv().map(Some),
        ),
        (Some(deadline), doorbell) => {
            let got = receive_until(receiver, deadline);
            if let (Ok(Some(_)), Some(doorbell)) = (&got, doorbell) {
                doorbell.took();
            }
            got
        }
    }
}

fn receive_until(
    receiver: &IpcBytesReceiver,
    deadline: Instant,
) -> Result<Option<Vec<u8>>, IpcError> {
    let mut pause = Duration::from_micros(20);
    loop {
        match receiver.try_recv() {
            Ok(bytes) => return Ok(Some(bytes)),
            Err(TryRecvError::IpcError(e)) => return Err(e),
            Err(TryRecvError::Empty) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_POLL_SLEEP);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
