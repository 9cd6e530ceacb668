//! `strict`'s outer layer: the child runs inside `bwrap` (user, pid, net, ipc, uts and cgroup
//! namespaces; a read-only root, a fresh `/dev` and `/tmp`).
//!
//! bwrap stays the host's direct child (the host waits on it, and it dies with the host);
//! the Python process's own pid comes from bwrap's `--info-fd` (`"child-pid"`, the
//! namespace's init when there is a pid namespace, whose one child is Python). bwrap
//! installs the seccomp filters (`--add-seccomp-fd`) right before it executes Python; it
//! cannot apply Landlock (its mounts would be refused), so the child enforces the ruleset the
//! host built, inherited at [`LANDLOCK_FD`], as the first thing the `troupe` package does.

use std::ffi::OsString;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::super::spawner::Inherit;
use super::paths::AllowedPaths;
use super::seccomp::{self, Filters};
use super::{SandboxConfig, SandboxError};

/// Where bwrap writes its JSON (with the child's pid).
const INFO_FD: RawFd = 10;
/// Where the seccomp programs are read from, one descriptor each.
const SECCOMP_FDS: [RawFd; 2] = [11, 12];
/// Where the child finds its Landlock ruleset (named by `TROUPE_LANDLOCK_FD`).
pub(crate) const LANDLOCK_FD: RawFd = 13;
/// The variable naming [`LANDLOCK_FD`] to the child.
pub(crate) const LANDLOCK_FD_ENV: &str = "TROUPE_LANDLOCK_FD";
/// The first and last descriptor bwrap inherits beside the connection's.
pub(crate) const INHERITED: (RawFd, RawFd) = (INFO_FD, LANDLOCK_FD);
/// How often to look for the pid namespace's init's child.
const PID_POLL: Duration = Duration::from_millis(1);

/// A child's bwrap: its arguments, and the descriptors it inherits.
#[derive(Debug)]
pub(crate) struct Wrapper {
    bwrap: PathBuf,
    args: Vec<OsString>,
    inherit: Vec<Inherit>,
    info: OwnedFd,
    pid_namespace: bool,
}

