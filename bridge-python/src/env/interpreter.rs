//! What an interpreter says about itself: the facts that decide whether a venv built on it
//! can be shared, and where it keeps its scripts (a `pip install uv` puts `uv` there).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use super::error::EnvError;

/// `-I` keeps a `json.py` in the working directory or a `PYTHONPATH` from answering.
const PROBE: &str = "import json, sys, sysconfig; print(json.dumps({\
'version': sys.version, \
'implementation': sys.implementation.name, \
'cache_tag': sys.implementation.cache_tag, \
'platform': sysconfig.get_platform(), \
'executable': sys.executable, \
'scripts': sysconfig.get_path('scripts')}))";

/// The probed facts about one interpreter.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Interpreter {
    /// `sys.version`: version, build date and compiler.
    pub(crate) version: String,
    /// `sys.implementation.name`, e.g. `cpython`.
    pub(crate) implementation: String,
    /// `sys.implementation.cache_tag`, e.g. `cpython-311`.
    pub(crate) cache_tag: Option<String>,
    /// `sysconfig.get_platform()`, e.g. `linux-x86_64`.
    pub(crate) platform: String,
    /// `sys.executable`: the real interpreter behind a name or a pyenv shim.
    pub(crate) executable: PathBuf,
    /// `sysconfig.get_path('scripts')`.
    pub(crate) scripts: Option<PathBuf>,
}

impl Interpreter {
    /// Runs `python` once and reads its answer.
    pub(crate) fn probe(python: &Path) -> Result<Self, EnvError> {
        let fail = |detail: String| EnvError::Interpreter {
            python: python.to_owned(),
            detail,
        };
        let output = Command::new(python)
            .args(["-I", "-c", PROBE])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail(format!("cannot run it: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(fail(format!(
                "version probe failed ({}): {}",
                output.status,
                stderr.trim()
            )));
        }
        let mut found: Self = serde_json::from_slice(&output.stdout)
            .map_err(|e| fail(format!("unreadable version probe: {e}")))?;
        if found.executable.as_os_str().is_empty() {
            found.executable = python.to_owned();
        }
        Ok(found)
    }

    /// `3.11.7` out of `3.11.7 (main, ...) [GCC ...]`.
    pub(crate) fn short_version(&self) -> &str {
        self.version.split_whitespace().next().unwrap_or_default()
    }
}
