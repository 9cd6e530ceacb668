//! troupe's own `uv`, for machines that have none: installed once per cache with
//! `python -m venv` + `pip install uv`, under the same lock-and-marker discipline as venvs.

use std::fs;
use std::path::Path;

use tracing::info;

use super::error::EnvError;
use super::installer::{Installer, runs, uv_in_venv};
use super::interpreter::Interpreter;
use super::lock::FileLock;
use super::marker::{MARKER, write_atomic};
use super::progress::EnvProgress;

/// Returns troupe's `uv` under `tools`, installing it first when missing.
pub(crate) fn bootstrap_uv(
    tools: &Path,
    interpreter: &Interpreter,
    progress: &dyn Fn(EnvProgress),
) -> Result<std::path::PathBuf, EnvError> {
    let venv = tools.join("uv-venv");
    let uv = uv_in_venv(&venv);
    let ready = || venv.join(MARKER).is_file() && runs(&uv);
    if ready() {
        return Ok(uv);
    }
    fs::create_dir_all(tools).map_err(EnvError::io(tools))?;
    let _lock = FileLock::acquire(&tools.join("uv-venv.lock"), || {})?;
    if ready() {
        return Ok(uv);
    }
    if venv.exists() {
        fs::remove_dir_all(&venv).map_err(EnvError::io(&venv))?;
    }
    info!(venv = %venv.display(), "no uv found: installing troupe's own with pip, once");
    progress(EnvProgress::BootstrappingUv { path: venv.clone() });
    let pip = Installer::Pip;
    let spec = "troupe's uv";
    pip.create(interpreter, &venv, false, spec, progress)?;
    pip.install(
        &super::cache::venv_python(&venv),
        &["uv".to_owned()],
        spec,
        progress,
    )?;
    if !runs(&uv) {
        return Err(EnvError::Io {
            path: uv,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "pip installed uv but it does not run",
            ),
        });
    }
    write_atomic(&venv.join(MARKER), b"uv\n")?;
    Ok(uv)
}
