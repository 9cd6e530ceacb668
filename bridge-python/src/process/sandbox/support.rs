//! What this machine can give a sandbox: asked once per process, used by every launch and
//! by `troupe check`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `landlock_create_ruleset` flag: return the ABI version.
const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
/// `seccomp` operation: is this action available?
const SECCOMP_GET_ACTION_AVAIL: libc::c_uint = 2;
/// The seccomp action the filters use.
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// How long the bubblewrap probe may take.
const BWRAP_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What this machine supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Support {
    /// The kernel's Landlock ABI version; `None` without Landlock.
    pub landlock_abi: Option<u32>,
    /// Whether seccomp filters (with errno returns) can be installed.
    pub seccomp: bool,
    /// Whether bubblewrap is there and works.
    pub bubblewrap: Bubblewrap,
    /// A cgroup v2 directory this process may make child cgroups in, with the memory and
    /// pids controllers; `None` where there is none.
    pub cgroup: Option<PathBuf>,
}

/// Whether `bwrap` is on `PATH` and works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bubblewrap {
    /// Not on `PATH`.
    Missing,
    /// On `PATH` but `bwrap --ro-bind / / true` (with the namespaces `strict` asks for)
    /// failed; what it said.
    Broken {
        /// The binary.
        path: PathBuf,
        /// Its error output, or why it could not be run.
        reason: String,
    },
    /// Works.
    Works(PathBuf),
}

impl Support {
    /// Probes everything (bubblewrap included: it runs `bwrap` once per process).
    pub fn probe() -> Support {
        Support {
            landlock_abi: landlock_abi(),
            seccomp: seccomp(),
            bubblewrap: bubblewrap().clone(),
            cgroup: cgroup().clone(),
        }
    }
}

/// The kernel's Landlock ABI version, asked once.
pub fn landlock_abi() -> Option<u32> {
    static ABI: OnceLock<Option<u32>> = OnceLock::new();
    *ABI.get_or_init(|| {
        // SAFETY: the version query reads no attribute (null, size 0).
        let abi = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<libc::c_void>(),
                0usize,
                LANDLOCK_CREATE_RULESET_VERSION,
            )
        };
        u32::try_from(abi).ok().filter(|&abi| abi > 0)
    })
}

/// Whether seccomp filters returning an errno can be installed, asked once.
pub fn seccomp() -> bool {
    static SECCOMP: OnceLock<bool> = OnceLock::new();
    *SECCOMP.get_or_init(|| {
        let action = SECCOMP_RET_ERRNO;
        // SAFETY: the kernel reads one u32 from `action`.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_GET_ACTION_AVAIL,
                0,
                &action as *const u32,
            )
        };
        r == 0
    })
}

/// Whether bubblewrap works, probed once.
pub fn bubblewrap() -> &'static Bubblewrap {
    static BWRAP: OnceLock<Bubblewrap> = OnceLock::new();
    BWRAP.get_or_init(|| match find_on_path("bwrap") {
        None => Bubblewrap::Missing,
        Some(path) => match probe_bwrap(&path) {
            Ok(()) => Bubblewrap::Works(path),
            Err(reason) => Bubblewrap::Broken { path, reason },
        },
    })
}

/// The cgroup v2 directory children may be put under, found once.
pub fn cgroup() -> &'static Option<PathBuf> {
    static CGROUP: OnceLock<Option<PathBuf>> = OnceLock::new();
    CGROUP.get_or_init(find_cgroup)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs `bwrap` as `strict` will (no new privileges, the same namespaces) on `true`.
fn probe_bwrap(bwrap: &Path) -> Result<(), String> {
    let mut command = Command::new(bwrap);
    command
        .args(["--die-with-parent", "--unshare-user-try", "--unshare-ipc"])
        .args(["--unshare-uts", "--unshare-cgroup-try", "--unshare-net"])
        .args(["--unshare-pid", "--ro-bind", "/", "/", "--dev", "/dev"])
        .args(["--proc", "/proc", "--tmpfs", "/tmp", "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + BWRAP_PROBE_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {BWRAP_PROBE_TIMEOUT:?}"));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut said = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut said);
    }
    Err(format!("{status}: {}", said.trim()))
}

/// This process's cgroup v2 directory, when it is writable and hands the memory and pids
/// controllers to its children.
fn find_cgroup() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let relative = own.lines().find_map(|line| line.strip_prefix("0::"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|line| {
        let (fields, after) = line.split_once(" - ")?;
        after
            .starts_with("cgroup2 ")
            .then(|| fields.split(' ').nth(4).map(PathBuf::from))?
    })?;
    let dir = mount.join(relative.trim_start_matches('/'));
    let delegated = std::fs::read_to_string(dir.join("cgroup.subtree_control")).ok()?;
    let has = |controller: &str| delegated.split_whitespace().any(|c| c == controller);
    let writable = rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK).is_ok();
    (has("memory") && has("pids") && writable).then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probing_answers_and_is_stable() {
        let first = Support::probe();
        assert_eq!(first, Support::probe());
    }
}