impl Wrapper {
    /// bwrap at `bwrap` for a child under `config` reaching `paths`, with `filters` and the
    /// Landlock `ruleset` to enforce.
    pub(crate) fn new(
        bwrap: &Path,
        config: &SandboxConfig,
        paths: &AllowedPaths,
        filters: &Filters,
        ruleset: OwnedFd,
    ) -> Result<Wrapper, SandboxError> {
        let (info_read, info_write) =
            std::io::pipe().map_err(SandboxError::io("bwrap info pipe"))?;
        let mut inherit = vec![
            Inherit {
                fd: info_write.into(),
                at: INFO_FD,
            },
            Inherit {
                fd: ruleset,
                at: LANDLOCK_FD,
            },
        ];
        for (program, at) in filters.programs.iter().zip(SECCOMP_FDS) {
            inherit.push(Inherit {
                fd: memfd_with(&seccomp::bytes(program))?,
                at,
            });
        }
        let pid_namespace = !config.gpu;
        let mut args: Vec<OsString> = [
            "--die-with-parent",
            "--cap-drop",
            "ALL",
            "--clearenv",
            "--unshare-user-try",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        let mut add = |items: &[&dyn AsRef<std::ffi::OsStr>]| {
            args.extend(items.iter().map(|i| i.as_ref().to_owned()));
        };
        if !config.network {
            add(&[&"--unshare-net"]);
        }
        if pid_namespace {
            add(&[&"--unshare-pid"]);
        }
        // Mounts apply in order: the root first, then what is laid over it.
        add(&[&"--ro-bind", &"/", &"/", &"--dev", &"/dev"]);
        if pid_namespace {
            add(&[&"--proc", &"/proc"]);
        }
        add(&[&"--tmpfs", &"/tmp"]);
        for path in &paths.write {
            let bind = if path.starts_with("/dev") {
                "--dev-bind"
            } else {
                "--bind"
            };
            add(&[&bind, path, path]);
        }
        for path in paths.read.iter().filter(|p| p.starts_with("/tmp")) {
            add(&[&"--ro-bind", path, path]);
        }
        add(&[&"--info-fd", &INFO_FD.to_string()]);
        for fd in SECCOMP_FDS {
            add(&[&"--add-seccomp-fd", &fd.to_string()]);
        }
        Ok(Wrapper {
            bwrap: bwrap.to_path_buf(),
            args,
            inherit,
            info: info_read.into(),
            pid_namespace,
        })
    }

    /// The command running `program args` inside bwrap with exactly `env`.
    pub(crate) fn command(
        &self,
        program: &Path,
        program_args: &[&str],
        env: &[(OsString, OsString)],
    ) -> Command {
        let mut command = Command::new(&self.bwrap);
        command.env_clear().args(&self.args);
        for (key, value) in env {
            command.arg("--setenv").arg(key).arg(value);
        }
        command.arg("--").arg(program).args(program_args);
        command
    }

    /// The descriptors bwrap inherits (given up to the spawn).
    pub(crate) fn take_inherit(&mut self) -> Vec<Inherit> {
        std::mem::take(&mut self.inherit)
    }

    /// The pid of the Python process bwrap (pid `bwrap`) started: from its info JSON and, in
    /// a pid namespace, the one child of the namespace's init. Falls back to the nearest pid
    /// known when bwrap says nothing by `deadline` (it failed: its exit is reported then).
    pub(crate) fn child_pid(&self, bwrap: u32, deadline: Instant) -> u32 {
        let Some(init) = read_child_pid(&self.info, deadline) else {
            return bwrap;
        };
        if !self.pid_namespace {
            return init;
        }
        let children = format!("/proc/{init}/task/{init}/children");
        loop {
            match std::fs::read_to_string(&children) {
                Ok(text) => {
                    if let Some(pid) = text.split_whitespace().find_map(|p| p.parse().ok()) {
                        return pid;
                    }
                }
                Err(_) => return init,
            }
            if Instant::now() >= deadline {
                return init;
            }
            std::thread::sleep(PID_POLL);
        }
    }
}

/// `"child-pid": N` from bwrap's info JSON on `info`, waiting until `deadline`.
fn read_child_pid(info: &OwnedFd, deadline: Instant) -> Option<u32> {
    let mut text = Vec::new();
    let mut file = std::fs::File::from(info.try_clone().ok()?);
    loop {
        if let Some(pid) = parse_child_pid(&text) {
            return Some(pid);
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        troupe_protocol::transport::wait_readable(&[info.as_fd()], Some(left)).ok()?;
        let mut chunk = [0u8; 256];
        match file.read(&mut chunk) {
            Ok(0) | Err(_) => return parse_child_pid(&text),
            Ok(n) => text.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The number after `"child-pid":`, once it is complete.
fn parse_child_pid(json: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(json).ok()?;
    let after = text.split_once("\"child-pid\"")?.1;
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    // The number is complete once something follows it.
    (after.len() > digits.len()).then(|| digits.parse().ok())?
}

/// A sealed-for-reading memfd holding `bytes`, positioned at its start.
fn memfd_with(bytes: &[u8]) -> Result<OwnedFd, SandboxError> {
    let made = rustix::fs::memfd_create("troupe-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| SandboxError::io("seccomp memfd")(e.into()))?;
    let mut file = std::fs::File::from(made);
    file.write_all(bytes)
        .and_then(|()| file.rewind())
        .map_err(SandboxError::io("seccomp memfd"))?;
    Ok(file.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_pid_is_read_once_complete() {
        assert_eq!(
            parse_child_pid(b"{\n    \"child-pid\": 4242\n}"),
            Some(4242)
        );
        assert_eq!(parse_child_pid(b"{\n    \"child-pid\": 42"), None);
        assert_eq!(parse_child_pid(b"{ \"cgroup-namespace\": 1 }"), None);
    }
}
