//! The tools that build venvs: `uv` (found, or bootstrapped) or `python -m venv` + pip.

use std::env;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tracing::{debug, warn};

use super::command::run_streaming;
use super::error::EnvError;
use super::interpreter::Interpreter;
use super::progress::EnvProgress;

#[cfg(windows)]
const UV_EXE: &str = "uv.exe";
#[cfg(not(windows))]
const UV_EXE: &str = "uv";

/// Which tool built a venv, or failed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstallerKind {
    /// `uv venv` + `uv pip install`.
    Uv,
    /// `python -m venv` + `python -m pip install`: ~250x slower to create a venv.
    Pip,
}

impl fmt::Display for InstallerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Uv => "uv",
            Self::Pip => "pip",
        })
    }
}

/// How an [`EnvCache`](super::EnvCache) picks its installer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstallerChoice {
    /// The first `uv` found: `$TROUPE_UV`, next to the interpreter, the interpreter's
    /// scripts directory (where `pip install uv` puts it), `PATH`; else troupe's own,
    /// installed once into the cache with pip; else `python -m venv` + pip.
    #[default]
    Auto,
    /// This `uv` binary.
    Uv(PathBuf),
    /// troupe's own `uv` in the cache (installed with pip when missing), skipping the search;
    /// pip when even that fails.
    Bootstrap,
    /// `python -m venv` + pip only.
    Pip,
}

/// A resolved installer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Installer {
    Uv(PathBuf),
    Pip,
}

impl Installer {
    pub(crate) fn kind(&self) -> InstallerKind {
        match self {
            Self::Uv(_) => InstallerKind::Uv,
            Self::Pip => InstallerKind::Pip,
        }
    }

    /// Creates an empty venv at `dir` based on `interpreter`.
    pub(crate) fn create(
        &self,
        interpreter: &Interpreter,
        dir: &Path,
        system_site_packages: bool,
        spec: &str,
        progress: &dyn Fn(EnvProgress),
    ) -> Result<(), EnvError> {
        let mut command = match self {
            Self::Uv(uv) => {
                let mut command = Command::new(uv);
                command
                    .arg("venv")
                    .arg("--python")
                    .arg(&interpreter.executable);
                command
            }
            Self::Pip => {
                let mut command = Command::new(&interpreter.executable);
                command.args(["-m", "venv"]);
                command
            }
        };
        if system_site_packages {
            command.arg("--system-site-packages");
        }
        command.arg(dir);
        self.run_step(command, spec, progress, Step::Create)
    }

    /// Installs `requirements` into the venv whose interpreter is `python`.
    pub(crate) fn install(
        &self,
        python: &Path,
        requirements: &[String],
        spec: &str,
        progress: &dyn Fn(EnvProgress),
    ) -> Result<(), EnvError> {
        let mut command = match self {
            Self::Uv(uv) => {
                let mut command = Command::new(uv);
                // Bytecode now: a sandboxed child reads its venv but cannot write to it.
                // (pip compiles by default.)
                command
                    .args(["pip", "install", "--compile-bytecode", "--python"])
                    .arg(python);
                command
            }
            Self::Pip => pip(python, "install"),
        };
        command.args(requirements);
        self.run_step(command, spec, progress, Step::Install)
    }

    /// Runs one installer step, streaming its output; a failure names the step, the
    /// installer, its status and the last lines it printed.
    fn run_step(
        &self,
        command: Command,
        spec: &str,
        progress: &dyn Fn(EnvProgress),
        step: Step,
    ) -> Result<(), EnvError> {
        let finished = run_streaming(command, progress)?;
        if finished.status.success() {
            return Ok(());
        }
        let (spec, installer, status, message) =
            (spec.to_owned(), self.kind(), finished.status, finished.tail);
        Err(match step {
            Step::Create => EnvError::Create {
                spec,
                installer,
                status,
                message,
            },
            Step::Install => EnvError::Install {
                spec,
                installer,
                status,
                message,
            },
        })
    }

    /// What the venv holds, as `name==version` lines; empty when the listing fails (it only
    /// informs `troupe env list`).
    pub(crate) fn freeze(&self, python: &Path) -> Vec<String> {
        let mut command = match self {
            Self::Uv(uv) => {
                let mut command = Command::new(uv);
                command.args(["pip", "freeze", "--python"]).arg(python);
                command
            }
            Self::Pip => {
                let mut command = pip(python, "freeze");
                command.arg("--local");
                command
            }
        };
        match command.stdin(Stdio::null()).stderr(Stdio::null()).output() {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            other => {
                debug!(?other, "listing the venv's packages failed");
                Vec::new()
            }
        }
    }
}

/// Which installer step failed, for the error it reports.
#[derive(Clone, Copy)]
enum Step {
    Create,
    Install,
}

fn pip(python: &Path, subcommand: &str) -> Command {
    let mut command = Command::new(python);
    command
        .args(["-m", "pip", subcommand])
        .args(["--disable-pip-version-check", "--no-input"]);
    command
}

/// The first working `uv` outside troupe's cache, in [`InstallerChoice::Auto`] order.
pub(crate) fn find_uv(interpreter: &Interpreter, python: &Path) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(uv) = env::var_os("TROUPE_UV").filter(|v| !v.is_empty()) {
        let uv = PathBuf::from(uv);
        if runs(&uv) {
            return Some(uv);
        }
        warn!(uv = %uv.display(), "TROUPE_UV does not name a working uv; searching on");
    }
    // The interpreter's own directories come before PATH: a uv there is a real binary,
    // where PATH often holds a version-manager shim (pyenv's costs ~140 ms a call, and a
    // build makes four).
    let dirs = [
        python.parent().filter(|dir| !dir.as_os_str().is_empty()),
        interpreter.executable.parent(),
        interpreter.scripts.as_deref(),
    ];
    candidates.extend(dirs.into_iter().flatten().map(|dir| dir.join(UV_EXE)));
    if let Some(path) = env::var_os("PATH") {
        candidates.extend(
            env::split_paths(&path)
                .filter(|dir| !dir.as_os_str().is_empty())
                .map(|dir| dir.join(UV_EXE)),
        );
    }
    candidates.into_iter().find(|uv| uv.is_file() && runs(uv))
}

/// Whether `uv --version` succeeds: a leftover shim or a uv for another platform does not.
pub(crate) fn runs(uv: &Path) -> bool {
    Command::new(uv)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Where `pip install uv` puts `uv` in a venv.
pub(crate) fn uv_in_venv(venv: &Path) -> PathBuf {
    super::cache::venv_bin(venv).join(UV_EXE)
}
