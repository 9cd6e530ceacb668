//! The frames a host and a bridged child process exchange.
//!
//! Each frame is one postcard message wrapped in an [`Envelope`], carried by the
//! [`transport`] (a unix socket pair the child inherits, see [`ChildFds`]). The child speaks first ([`ToHost::Hello`]); the host answers with
//! [`ToChild::Start`]; the child loads the extension, runs its lifecycle hooks and says
//! [`ToHost::Started`] (or [`ToHost::StartFailed`]). From then on both sides call each other
//! at any time: calls are matched to replies by id, each side numbering its own calls, so
//! host -> child -> host -> child nesting needs no extra bookkeeping.
//!
//! Buffers of [`SHM_THRESHOLD`] bytes or more never travel as bytes: [`Outbox::seal`] moves
//! them into the process's shared-memory [`pool`](crate::pool) and keeps each slot until the
//! peer has dropped every buffer it decoded from it ([`ToChild::ReleaseSlots`] /
//! [`ToHost::ReleaseSlots`]); a slice of a plain region is held until the peer answers
//! [`ToChild::Release`] / [`ToHost::Release`] for the envelope's `hold` number (see
//! `docs/semantics.md`, *Buffers*).
//!
//! CUDA arrays travel as IPC descriptors when the outbox has a
//! [`DevicePlane`](crate::device::DevicePlane): each descriptor is one hold on the sender's
//! export, answered by its id in [`Envelope::exports_released`] of a later frame (see
//! `docs/semantics.md`, *CUDA arrays*).

mod devices;
mod outbox;
mod releases;
pub mod transport;

use serde::{Deserialize, Serialize};
use troupe_shm::pool::SlotKey;

use crate::{CallError, Map, RemoteException, Value};

pub use outbox::{FrameError, Outbox, Receipt};
pub use releases::{LINGER, MAX_BATCH, Releases};

/// Version of this protocol; host and child refuse to talk across versions.
pub const PROTOCOL_VERSION: u32 = 5;

/// Buffers this large (bytes) or larger cross the process boundary through shared memory.
pub const SHM_THRESHOLD: usize = 64 * 1024;

/// Environment variable telling a child the descriptors it inherited, as
/// `"<socket>,<doorbell>,<wake>"` (see [`ChildFds`]).
pub const FDS_ENV: &str = "TROUPE_FDS";

/// Where a child finds the descriptors of its connection: the host puts them at these
/// numbers when it spawns the child, and names them in [`FDS_ENV`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildFds {
    /// The child's end of the socket pair.
    pub socket: i32,
    /// The doorbell page ([`transport::Doorbell::adopt`]).
    pub doorbell: i32,
    /// The eventfd that wakes the host's reader ([`transport::Wake`]).
    pub wake: i32,
}

impl ChildFds {
    /// The numbers the host uses.
    pub const STANDARD: ChildFds = ChildFds {
        socket: 3,
        doorbell: 4,
        wake: 5,
    };

    /// The value of [`FDS_ENV`] for these numbers.
    pub fn to_env(self) -> String {
        format!("{},{},{}", self.socket, self.doorbell, self.wake)
    }

    /// Parses the value of [`FDS_ENV`]; `None` when it is not three descriptor numbers.
    pub fn from_env(value: &str) -> Option<ChildFds> {
        let mut numbers = value.split(',').map(|n| n.trim().parse::<i32>().ok());
        let fds = ChildFds {
            socket: numbers.next()??,
            doorbell: numbers.next()??,
            wake: numbers.next()??,
        };
        let valid = numbers.next().is_none()
            && [fds.socket, fds.doorbell, fds.wake]
                .iter()
                .all(|fd| *fd > 2);
        valid.then_some(fds)
    }
}

/// The largest frame either side accepts: larger values cross as shared memory.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Environment variable setting how long (microseconds) a receiving thread polls after each
/// message before it sleeps in the kernel; `0` turns polling off. Default: [`DEFAULT_SPIN`].
pub const SPIN_ENV: &str = "TROUPE_SPIN_US";

/// How long a receiver polls before it sleeps, unless [`SPIN_ENV`] says otherwise.
///
/// Waking a sleeping thread costs 20-70 us on small virtual machines when the scheduler
/// puts it on an idle core: several times a whole round trip. A receiver that polls briefly
/// after each message (yielding its core between polls) is still awake when the next
/// message of a burst comes, which takes most wake-ups out of back-to-back calls; when the
/// messages stop it sleeps after this long.
pub const DEFAULT_SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// Polls `try_once` (yielding the core between polls) for up to [`spin`], then calls
/// `block`: how both ends of a connection wait for their next message. `try_once` gives
/// `None` while there is nothing yet.
pub fn poll_then_block<T>(mut try_once: impl FnMut() -> Option<T>, block: impl FnOnce() -> T) -> T {
    let until = std::time::Instant::now() + spin();
    loop {
        if let Some(got) = try_once() {
            return got;
        }
        if std::time::Instant::now() >= until {
            return block();
        }
        std::thread::yield_now();
    }
}

/// The polling time of this process: [`SPIN_ENV`] if set to a number, else [`DEFAULT_SPIN`].
pub fn spin() -> std::time::Duration {
    static SPIN: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();
    *SPIN.get_or_init(|| {
        std::env::var(SPIN_ENV)
            .ok()
            .and_then(|us| us.trim().parse().ok())
            .map_or(DEFAULT_SPIN, std::time::Duration::from_micros)
    })
}

