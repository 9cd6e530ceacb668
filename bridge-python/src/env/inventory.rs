//! What the cache holds, and removing it: the ground for `troupe env list` and
//! `troupe env clean`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{debug, info};

use super::cache::{EnvCache, lock_path, remove_path};
use super::error::EnvError;
use super::key::EnvKey;
use super::lock::FileLock;
use super::marker::{MARKER, Marker};

/// One venv directory in the cache, complete or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedEnv {
    /// Its key.
    pub key: EnvKey,
    /// Its directory.
    pub path: PathBuf,
    /// Whether it is ready; an incomplete one is a crashed build, or one in progress.
    pub complete: bool,
    /// Bytes of its files (files hard-linked from the installer's cache count in full).
    pub size_bytes: u64,
    /// When it was built (complete venvs only).
    pub created: Option<SystemTime>,
    /// When it was last handed out by `ensure` (complete venvs only).
    pub last_used: Option<SystemTime>,
    /// The interpreter version it is based on, e.g. `3.11.7` (complete venvs only).
    pub python_version: Option<String>,
    /// The normalised requirements it was built for.
    pub dependencies: Vec<String>,
    /// What the resolver installed, as `name==version`.
    pub packages: Vec<String>,
    /// Whether it sees the interpreter's site-packages.
    pub system_site_packages: bool,
}

impl EnvCache {
    /// Every venv directory in the cache, sorted by key. An absent cache is empty.
    pub fn list(&self) -> Result<Vec<CachedEnv>, EnvError> {
        let venvs = self.venvs_dir();
        let entries = match fs::read_dir(&venvs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(EnvError::io(&venvs)(e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(EnvError::io(&venvs))?;
            let Some(key) = entry.file_name().to_str().and_then(EnvKey::parse) else {
                continue;
            };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                found.push(describe(key, entry.path()));
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    /// Deletes the venv `key`, waiting for a build of it in progress to end first. Returns
    /// whether there was one. A running extension using it breaks: stop it first.
    pub fn remove(&self, key: &EnvKey) -> Result<bool, EnvError> {
        let venvs = self.venvs_dir();
        let dir = venvs.join(key.as_str());
        if fs::symlink_metadata(&dir).is_err() {
            return Ok(false);
        }
        let _lock = FileLock::acquire(&lock_path(&venvs, key), || {})?;
        let existed = fs::symlink_metadata(&dir).is_ok();
        remove_path(&dir)?;
        info!(%key, "removed venv");
        Ok(existed)
    }

    /// Deletes every venv for which `filter` is true, e.g. `|env| !env.complete` or
    /// `|env| env.last_used < Some(a_month_ago)`, and returns them. Venvs being built right
    /// now are skipped, not waited for.
    pub fn clean(&self, filter: impl Fn(&CachedEnv) -> bool) -> Result<Vec<CachedEnv>, EnvError> {
        let venvs = self.venvs_dir();
        let mut removed = Vec::new();
        for env in self.list()?.into_iter().filter(|env| filter(env)) {
            let Some(_lock) = FileLock::try_acquire(&lock_path(&venvs, &env.key))? else {
                debug!(key = %env.key, "skipping a venv being built");
                continue;
            };
            remove_path(&env.path)?;
            info!(key = %env.key, "removed venv");
            removed.push(env);
        }
        Ok(removed)
    }
}

fn describe(key: EnvKey, path: PathBuf) -> CachedEnv {
    let marker = Marker::read(&path).filter(|m| m.key == key.as_str());
    let last_used = marker
        .as_ref()
        .and_then(|_| fs::metadata(path.join(MARKER)).ok())
        .and_then(|meta| meta.modified().ok());
    let size_bytes = disk_usage(&path);
    match marker {
        Some(marker) => CachedEnv {
            key,
            path,
            complete: true,
            size_bytes,
            created: Some(UNIX_EPOCH + Duration::from_secs(marker.created_unix)),
            last_used,
            python_version: Some(marker.python_version),
            dependencies: marker.dependencies,
            packages: marker.packages,
            system_site_packages: marker.system_site_packages,
        },
        None => CachedEnv {
            key,
            path,
            complete: false,
            size_bytes,
            created: None,
            last_used: None,
            python_version: None,
            dependencies: Vec::new(),
            packages: Vec::new(),
            system_site_packages: false,
        },
    }
}

/// Sum of file sizes under `dir`, not following symlinks; unreadable parts count as 0.
fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(entry.path()),
                Ok(t) if t.is_file() => {
                    total += entry.metadata().map_or(0, |m| m.len());
                }
                _ => {}
            }
        }
    }
    total
}
