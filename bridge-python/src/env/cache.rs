//! The cache itself: finds a complete venv for a spec, or builds it under a lock.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use super::bootstrap::bootstrap_uv;
use super::error::EnvError;
use super::installer::{Installer, InstallerChoice, find_uv};
use super::interpreter::Interpreter;
use super::key::EnvKey;
use super::lock::FileLock;
use super::marker::Marker;
use super::progress::EnvProgress;
use super::spec::EnvSpec;

/// A ready venv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Venv {
    /// The venv's directory.
    pub root: PathBuf,
    /// Its interpreter (`root/bin/python`): what an extension's child process runs.
    pub python: PathBuf,
    /// Its key, the directory's name.
    pub key: EnvKey,
}

/// The venvs of one cache root, shared by every thread and process that uses that root.
/// Cheap to create; it remembers interpreter probes and the installer it found, nothing
/// that a failure could leave in a bad state.
#[derive(Debug)]
pub struct EnvCache {
    root: PathBuf,
    choice: InstallerChoice,
    interpreters: Mutex<HashMap<PathBuf, Interpreter>>,
    installers: Mutex<HashMap<PathBuf, Installer>>,
}

impl EnvCache {
    /// A cache rooted at `root` (venvs go to `root/venvs`), with [`InstallerChoice::Auto`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            choice: InstallerChoice::Auto,
            interpreters: Mutex::default(),
            installers: Mutex::default(),
        }
    }

    /// A cache at [`EnvCache::default_root`].
    pub fn from_env() -> Result<Self, EnvError> {
        Self::default_root()
            .map(Self::new)
            .ok_or(EnvError::NoCacheDir)
    }

    /// `$TROUPE_CACHE_DIR` if set, else `$XDG_CACHE_HOME/troupe`, else `~/.cache/troupe`
    /// (the platform's cache directory elsewhere).
    pub fn default_root() -> Option<PathBuf> {
        match std::env::var_os("TROUPE_CACHE_DIR").filter(|v| !v.is_empty()) {
            Some(dir) => Some(PathBuf::from(dir)),
            None => dirs::cache_dir().map(|dir| dir.join("troupe")),
        }
    }

    /// Picks how venvs are built (default [`InstallerChoice::Auto`]).
    pub fn with_installer(mut self, choice: InstallerChoice) -> Self {
        self.choice = choice;
        self
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding the venvs, one per key.
    pub fn venvs_dir(&self) -> PathBuf {
        self.root.join("venvs")
    }

    /// The key `spec` maps to; asks the interpreter the first time only.
    pub fn key(&self, spec: &EnvSpec) -> Result<EnvKey, EnvError> {
        let interpreter = self.interpreter(&spec.python)?;
        let dependencies = spec.normalized_dependencies()?;
        Ok(EnvKey::derive(
            &interpreter,
            &dependencies,
            spec.system_site_packages,
        ))
    }

    /// Returns the venv for `spec`, building it first when no complete one exists. When
    /// several threads or processes ask at once, one builds and the others wait, then reuse
    /// it. A half-built venv left by a crash is deleted and rebuilt.
    pub fn ensure(&self, spec: &EnvSpec, progress: &dyn Fn(EnvProgress)) -> Result<Venv, EnvError> {
        let interpreter = self.interpreter(&spec.python)?;
        let dependencies = spec.normalized_dependencies()?;
        let key = EnvKey::derive(&interpreter, &dependencies, spec.system_site_packages);
        let venvs = self.venvs_dir();
        let dir = venvs.join(key.as_str());
        if let Some(venv) = complete(&key, &dir) {
            progress(EnvProgress::Reused { key });
            return Ok(venv);
        }

        fs::create_dir_all(&venvs).map_err(EnvError::io(&venvs))?;
        let _lock = FileLock::acquire(&lock_path(&venvs, &key), || {
            info!(%key, "another thread or process is building this venv; waiting");
            progress(EnvProgress::Waiting { key: key.clone() });
        })?;
        if let Some(venv) = complete(&key, &dir) {
            progress(EnvProgress::Reused { key });
            return Ok(venv);
        }
        if fs::symlink_metadata(&dir).is_ok() {
            warn!(dir = %dir.display(), "removing a half-built venv");
            progress(EnvProgress::RemovingIncomplete { path: dir.clone() });
            remove_path(&dir)?;
        }

        let started = Instant::now();
        let installer = self.installer(&interpreter, &spec.python, progress);
        let built = build(
            &installer,
            &interpreter,
            spec,
            &dependencies,
            &key,
            &dir,
            progress,
        );
        if let Err(error) = built {
            // Leaves no half-built directory behind for `list` to show.
            let _ = remove_path(&dir);
            return Err(error);
        }
        let elapsed = started.elapsed();
        info!(%key, installer = %installer.kind(), ?elapsed, "venv ready");
        progress(EnvProgress::Done {
            key: key.clone(),
            elapsed,
        });
        Ok(venv_at(key, dir))
    }

    fn interpreter(&self, python: &Path) -> Result<Interpreter, EnvError> {
        let known = self
            .interpreters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(python)
            .cloned();
        if let Some(found) = known {
            return Ok(found);
        }
        let found = Interpreter::probe(python)?;
        self.interpreters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(python.to_owned(), found.clone());
        Ok(found)
    }

    fn installer(
        &self,
        interpreter: &Interpreter,
        python: &Path,
        progress: &dyn Fn(EnvProgress),
    ) -> Installer {
        let bootstrap = || match bootstrap_uv(&self.root.join("tools"), interpreter, progress) {
            Ok(uv) => Installer::Uv(uv),
            Err(error) => {
                warn!(
                    %error,
                    "no uv and troupe could not install one: using python -m venv + pip, \
                     which takes seconds per venv where uv takes ~20 ms \
                     (install uv, e.g. `pip install uv`, or set TROUPE_UV)"
                );
                Installer::Pip
            }
        };
        match &self.choice {
            InstallerChoice::Uv(uv) => Installer::Uv(uv.clone()),
            InstallerChoice::Pip => Installer::Pip,
            InstallerChoice::Bootstrap => bootstrap(),
            InstallerChoice::Auto => {
                let executable = &interpreter.executable;
                let known = self
                    .installers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(executable)
                    .cloned();
                if let Some(installer) = known {
                    return installer;
                }
                let installer = find_uv(interpreter, python).map_or_else(bootstrap, Installer::Uv);
                self.installers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(executable.clone(), installer.clone());
                installer
            }
        }
    }
}

