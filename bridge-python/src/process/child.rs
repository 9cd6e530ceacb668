//! A running child: its pid, how to stop it, how it ended.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use troupe_value::{CrashInfo, ExitCause};

use super::output::{self, StderrTail};
use super::sandbox::SandboxGuard;

/// What the host knows of a freshly spawned child beside its `Child`.
#[derive(Debug)]
pub(crate) struct Adopted {
    /// The Python process's pid (the spawned process's, unless it is bwrap).
    pub(crate) pid: u32,
    /// Whether the spawned process is bwrap around the child (`strict`): its exit status
    /// `128 + N` is the child's death by signal `N`.
    pub(crate) wrapped: bool,
    /// The child's sandbox, removed once the child is gone.
    pub(crate) sandbox: SandboxGuard,
}

/// What the host needs of a child: a real process ([`ChildProcess`]), or in tests a fake one.
pub trait Process: Send + Sync + std::fmt::Debug {
    /// Its process id (a fake child's is made up).
    fn pid(&self) -> u32;

    /// Kills it (SIGKILL) if it still runs.
    fn kill(&self);

    /// Asks it to end (SIGTERM), after a graceful stop's deadline.
    fn terminate(&self);

    /// Whether it has ended (reaps it).
    fn has_exited(&self) -> bool;

    /// A descriptor that becomes readable when it ends, if there is one.
    fn exit_fd(&self) -> Option<BorrowedFd<'_>>;

    /// The last lines it wrote to stderr.
    fn stderr_tail(&self) -> String;

    /// How it ended, waiting briefly for it to be reaped and for its last stderr lines (one
    /// still running after that is killed first). `cause` says why, when troupe killed it.
    fn crash_info(&self, cause: Option<ExitCause>) -> CrashInfo;
}

/// A running child process. Dropping it kills the process and reaps it.
#[derive(Debug)]
pub struct ChildProcess {
    pid: u32,
    wrapped: bool,
    child: Mutex<Child>,
    status: Mutex<Option<ExitStatus>>,
    /// Readable once the process ends (`pidfd_open`), where the kernel has it.
    pidfd: Option<OwnedFd>,
    stderr: StderrTail,
    forwarders: Mutex<Vec<JoinHandle<()>>>,
    /// Dropped after the process is reaped (fields drop after `Drop::drop`).
    sandbox: SandboxGuard,
}

impl ChildProcess {
    /// Takes over `child` (spawned with piped stdout and stderr): its output is forwarded to
    /// `tracing` under the extension's name.
    ///
    /// # Errors
    /// A forwarding thread could not be started.
    pub(crate) fn adopt(
        name: &str,
        mut child: Child,
        adopted: Adopted,
    ) -> std::io::Result<ChildProcess> {
        let name: Arc<str> = Arc::from(name);
        let pid = adopted.pid;
        let stderr = StderrTail::default();
        let mut forwarders = Vec::new();
        let mut forward = |out: Box<dyn std::io::Read + Send>,
                           stream: output::Stream,
                           tail: Option<StderrTail>|
         -> std::io::Result<()> {
            forwarders.push(output::forward(out, stream, name.clone(), pid, tail)?);
            Ok(())
        };
        let started = (|| {
            if let Some(out) = child.stdout.take() {
                forward(Box::new(out), output::Stream::Stdout, None)?;
            }
            if let Some(err) = child.stderr.take() {
                forward(Box::new(err), output::Stream::Stderr, Some(stderr.clone()))?;
            }
            Ok(())
        })();
        if let Err(e) = started {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        // The spawned process's: bwrap's when wrapped (it ends with the child).
        let pidfd = rustix::process::Pid::from_raw(child.id() as i32).and_then(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        });
        Ok(ChildProcess {
            pid,
            wrapped: adopted.wrapped,
            child: Mutex::new(child),
            status: Mutex::new(None),
            pidfd,
            stderr,
            forwarders: Mutex::new(forwarders),
            sandbox: adopted.sandbox,
        })
    }

    /// The child's private temp dir, when it is sandboxed.
    pub fn private_tmp(&self) -> Option<&std::path::Path> {
        self.sandbox.private_tmp()
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
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let nap = (deadline - now).min(Duration::from_millis(1));
            match &self.pidfd {
                Some(fd) => {
                    let _ = troupe_protocol::transport::wait_readable(&[fd.as_fd()], Some(nap));
                }
                None => std::thread::sleep(nap),
            }
        }
    }
}

impl ChildProcess {
    /// Sends `signal` to the Python process (not yet reaped: its bwrap still runs, or it is
    /// the spawned process itself).
    fn signal(&self, signal: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(self.pid) {
            // SAFETY: plain syscall on a pid whose process (or its bwrap parent) we have not
            // reaped.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

impl Process for ChildProcess {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn kill(&self) {
        if self.try_status().is_none() {
            if self.wrapped {
                self.signal(libc::SIGKILL);
            }
            let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
            let _ = child.kill();
        }
    }

    fn terminate(&self) {
        if self.try_status().is_none() {
            self.signal(libc::SIGTERM);
        }
    }

    fn has_exited(&self) -> bool {
        self.try_status().is_some()
    }

    fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
    }

    fn stderr_tail(&self) -> String {
        self.stderr.text()
    }

    fn crash_info(&self, cause: Option<ExitCause>) -> CrashInfo {
        let status = self.wait_timeout(Duration::from_millis(500)).or_else(|| {
            self.kill();
            self.wait_timeout(Duration::from_secs(2))
        });
        let forwarders =
            std::mem::take(&mut *self.forwarders.lock().unwrap_or_else(|p| p.into_inner()));
        for forwarder in forwarders {
            let _ = forwarder.join();
        }
        let cause = cause.unwrap_or_else(|| match cause_of(status) {
            // bwrap reports its child's death by signal N as exit status 128 + N.
            ExitCause::Exited(code) if self.wrapped && (129..129 + 64).contains(&code) => {
                ExitCause::Signaled(code - 128)
            }
            cause => cause,
        });
        CrashInfo {
            cause,
            stderr_tail: self.stderr.text(),
            gave_up_after: None,
        }
    }
}

/// What the operating system says about how a process ended.
pub(crate) fn cause_of(status: Option<ExitStatus>) -> ExitCause {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ExitCause::Exited(code),
            (None, Some(signal)) => ExitCause::Signaled(signal),
            (None, None) => ExitCause::Unknown,
        },
        None => ExitCause::Unknown,
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
