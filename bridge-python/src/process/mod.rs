//! Child processes: spawn, bootstrap over ipc-channel, and the link frames travel on.
//!
//! [`launch`] starts `<venv>/bin/python -u -m troupe` with an explicit environment, waits
//! for it to connect to a one-shot ipc-channel server and say [`ToHost::Hello`], and hands
//! back the [`ChildProcess`], the [`Link`] to send on and the receiver to read from. A child
//! that exits before connecting is reported as soon as it is reaped (a few milliseconds),
//! with its exit status and the tail of its stderr; one that stays silent past the connect
//! deadline is killed and reported the same way.
//!
//! Children are spawned from one long-lived thread, because `PR_SET_PDEATHSIG` (the child
//! dies when the host dies) fires when the *thread* that forked it ends.

mod link;
mod output;
mod spawner;

use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipc_channel::ipc::{IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcSender};
use thiserror::Error;
use troupe_wire::protocol::{
    DOORBELL_ENV, Doorbell, Envelope, PROTOCOL_VERSION, SERVER_ENV, ToHost,
};
use troupe_wire::{CrashInfo, DecodeError};

pub use link::{Link, LinkError};
pub use output::StderrTail;

/// What the child sends through the one-shot server: the host's ends of two channels.
pub(crate) type Bootstrap = (IpcBytesReceiver, IpcBytesSender);

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
    "TROUPE_LOG",
    "TROUPE_SPIN_US",
];

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
    /// How long the child may take to connect and say hello.
    pub connect_timeout: Duration,
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
    /// The ipc-channel server or a forwarding thread could not be set up.
    #[error("cannot set up the channel to the child: {0}")]
    Ipc(#[source] std::io::Error),
    /// The child exited before it connected.
    #[error("child exited before connecting: {0}")]
    ExitedEarly(CrashInfo),
    /// The child did not connect within the deadline; it was killed.
    #[error("child did not connect within {after:?} (killed); stderr: {stderr_tail}")]
    ConnectTimeout {
        /// The deadline.
        after: Duration,
        /// The last lines of its stderr.
        stderr_tail: String,
    },
    /// The child connected but its first frame was not a valid hello.
    #[error("bad handshake from the child: {0}")]
    Handshake(String),
}

/// A running child process. Dropping it kills the process and reaps it.
#[derive(Debug)]
pub struct ChildProcess {
    name: Arc<str>,
    pid: u32,
    child: Mutex<Child>,
    status: Mutex<Option<ExitStatus>>,
    stderr: StderrTail,
    forwarders: Mutex<Vec<JoinHandle<()>>>,
}