fn build(
    installer: &Installer,
    interpreter: &Interpreter,
    spec: &EnvSpec,
    dependencies: &[String],
    key: &EnvKey,
    dir: &Path,
    progress: &dyn Fn(EnvProgress),
) -> Result<(), EnvError> {
    let summary = spec.summary();
    info!(%key, spec = %summary, installer = %installer.kind(), "building venv");
    progress(EnvProgress::Creating {
        key: key.clone(),
        installer: installer.kind(),
    });
    installer.create(
        interpreter,
        dir,
        spec.system_site_packages,
        &summary,
        progress,
    )?;
    let python = venv_python(dir);
    if !dependencies.is_empty() {
        progress(EnvProgress::Installing {
            count: dependencies.len(),
        });
        installer.install(&python, dependencies, &summary, progress)?;
    }
    let created_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Marker {
        key: key.to_string(),
        troupe_version: env!("CARGO_PKG_VERSION").to_owned(),
        python_version: interpreter.short_version().to_owned(),
        python_executable: interpreter.executable.clone(),
        dependencies: dependencies.to_vec(),
        system_site_packages: spec.system_site_packages,
        installer: installer.kind().to_string(),
        packages: installer.freeze(&python),
        created_unix,
    }
    .write(dir)
}

/// The venv at `dir` if its marker says it is complete and its interpreter still exists
/// (a dangling `bin/python` means the base interpreter was removed).
fn complete(key: &EnvKey, dir: &Path) -> Option<Venv> {
    let marker = Marker::read(dir)?;
    let venv = venv_at(key.clone(), dir.to_owned());
    if marker.key != key.as_str() || !venv.python.exists() {
        return None;
    }
    Marker::touch(dir);
    Some(venv)
}

fn venv_at(key: EnvKey, root: PathBuf) -> Venv {
    Venv {
        python: venv_python(&root),
        root,
        key,
    }
}

pub(crate) fn lock_path(venvs: &Path, key: &EnvKey) -> PathBuf {
    venvs.join(format!("{key}.lock"))
}

pub(crate) fn remove_path(path: &Path) -> Result<(), EnvError> {
    let removed = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    removed.map_err(EnvError::io(path))
}

/// A venv's scripts directory.
pub(crate) fn venv_bin(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts")
    } else {
        venv.join("bin")
    }
}

/// A venv's interpreter.
pub(crate) fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv_bin(venv).join("python.exe")
    } else {
        venv_bin(venv).join("python")
    }
}