/// What every frame travels in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Set when the sender holds shared-memory buffers for this frame: the receiver answers
    /// `Release { hold }` once it has decoded the frame (and so mapped every region).
    pub hold: Option<u64>,
    /// The frame.
    pub body: T,
    /// Slots of the receiver's pool the sender no longer holds: releases that ride on any
    /// frame going that way anyway, so steady traffic needs no `ReleaseSlots` frames.
    pub released: Vec<SlotKey>,
    /// Exports of the receiver's device arrays the sender no longer uses: one id per
    /// descriptor it decoded, once its import ended (or failed).
    pub exports_released: Vec<crate::device::ExportId>,
}

/// A call of `method` with arguments, numbered by the side that makes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallFrame {
    /// Call id, unique among the sender's calls in flight.
    pub id: u64,
    /// Method name.
    pub method: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Map,
}

/// What the child should load, sent once after [`ToHost::Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartInfo {
    /// The extension's name (shown in logs and errors).
    pub name: String,
    /// Python module to import, e.g. `"my_plugin"` or `"pkg.plugin"`.
    pub module: String,
    /// Name of the `troupe.Extension` subclass in `module`; `None`: the only one there.
    pub class: Option<String>,
    /// Directories to put in front of `sys.path` before importing.
    pub sys_path: Vec<String>,
    /// Whether the child may call the host (`troupe.host`).
    pub host_calls: bool,
}

/// Whom a child's call is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    /// The host program (`troupe.host.method(...)`).
    Host,
    /// A singleton registered by name (`troupe.singleton("kv").get(...)`).
    Singleton(String),
    /// Another extension by name (`troupe.extension("other").method(...)`).
    Extension(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Host => f.write_str("host"),
            Target::Singleton(name) => write!(f, "singleton:{name}"),
            Target::Extension(name) => write!(f, "extension:{name}"),
        }
    }
}

/// Frames from the host to the child.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToChild {
    /// Load the extension and run its start-up hooks.
    Start(StartInfo),
    /// Call a method of the extension.
    Call(CallFrame),
    /// Cancel the host's call `id` (a coroutine is cancelled; a sync method runs to its end).
    Cancel {
        /// The host's call id.
        id: u64,
    },
    /// The answer to the child's call `id`.
    Reply {
        /// The child's call id.
        id: u64,
        /// The value or why there is none.
        result: Result<Value, CallError>,
    },
    /// The host has decoded the child's envelope `hold`; the child may free its buffers.
    Release {
        /// The envelope's hold number.
        hold: u64,
    },
    /// Run `prepare_shutdown` and exit.
    Shutdown,
    /// The host dropped its last buffer of each of these slots of the child's pool (one
    /// key per descriptor the host decoded; a key may repeat).
    ReleaseSlots {
        /// The slots.
        slots: Vec<SlotKey>,
    },
}

/// Frames from the child to the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToHost {
    /// The child's first frame.
    Hello {
        /// [`PROTOCOL_VERSION`] of the child.
        protocol: u32,
        /// The child's process id.
        pid: u32,
        /// `sys.version` of the child's interpreter.
        python: String,
    },
    /// The extension is loaded and initialized: calls may come.
    Started {
        /// Public methods the extension offers.
        methods: Vec<String>,
    },
    /// Loading or a start-up hook failed; the child exits after sending this.
    StartFailed(RemoteException),
    /// The answer to the host's call `id`.
    Reply {
        /// The host's call id.
        id: u64,
        /// The value or why there is none.
        result: Result<Value, CallError>,
    },
    /// A call from the child to `target`.
    Call {
        /// Whom the call is for.
        target: Target,
        /// The call (numbered by the child).
        call: CallFrame,
    },
    /// The child gave up waiting for its call `id` (its coroutine was cancelled).
    Cancel {
        /// The child's call id.
        id: u64,
    },
    /// The child has decoded the host's envelope `hold`.
    Release {
        /// The envelope's hold number.
        hold: u64,
    },
    /// `prepare_shutdown` ran; the child exits now.
    ShutdownDone,
    /// The child dropped its last buffer of each of these slots of the host's pool (one
    /// key per descriptor the child decoded; a key may repeat).
    ReleaseSlots {
        /// The slots.
        slots: Vec<SlotKey>,
    },
}

/// Frames whose values [`Outbox::seal`] inspects for large buffers.
pub trait Frame: Serialize {
    /// Calls `f` on every value the frame carries.
    fn for_each_value_mut(&mut self, f: &mut dyn FnMut(&mut Value));
}

fn result_values(result: &mut Result<Value, CallError>, f: &mut dyn FnMut(&mut Value)) {
    if let Ok(value) = result {
        f(value);
    }
}

fn call_values(call: &mut CallFrame, f: &mut dyn FnMut(&mut Value)) {
    call.args.iter_mut().for_each(&mut *f);
    call.kwargs.values_mut().for_each(f);
}

impl Frame for ToChild {
    fn for_each_value_mut(&mut self, f: &mut dyn FnMut(&mut Value)) {
        match self {
            ToChild::Call(call) => call_values(call, f),
            ToChild::Reply { result, .. } => result_values(result, f),
            ToChild::Start(_) | ToChild::Cancel { .. } | ToChild::Release { .. } => {}
            ToChild::Shutdown | ToChild::ReleaseSlots { .. } => {}
        }
    }
}

impl Frame for ToHost {
    fn for_each_value_mut(&mut self, f: &mut dyn FnMut(&mut Value)) {
        match self {
            ToHost::Call { call, .. } => call_values(call, f),
            ToHost::Reply { result, .. } => result_values(result, f),
            ToHost::Hello { .. }
            | ToHost::Started { .. }
            | ToHost::StartFailed(_)
            | ToHost::Cancel { .. }
            | ToHost::Release { .. }
            | ToHost::ReleaseSlots { .. }
            | ToHost::ShutdownDone => {}
        }
    }
}