impl ChildProcess {
    /// The extension's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The last lines the child wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr.text()
    }

    /// Kills the process (SIGKILL) if it still runs.
    pub fn kill(&self) {
        if self.try_status().is_none() {
            let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
            let _ = child.kill();
        }
    }

    /// Sends SIGTERM (used after a graceful stop's deadline, before SIGKILL).
    pub fn terminate(&self) {
        if self.try_status().is_none()
            && let Ok(pid) = libc::pid_t::try_from(self.pid)
        {
            // SAFETY: plain syscall on a pid we spawned and have not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }

    /// The exit status, if the process has exited (reaps it).
    pub fn try_status(&self) -> Option<ExitStatus> {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if status.is_none() {
            let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
            *status = child.try_wait().ok().flatten();
        }
        *status
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// How the process ended, waiting briefly for it to be reaped and for its last stderr
    /// lines. A process still running after that is killed first.
    pub fn crash_info(&self, reason: Option<String>) -> CrashInfo {
        let status = self.wait_timeout(Duration::from_millis(500)).or_else(|| {
            self.kill();
            self.wait_timeout(Duration::from_secs(2))
        });
        let forwarders =
            std::mem::take(&mut *self.forwarders.lock().unwrap_or_else(|p| p.into_inner()));
        for forwarder in forwarders {
            let _ = forwarder.join();
        }
        crash_info(status, reason, self.stderr.text())
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        if self
            .status
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn crash_info(
    status: Option<ExitStatus>,
    reason: Option<String>,
    stderr_tail: String,
) -> CrashInfo {
    use std::os::unix::process::ExitStatusExt;
    CrashInfo {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        reason,
        stderr_tail,
    }
}

/// A connected child: the process, the link to send on, the receiver to read from.
#[derive(Debug)]
pub struct Launched {
    /// The process.
    pub process: Arc<ChildProcess>,
    /// Sends frames to the child.
    pub link: Arc<Link>,
    /// Frames from the child, after the hello.
    pub receiver: IpcBytesReceiver,
    /// The child's `sys.version`.
    pub python_version: String,
    /// Time from spawn to hello.
    pub connect_time: Duration,
}

/// Starts the child `spec` describes and waits for its hello.
pub fn launch(spec: &LaunchSpec) -> Result<Launched, LaunchError> {
    let started = Instant::now();
    let (server, server_name) = IpcOneShotServer::<Bootstrap>::new().map_err(LaunchError::Ipc)?;
    let doorbell = Doorbell::create().map_err(|e| LaunchError::Ipc(std::io::Error::other(e)))?;
    let mut command = std::process::Command::new(&spec.python);
    command
        .args(["-u", "-m", "troupe"])
        .env_clear()
        .envs(
            PASSED_THROUGH
                .iter()
                .filter_map(|k| Some((k, std::env::var_os(k)?))),
        )
        .env("VIRTUAL_ENV", &spec.venv)
        .env("PYTHONNOUSERSITE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("TROUPE_EXTENSION", &spec.name)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env(SERVER_ENV, &server_name)
        .env(DOORBELL_ENV, doorbell.name())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    let mut child = spawner::spawn(command).map_err(|source| LaunchError::Spawn {
        python: spec.python.clone(),
        source,
    })?;
    let name: Arc<str> = Arc::from(spec.name.as_str());
    let pid = child.id();
    let stderr = StderrTail::default();
    let mut forwarders = Vec::new();
    if let Some(out) = child.stdout.take() {
        forwarders.push(
            output::forward(out, output::Stream::Stdout, name.clone(), pid, None)
                .map_err(LaunchError::Ipc)?,
        );
    }
    if let Some(err) = child.stderr.take() {
        forwarders.push(
            output::forward(
                err,
                output::Stream::Stderr,
                name.clone(),
                pid,
                Some(stderr.clone()),
            )
            .map_err(LaunchError::Ipc)?,
        );
    }
    let process = Arc::new(ChildProcess {
        name,
        pid,
        child: Mutex::new(child),
        status: Mutex::new(None),
        stderr,
        forwarders: Mutex::new(forwarders),
    });

    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("troupe-accept".into())
        .spawn(move || {
            let accepted =
                server
                    .accept()
                    .map_err(|e| e.to_string())
                    .and_then(|(_, (receiver, sender))| {
                        let hello = receiver.recv().map_err(|e| e.to_string())?;
                        Ok((receiver, sender, hello))
                    });
            let _ = done_tx.send(accepted);
        })
        .map_err(LaunchError::Ipc)?;

    let fail = |process: &ChildProcess| {
        process.kill();
        // Unblock the accept thread if the child never connected.
        drop(IpcSender::<Bootstrap>::connect(server_name.clone()));
    };
    let (receiver, sender, hello) = loop {
        match done_rx.recv_timeout(Duration::from_millis(2)) {
            Ok(Ok(accepted)) => break accepted,
            Ok(Err(message)) => {
                fail(&process);
                return Err(match process.try_status() {
                    Some(_) => LaunchError::ExitedEarly(process.crash_info(None)),
                    None => LaunchError::Handshake(message),
                });
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                fail(&process);
                return Err(LaunchError::Handshake("accept thread ended".into()));
            }
        }
        if process.try_status().is_some() {
            fail(&process);
            return Err(LaunchError::ExitedEarly(process.crash_info(None)));
        }
        if started.elapsed() >= spec.connect_timeout {
            fail(&process);
            let info = process.crash_info(None);
            return Err(LaunchError::ConnectTimeout {
                after: spec.connect_timeout,
                stderr_tail: info.stderr_tail,
            });
        }
    };
    let python_version = match Envelope::open::<ToHost>(&hello) {
        Ok(Envelope {
            body:
                ToHost::Hello {
                    protocol,
                    pid: _,
                    python,
                },
            ..
        }) if protocol == PROTOCOL_VERSION => python,
        Ok(Envelope {
            body: ToHost::Hello { protocol, .. },
            ..
        }) => {
            process.kill();
            return Err(LaunchError::Handshake(format!(
                "child speaks protocol {protocol}, host speaks {PROTOCOL_VERSION}"
            )));
        }
        Ok(other) => {
            process.kill();
            return Err(LaunchError::Handshake(format!(
                "expected hello, got {:?}",
                other.body
            )));
        }
        Err(e) => {
            process.kill();
            return Err(LaunchError::Handshake(hello_error(e)));
        }
    };
    // The hello was read before the doorbell was in use.
    doorbell.took();
    Ok(Launched {
        process,
        link: Arc::new(
            Link::new(sender, Arc::new(doorbell), devices(pid)).map_err(LaunchError::Ipc)?,
        ),
        receiver,
        python_version,
        connect_time: started.elapsed(),
    })
}

/// The CUDA IPC of a connection to child `pid`: its exports, its imports.
fn devices(pid: u32) -> Arc<dyn troupe_wire::device::DevicePlane> {
    Arc::new(troupe_cuda::CudaPlane::new(troupe_cuda::PeerId(u64::from(
        pid,
    ))))
}

fn hello_error(e: DecodeError) -> String {
    format!("undecodable hello: {e}")
}
