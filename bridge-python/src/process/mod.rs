//! Child processes: spawn one with its connection in place, and wait for its hello.
//!
//! [`launch`] makes the connection first (a socket pair, the doorbell page, the eventfd that
//! wakes the host's reader), then starts `<venv>/bin/python -u -m troupe` with an explicit
//! environment and the child's ends at fixed descriptor numbers
//! ([`ChildFds`]): there is no name to connect to, so no
//! other process can reach the connection, and no accept can hang. It waits for the child's
//! [`ToHost::Hello`] and hands back the [`ChildProcess`] and the [`Link`]. A child that exits
//! before its hello is reported as soon as it is reaped (a few milliseconds), with its exit
//! status and the tail of its stderr; one that stays silent past the connect deadline is
//! killed and reported the same way.
//!
//! Children are spawned from one long-lived thread, because `PR_SET_PDEATHSIG` (the child
//! dies when the host dies) fires when the *thread* that forked it ends.

mod child;
mod link;
mod output;
pub mod sandbox;
mod spawner;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;
use troupe_protocol::transport::{Doorbell, Socket, Wake};
use troupe_protocol::{ChildFds, Envelope, FDS_ENV, PROTOCOL_VERSION, ToHost};
use troupe_value::device::DevicePlane;
use troupe_value::{CrashInfo, ExitCause, HandshakeError};

pub use child::{ChildProcess, Process};
pub use link::{Link, LinkError, LinkLimits};
pub use output::StderrTail;
pub use sandbox::{SandboxConfig, SandboxError, SandboxLevel};

/// Variables passed through from the host's environment (everything else is cleared).
const PASSED_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "TZ",
    "LD_LIBRARY_PATH",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "TROUPE_LOG",
    "TROUPE_SPIN_US",
];

/// The interpreter's arguments. `-P`: the working directory is not put on `sys.path`, so a
/// file there cannot shadow a module the extension imports.
const PYTHON_ARGS: &[&str] = &["-P", "-u", "-m", "troupe"];

/// Longest sleep between two looks at a child that has not said hello yet (when its exit
/// cannot be waited on directly).
const HELLO_POLL: Duration = Duration::from_millis(5);

/// How to start one child.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The extension's name, for logs and errors.
    pub name: String,
    /// The interpreter: the venv's `bin/python`.
    pub python: PathBuf,
    /// The venv's root (`VIRTUAL_ENV`).
    pub venv: PathBuf,
    /// Extra environment variables, set after the passed-through ones.
    pub env: Vec<(String, String)>,
    /// Working directory; the host's when `None`.
    pub cwd: Option<PathBuf>,
    /// The extension's module paths (its sandbox lets it read them).
    pub sys_path: Vec<PathBuf>,
    /// Resident memory the child may use (a `strict` sandbox's cgroup enforces it too).
    pub memory_limit: Option<u64>,
    /// The child's sandbox.
    pub sandbox: SandboxConfig,
    /// How long the child may take to say hello.
    pub connect_timeout: Duration,
    /// The connection's bounds.
    pub limits: LinkLimits,
}

