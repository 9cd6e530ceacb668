//! The frames a host and a bridged child process exchange, and the envelope every frame
//! travels in.
//!
//! The child speaks first ([`ToHost::Hello`]); the host answers with [`ToChild::Start`]; the
//! child loads the extension, runs its lifecycle hooks and says [`ToHost::Started`] (or
//! [`ToHost::StartFailed`]). From then on both sides call each other at any time: calls are
//! matched to replies by id, each side numbering its own calls, so host -> child -> host ->
//! child nesting needs no extra bookkeeping.
//!
//! Buffers of [`SHM_THRESHOLD`] bytes or more never travel as bytes:
//! [`Ledger::seal`](crate::Ledger::seal) moves them into the process's shared-memory pool
//! (`troupe_shm::pool`) and keeps each slot until the peer has dropped every buffer it
//! decoded from it ([`ToChild::ReleaseSlots`] / [`ToHost::ReleaseSlots`]); the regions'
//! file descriptors travel beside the frame (see `docs/semantics.md`, *Buffers*).
//!
//! CUDA arrays travel as IPC descriptors when the ledger has a
//! [`DevicePlane`](troupe_value::device::DevicePlane): each descriptor is one hold on the
//! sender's export, answered by its id in [`Envelope::exports_released`] of a later frame
//! (see `docs/semantics.md`, *CUDA arrays*).

use serde::{Deserialize, Serialize};
use troupe_shm::pool::SlotKey;
use troupe_value::device::ExportId;
use troupe_value::{CallError, Map, RemoteException, Value};

/// Version of this protocol; host and child refuse to talk across versions.
pub const PROTOCOL_VERSION: u32 = 7;

/// Buffers this large (bytes) or larger cross the process boundary through shared memory.
pub const SHM_THRESHOLD: usize = 64 * 1024;

/// The largest frame either side accepts: larger values cross as shared memory.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// What every frame travels in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The frame.
    pub body: T,
    /// Slots of the receiver's pool the sender no longer holds: releases that ride on any
    /// frame going that way anyway, so steady traffic needs no `ReleaseSlots` frames.
    pub released: Vec<SlotKey>,
    /// Exports of the receiver's device arrays the sender no longer uses: one id per
    /// descriptor it decoded, once its import ended (or failed).
    pub exports_released: Vec<ExportId>,
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
    /// Call a method whose outputs stream back: each value a generator yields (each item of
    /// a returned list) is one [`ToHost::Yield`], at most `window` of them before the host
    /// grants more ([`ToChild::Credit`]), then the [`ToHost::Reply`] that ends the stream.
    Stream {
        /// The call.
        call: CallFrame,
        /// Items the child may yield before it waits for credit.
        window: u32,
    },
    /// The host took `items` more items of its streaming call `id`: the child may yield that
    /// many more.
    Credit {
        /// The host's call id.
        id: u64,
        /// How many more items.
        items: u32,
    },
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
    /// One item of the host's streaming call `id` ([`ToChild::Stream`]), sent only with
    /// credit for it; its `Reply` follows the last.
    Yield {
        /// The host's call id.
        id: u64,
        /// The item.
        value: Value,
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
    /// `prepare_shutdown` ran; the child exits now.
    ShutdownDone,
    /// The child dropped its last buffer of each of these slots of the host's pool (one
    /// key per descriptor the child decoded; a key may repeat).
    ReleaseSlots {
        /// The slots.
        slots: Vec<SlotKey>,
    },
}

/// Frames whose values [`Ledger::seal`](crate::Ledger::seal) inspects for large buffers.
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
            ToChild::Call(call) | ToChild::Stream { call, .. } => call_values(call, f),
            ToChild::Reply { result, .. } => result_values(result, f),
            ToChild::Start(_) | ToChild::Cancel { .. } | ToChild::Credit { .. } => {}
            ToChild::Shutdown | ToChild::ReleaseSlots { .. } => {}
        }
    }
}

impl Frame for ToHost {
    fn for_each_value_mut(&mut self, f: &mut dyn FnMut(&mut Value)) {
        match self {
            ToHost::Call { call, .. } => call_values(call, f),
            ToHost::Reply { result, .. } => result_values(result, f),
            ToHost::Yield { value, .. } => f(value),
            ToHost::Hello { .. }
            | ToHost::Started { .. }
            | ToHost::StartFailed(_)
            | ToHost::Cancel { .. }
            | ToHost::ReleaseSlots { .. }
            | ToHost::ShutdownDone => {}
        }
    }
}
