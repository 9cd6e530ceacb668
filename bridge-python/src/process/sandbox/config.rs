//! What an extension's sandbox is to be: a level, plus what it may reach beyond the level's
//! defaults.

use std::path::PathBuf;

/// How tightly an extension's child is confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SandboxLevel {
    /// No sandbox: the child may do whatever the host's user may (logged once at start).
    Off,
    /// Landlock (files, TCP, signals), seccomp (syscalls reaching other processes or the
    /// kernel's attack surface), no new privileges, no capabilities, no core dumps. A
    /// protection the kernel lacks is logged and skipped, unless `require` is set.
    #[default]
    Default,
    /// `Default` inside bubblewrap (namespaces: user, pid, net, ipc, uts, cgroup; a
    /// read-only root, a private `/tmp`), plus a cgroup where one can be made. Every layer
    /// is required.
    Strict,
}

/// An extension's sandbox: its level and what it may reach beyond the level's defaults.
///
/// ```
/// use troupe_bridge_python::process::{SandboxConfig, SandboxLevel};
///
/// let sandbox = SandboxConfig::default().network(true).read("/srv/models");
/// assert_eq!(sandbox.level, SandboxLevel::Default);
/// assert!(SandboxConfig::off().is_off());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxConfig {
    /// How tightly.
    pub level: SandboxLevel,
    /// Whether the child may open TCP/UDP sockets (`AF_INET`, `AF_INET6`) and bind or
    /// connect them.
    pub network: bool,
    /// Extra paths the child may read (files, or directories with what they hold).
    pub read: Vec<PathBuf>,
    /// Extra paths the child may read and write.
    pub write: Vec<PathBuf>,
    /// Whether the child uses a GPU: `/dev/nvidia*` and `/dev/dri` become reachable, and
    /// `strict` keeps the host's pid namespace (CUDA IPC names processes by pid).
    pub gpu: bool,
    /// Whether a `default` sandbox the kernel cannot fully give is a launch error rather
    /// than a warning.
    pub require: bool,
}

impl SandboxConfig {
    /// No sandbox.
    pub fn off() -> SandboxConfig {
        SandboxConfig::level(SandboxLevel::Off)
    }

    /// The `strict` level.
    pub fn strict() -> SandboxConfig {
        SandboxConfig::level(SandboxLevel::Strict)
    }

    /// `level`, with nothing extra allowed.
    pub fn level(level: SandboxLevel) -> SandboxConfig {
        SandboxConfig {
            level,
            ..SandboxConfig::default()
        }
    }

    /// Whether there is no sandbox at all.
    pub fn is_off(&self) -> bool {
        self.level == SandboxLevel::Off
    }

    /// Allows or denies TCP/UDP sockets.
    pub fn network(mut self, yes: bool) -> Self {
        self.network = yes;
        self
    }

    /// Lets the child read `path`.
    pub fn read(mut self, path: impl Into<PathBuf>) -> Self {
        self.read.push(path.into());
        self
    }

    /// Lets the child read and write `path`.
    pub fn write(mut self, path: impl Into<PathBuf>) -> Self {
        self.write.push(path.into());
        self
    }

    /// Lets the child reach the GPU devices.
    pub fn gpu(mut self, yes: bool) -> Self {
        self.gpu = yes;
        self
    }

    /// Makes a protection the kernel lacks a launch error.
    pub fn require(mut self, yes: bool) -> Self {
        self.require = yes;
        self
    }
}

impl From<SandboxLevel> for SandboxConfig {
    fn from(level: SandboxLevel) -> SandboxConfig {
        SandboxConfig::level(level)
    }
}