/// Why a child could not be started and connected.
#[derive(Debug, Error)]
pub enum LaunchError {
    /// The interpreter could not be executed.
    #[error("cannot start {python}: {source}", python = python.display())]
    Spawn {
        /// The interpreter.
        python: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The connection (sockets, doorbell, threads) could not be set up.
    #[error("cannot set up the connection to the child: {0}")]
    Setup(#[source] std::io::Error),
    /// The child exited before it said hello.
    #[error("child exited before connecting: {0}")]
    ExitedEarly(CrashInfo),
    /// The child did not say hello within the deadline; it was killed.
    #[error("child did not connect within {after:?} (killed); stderr: {stderr_tail}")]
    ConnectTimeout {
        /// The deadline.
        after: Duration,
        /// The last lines of its stderr.
        stderr_tail: String,
    },
    /// The sandbox the configuration asks for cannot be had; the child was not started.
    #[error("cannot sandbox the child: {0}")]
    Sandbox(#[from] SandboxError),
    /// The child's first frame was not a good hello; it was killed.
    #[error("bad handshake from the child: {error}")]
    Handshake {
        /// What was wrong.
        error: HandshakeError,
        /// The last lines of its stderr.
        stderr_tail: String,
    },
}

impl LaunchError {
    /// How this failed start counts for supervision: as the end of that instance.
    pub fn into_crash(self) -> CrashInfo {
        let with_tail = |cause, stderr_tail| CrashInfo {
            cause,
            stderr_tail,
            gave_up_after: None,
        };
        match self {
            LaunchError::ExitedEarly(info) => info,
            LaunchError::ConnectTimeout { after, stderr_tail } => {
                with_tail(ExitCause::ConnectTimeout(after), stderr_tail)
            }
            LaunchError::Handshake { error, stderr_tail } => {
                with_tail(ExitCause::Handshake(error), stderr_tail)
            }
            LaunchError::Sandbox(error) => CrashInfo::new(ExitCause::Sandbox(error.failure())),
            spawn @ (LaunchError::Spawn { .. } | LaunchError::Setup(_)) => {
                CrashInfo::new(ExitCause::Spawn(spawn.to_string()))
            }
        }
    }
}

/// A connected child: the process and the link to it.
#[derive(Debug)]
pub struct Launched {
    /// The process.
    pub process: Arc<dyn Process>,
    /// The connection.
    pub link: Arc<Link>,
    /// The child's `sys.version`.
    pub python_version: String,
    /// Time from spawn to hello.
    pub connect_time: Duration,
}

/// Starts children: real Python processes ([`PythonLauncher`]), or in tests a fake child
/// that speaks the protocol in-process.
pub trait Launcher: Send + Sync + std::fmt::Debug + 'static {
    /// Starts one child for `spec` and waits for its hello. Blocks: call it off actor threads.
    ///
    /// # Errors
    /// The child could not be started, or did not say a good hello in time.
    fn launch(&self, spec: &LaunchSpec) -> Result<Launched, LaunchError>;
}

/// Launches real children: `spec.python -u -m troupe` in `spec.venv`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonLauncher;

impl Launcher for PythonLauncher {
    fn launch(&self, spec: &LaunchSpec) -> Result<Launched, LaunchError> {
        launch(spec)
    }
}

/// Starts the child `spec` describes and waits for its hello.
///
/// # Errors
/// See [`LaunchError`].
pub fn launch(spec: &LaunchSpec) -> Result<Launched, LaunchError> {
    let started = Instant::now();
    let (process, link) = spawn(spec)?;
    let python_version = match await_hello(&link, &*process, started + spec.connect_timeout) {
        Ok(version) => version,
        Err(e) => {
            process.kill();
            link.close();
            return Err(e.into_launch_error(&*process, spec.connect_timeout));
        }
    };
    Ok(Launched {
        process,
        link,
        python_version,
        connect_time: started.elapsed(),
    })
}

/// Starts the child `spec` describes with its connection in place, without waiting for
/// anything: its hello is the first frame on the link. [`launch`] is this and the wait.
///
/// # Errors
/// The connection could not be made, or the child could not be spawned.
pub fn spawn(spec: &LaunchSpec) -> Result<(Arc<ChildProcess>, Arc<Link>), LaunchError> {
    let subject = sandbox::Subject {
        python: &spec.python,
        venv: &spec.venv,
        sys_path: &spec.sys_path,
        cwd: spec.cwd.as_deref(),
    };
    let mut prepared = sandbox::prepare(&spec.name, &spec.sandbox, &subject, spec.memory_limit)?;
    let (host_end, child_end) = Socket::pair().map_err(LaunchError::Setup)?;
    let (doorbell, page) = Doorbell::create().map_err(LaunchError::Setup)?;
    let wake = Wake::new().map_err(LaunchError::Setup)?;
    let child_wake = wake.duplicate().map_err(LaunchError::Setup)?;
    let fds = ChildFds::STANDARD;
    let env = child_env(spec, fds, &prepared.env);
    let mut command = match &prepared.wrapper {
        Some(wrapper) => wrapper.command(&spec.python, PYTHON_ARGS, &env),
        None => {
            let mut command = Command::new(&spec.python);
            command.args(PYTHON_ARGS).env_clear().envs(env);
            command
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    let mut inherit = vec![
        spawner::Inherit {
            fd: child_end.into(),
            at: fds.socket,
        },
        spawner::Inherit {
            fd: page,
            at: fds.doorbell,
        },
        spawner::Inherit {
            fd: child_wake,
            at: fds.wake,
        },
    ];
    if let Some(wrapper) = &mut prepared.wrapper {
        inherit.extend(wrapper.take_inherit());
    }
    let confinement = std::mem::take(&mut prepared.confinement);
    let child =
        spawner::spawn(command, inherit, confinement).map_err(|source| LaunchError::Spawn {
            python: spec.python.clone(),
            source,
        })?;
    let pid = prepared.child_pid(child.id(), Instant::now() + spec.connect_timeout);
    let adopted = child::Adopted {
        pid,
        wrapped: prepared.wrapper.is_some(),
        sandbox: prepared.guard,
    };
    let process =
        Arc::new(ChildProcess::adopt(&spec.name, child, adopted).map_err(LaunchError::Setup)?);
    let link = Link::new(
        host_end,
        doorbell,
        wake,
        devices(process.pid()),
        spec.limits,
    )
    .map_err(LaunchError::Setup)?;
    Ok((process, link))
}

/// The child's whole environment: the passed-through variables, the venv's, troupe's, the
/// extension's own, the sandbox's (`sandboxed`: its `TMPDIR` wins), and the descriptors it
/// inherits.
fn child_env(
    spec: &LaunchSpec,
    fds: ChildFds,
    sandboxed: &[(OsString, OsString)],
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = PASSED_THROUGH
        .iter()
        .filter_map(|k| Some((OsString::from(k), std::env::var_os(k)?)))
        .collect();
    let fixed = [
        ("VIRTUAL_ENV", spec.venv.as_os_str()),
        ("PYTHONNOUSERSITE", "1".as_ref()),
        ("PYTHONUNBUFFERED", "1".as_ref()),
        ("TROUPE_EXTENSION", spec.name.as_ref()),
    ];
    env.extend(
        fixed
            .iter()
            .map(|(k, v)| (OsString::from(k), v.to_os_string())),
    );
    env.extend(spec.env.iter().map(|(k, v)| (k.into(), v.into())));
    env.extend(sandboxed.iter().cloned());
    env.push((FDS_ENV.into(), fds.to_env().into()));
    // The last setting of a variable wins, as with `Command::env`.
    let mut seen = std::collections::HashSet::new();
    let mut unique: Vec<_> = env
        .into_iter()
        .rev()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect();
    unique.reverse();
    unique
}

/// Why no hello came.
pub(crate) enum NoHello {
    /// The child exited (or closed the connection) first.
    Exited,
    /// The deadline passed.
    TimedOut,
    /// The first frame was not a good hello.
    Bad(HandshakeError),
}

impl NoHello {
    pub(crate) fn into_launch_error(self, process: &dyn Process, after: Duration) -> LaunchError {
        match self {
            NoHello::Exited => LaunchError::ExitedEarly(process.crash_info(None)),
            NoHello::TimedOut => LaunchError::ConnectTimeout {
                after,
                stderr_tail: process.crash_info(None).stderr_tail,
            },
            NoHello::Bad(error) => LaunchError::Handshake {
                error,
                stderr_tail: process.crash_info(None).stderr_tail,
            },
        }
    }
}

/// Waits until `deadline` for the child's hello on `link`; returns its Python version.
pub(crate) fn await_hello(
    link: &Link,
    process: &dyn Process,
    deadline: Instant,
) -> Result<String, NoHello> {
    loop {
        match link.next_frame() {
            Ok(Some(frame)) => return check_hello(&frame.bytes).map_err(NoHello::Bad),
            Ok(None) => {}
            Err(troupe_protocol::transport::ReadError::Closed) => {
                return Err(NoHello::Exited);
            }
            Err(e) => return Err(NoHello::Bad(HandshakeError::NotHello(e.to_string()))),
        }
        if process.has_exited() {
            return Err(NoHello::Exited);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(NoHello::TimedOut);
        }
        let exit = process.exit_fd();
        let extra: Vec<_> = exit.into_iter().collect();
        let nap = if extra.is_empty() {
            (deadline - now).min(HELLO_POLL)
        } else {
            deadline - now
        };
        let _ = link.socket().wait(true, &extra, Some(nap));
    }
}

/// The Python version a hello carries, or why it is not a good hello.
fn check_hello(bytes: &[u8]) -> Result<String, HandshakeError> {
    match Envelope::open::<ToHost>(bytes) {
        Ok(Envelope {
            body: ToHost::Hello {
                protocol, python, ..
            },
            ..
        }) if protocol == PROTOCOL_VERSION => Ok(python),
        Ok(Envelope {
            body: ToHost::Hello { protocol, .. },
            ..
        }) => Err(HandshakeError::Version {
            host: PROTOCOL_VERSION,
            child: protocol,
        }),
        Ok(other) => Err(HandshakeError::NotHello(format!(
            "expected hello, got {}",
            frame_kind(&other.body)
        ))),
        Err(e) => Err(HandshakeError::NotHello(format!("undecodable: {e}"))),
    }
}

/// The name of a frame's kind, for errors (never its contents).
pub(crate) fn frame_kind(frame: &ToHost) -> &'static str {
    match frame {
        ToHost::Hello { .. } => "Hello",
        ToHost::Started { .. } => "Started",
        ToHost::StartFailed(_) => "StartFailed",
        ToHost::Reply { .. } => "Reply",
        ToHost::Yield { .. } => "Yield",
        ToHost::Call { .. } => "Call",
        ToHost::Cancel { .. } => "Cancel",
        ToHost::ShutdownDone => "ShutdownDone",
        ToHost::ReleaseSlots { .. } => "ReleaseSlots",
    }
}

/// The CUDA IPC of a connection to child `pid`: its exports, its imports.
#[cfg(feature = "cuda")]
pub(crate) fn devices(pid: u32) -> Option<Arc<dyn DevicePlane>> {
    let peer = troupe_cuda::PeerId(u64::from(pid));
    Some(Arc::new(troupe_cuda::CudaPlane::new(peer)))
}

/// None: built without the `cuda` feature, a connection carries no device arrays (one in a
/// frame is refused with `DeviceError::NoPlane`).
#[cfg(not(feature = "cuda"))]
pub(crate) fn devices(_pid: u32) -> Option<Arc<dyn DevicePlane>> {
    None
}
