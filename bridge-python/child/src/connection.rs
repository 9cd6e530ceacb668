//! The child's end of the connection: taking over the inherited descriptors, sending from
//! any thread without ever waiting, receiving.

use std::collections::HashSet;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use troupe_protocol::transport::{
    Doorbell, Incoming as Receiving, Outgoing, OutgoingLimits, ReadError, Socket, Wake,
};
use troupe_protocol::{
    ChildFds, FDS_ENV, Ledger, MAX_FRAME, PROTOCOL_VERSION, SHM_THRESHOLD, ToChild, ToHost,
};

use crate::errors::ConnectionError;

static CONNECTION: OnceLock<Connection> = OnceLock::new();

/// The one connection of this process to its host.
pub(crate) struct Connection {
    socket: Arc<Socket>,
    outgoing: Arc<Outgoing>,
    receiving: Mutex<Receiving>,
    ledger: Ledger,
    doorbell: Arc<Doorbell>,
    next_call: AtomicU64,
    /// The extension's public methods, once `started` said them.
    methods: RwLock<Option<HashSet<String>>>,
}

/// What one receive brought.
pub(crate) enum Incoming {
    /// A frame for the Python side (never `ReleaseSlots`, which is handled here).
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
    /// Takes over the descriptors the host passed (named by [`FDS_ENV`]) and says hello.
    pub(crate) fn connect(python_version: String) -> Result<&'static Connection, ConnectionError> {
        if CONNECTION.get().is_some() {
            return Err(ConnectionError::AlreadyConnected);
        }
        let fds = std::env::var(FDS_ENV)
            .ok()
            .and_then(|value| ChildFds::from_env(&value))
            .ok_or(ConnectionError::NoConnection)?;
        // SAFETY: the host spawned this process with these descriptors open at these numbers
        // (see `ChildFds`), for this module to own; `CONNECTION` being unset means nothing
        // here owns them yet, and they are taken once.
        let (socket, page, wake) = unsafe {
            (
                OwnedFd::from_raw_fd(fds.socket),
                OwnedFd::from_raw_fd(fds.doorbell),
                OwnedFd::from_raw_fd(fds.wake),
            )
        };
        let socket = Arc::new(Socket::from_fd(socket).map_err(ConnectionError::Bootstrap)?);
        let wake = Wake::from_fd(wake).map_err(ConnectionError::Bootstrap)?;
        let doorbell =
            Arc::new(Doorbell::adopt(page, Some(wake)).map_err(ConnectionError::Bootstrap)?);
        // The host bounds what it sends, and the child's own memory is its own business:
        // nothing the child owes is refused here.
        let outgoing = Arc::new(Outgoing::new(
            socket.clone(),
            OutgoingLimits {
                max_frame: MAX_FRAME,
                max_queued_bytes: usize::MAX,
            },
            Some(doorbell.clone()),
        ));
        let ledger = Ledger::new(SHM_THRESHOLD);
        #[cfg(feature = "cuda")]
        let ledger = ledger.with_devices(troupe_pyvalue::cuda::devices());
        let made = Connection {
            receiving: Mutex::new(Receiving::new(
                socket.clone(),
                MAX_FRAME,
                Some(doorbell.clone()),
            )),
            socket,
            outgoing: outgoing.clone(),
            ledger,
            doorbell,
            next_call: AtomicU64::new(1),
            methods: RwLock::new(None),
        };
        CONNECTION
            .set(made)
            .map_err(|_| ConnectionError::AlreadyConnected)?;
        let connection = connection()?;
        let thread = |name: &str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(run)
                .map(drop)
                .map_err(ConnectionError::Bootstrap)
        };
        thread(
            "troupe-flush",
            Box::new(move || outgoing.flush_when_writable()),
        )?;
        let releases = connection.ledger.releases().clone();
        thread(
            "troupe-release",
            Box::new(move || {
                while let Some(slots) = releases.wait() {
                    if connection.send(ToHost::ReleaseSlots { slots }).is_err() {
                        break;
                    }
                }
            }),
        )?;
        connection.send(ToHost::Hello {
            protocol: PROTOCOL_VERSION,
            pid: std::process::id(),
            python: python_version,
        })?;
        Ok(connection)
    }

    /// Seals and sends `frame`; any thread may call this, and it never waits.
    pub(crate) fn send(&self, frame: ToHost) -> Result<(), ConnectionError> {
        let sealed = self.ledger.seal(frame)?;
        let fds = sealed.fds();
        // The rest of `sealed` (the device arrays it names) drops after the frame is queued,
        // so the release thread cannot send an import's release before the echo naming it.
        self.outgoing.send_with(sealed.bytes, fds)?;
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

    /// How many slots of this child's pool the host holds.
    pub(crate) fn lent(&self) -> usize {
        self.ledger.lent()
    }

    /// How many releases of the host's slots wait to be sent.
    pub(crate) fn owed(&self) -> usize {
        self.ledger.releases().pending()
    }

    /// Frames and bytes waiting for the host to make room.
    pub(crate) fn queued(&self) -> (usize, usize) {
        let queued = self.outgoing.queued();
        (queued.frames, queued.bytes)
    }

    /// Waits for the next frame for the Python side (at most `timeout` when given). Handles
    /// the host's `ReleaseSlots` frames, and skips (with a line on stderr) frames that do not
    /// decode. Polls the doorbell for a
    /// moment, then sleeps on the socket.
    pub(crate) fn next_frame(&self, timeout: Option<Duration>) -> Incoming {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut receiving = lock(&self.receiving);
        loop {
            let frame = match receiving.try_next() {
                Ok(Some(frame)) => frame,
                Ok(None) => match self.wait(deadline) {
                    Waited::Maybe => continue,
                    Waited::TimedOut => return Incoming::TimedOut,
                    Waited::Failed => return Incoming::Closed,
                },
                Err(ReadError::Closed) => return Incoming::Closed,
                Err(e) => {
                    eprintln!("troupe: the connection from the host failed: {e}");
                    return Incoming::Closed;
                }
            };
            let envelope = match self.ledger.open::<ToChild>(&frame.bytes, frame.fds) {
                Ok(envelope) => envelope,
                Err(e) => {
                    eprintln!("troupe: ignoring a frame from the host that does not decode: {e}");
                    continue;
                }
            };
            match envelope.body {
                ToChild::ReleaseSlots { slots } => {
                    self.ledger.release_slots(&slots);
                }
                frame => return Incoming::Frame(frame),
            }
        }
    }

    /// Waits until something may have arrived: polls the doorbell for a moment, then sleeps
    /// on the socket.
    fn wait(&self, deadline: Option<Instant>) -> Waited {
        if self.doorbell.wait_unless(|| false) {
            return Waited::Maybe;
        }
        let remaining = match deadline {
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return Waited::TimedOut;
                }
                Some(deadline - now)
            }
            None => None,
        };
        match self.socket.wait(true, &[], remaining) {
            Ok(_) => Waited::Maybe,
            Err(e) => {
                eprintln!("troupe: cannot wait on the connection from the host: {e}");
                Waited::Failed
            }
        }
    }
}

/// What [`Connection::wait`] found.
enum Waited {
    /// Something may have arrived.
    Maybe,
    /// The deadline passed.
    TimedOut,
    /// The connection cannot be waited on.
    Failed,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
