//! The completion marker: written last and atomically into a venv, it is what makes the
//! venv usable. A directory without it is a crashed build.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::error::EnvError;

/// The marker's file name inside a venv.
pub(crate) const MARKER: &str = ".troupe-complete";

/// What a complete venv records about itself (read back by `list`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Marker {
    pub(crate) key: String,
    pub(crate) troupe_version: String,
    pub(crate) python_version: String,
    pub(crate) python_executable: PathBuf,
    pub(crate) dependencies: Vec<String>,
    pub(crate) system_site_packages: bool,
    pub(crate) installer: String,
    /// `pip freeze` of the venv: what the resolver chose.
    pub(crate) packages: Vec<String>,
    pub(crate) created_unix: u64,
}

impl Marker {
    /// The marker of the venv at `dir`, if present and readable.
    pub(crate) fn read(dir: &Path) -> Option<Self> {
        let bytes = fs::read(dir.join(MARKER)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the marker into `dir`, atomically.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), EnvError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| EnvError::Io {
            path: dir.join(MARKER),
            source: e.into(),
        })?;
        write_atomic(&dir.join(MARKER), &bytes)
    }

    /// Records that the venv at `dir` was just used; failures (a read-only cache) are
    /// harmless and ignored.
    pub(crate) fn touch(dir: &Path) {
        if let Ok(file) = File::options().write(true).open(dir.join(MARKER)) {
            let _ = file.set_modified(SystemTime::now());
        }
    }
}

/// Writes `bytes` to `path` so that readers see either nothing or all of it, even across a
/// crash: a synced temporary file renamed over the target.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EnvError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        fs::write(&tmp, bytes)?;
        File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(EnvError::io(path))?;
    if let Some(dir) = path.parent() {
        // Makes the rename itself durable; not every filesystem allows syncing a directory.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}
