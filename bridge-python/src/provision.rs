//! Puts the child side into a venv: the `troupe` Python package and its native module
//! `troupe._native` (built by this crate's build script and embedded in it), so that
//! `<venv>/bin/python -m troupe` runs the child with nothing to build or install.
//!
//! Files are written to a temporary name and renamed into place, so a child already running
//! from the venv keeps its mapped module and a reader never sees half a file. A stamp (a hash
//! of everything written) makes provisioning an up-to-date venv a read of one small file.
//!
//! ```no_run
//! use troupe_bridge_python::env::{self, EnvCache, EnvSpec};
//! use troupe_bridge_python::provision;
//!
//! let venv = EnvCache::from_env()?.ensure(&EnvSpec::new(["numpy"]), &env::quiet)?;
//! let done = provision::provision(&venv)?;
//! println!("troupe package in {}", done.package_dir.display());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::env::Venv;

/// Name of the package directory in site-packages.
pub const PACKAGE_DIR: &str = "troupe";

/// File name of the native module in the package (stable ABI, any CPython >= 3.11).
pub const NATIVE_MODULE_FILE: &str = "_native.abi3.so";

/// File in the package directory holding the hash of what was written.
pub const STAMP_FILE: &str = ".troupe-provisioned";

/// The native module, as the build script built it.
const NATIVE_MODULE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/_native.abi3.so"));

/// The pure-Python package, file by file.
const PACKAGE_FILES: &[(&str, &str)] = &[
    ("__init__.py", include_str!("../python/troupe/__init__.py")),
    ("__main__.py", include_str!("../python/troupe/__main__.py")),
    ("_runtime.py", include_str!("../python/troupe/_runtime.py")),
    ("base.py", include_str!("../python/troupe/base.py")),
    ("calls.py", include_str!("../python/troupe/calls.py")),
    ("errors.py", include_str!("../python/troupe/errors.py")),
    ("media.py", include_str!("../python/troupe/media.py")),
    ("pool.py", include_str!("../python/troupe/pool.py")),
    ("_sandbox.py", include_str!("../python/troupe/_sandbox.py")),
];

/// Why the child side could not be put into a venv.
#[derive(Debug, Error)]
pub enum ProvisionError {
    /// The venv has no `lib/python3.X/site-packages` and its interpreter could not name its
    /// site-packages directory either.
    #[error("no site-packages directory in venv {venv}: {reason}")]
    NoSitePackages {
        /// The venv's root.
        venv: PathBuf,
        /// What was tried and how it failed.
        reason: String,
    },
    /// A file or directory could not be read, written or renamed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

impl ProvisionError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> ProvisionError + '_ {
        move |source| ProvisionError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where the package went and whether anything had to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// `<site-packages>/troupe`.
    pub package_dir: PathBuf,
    /// False when the venv already held this exact package (nothing was touched).
    pub written: bool,
}

/// Puts the `troupe` package and its native module into `venv`'s site-packages.
///
/// The package's bytecode is compiled too (with the venv's interpreter), so that a child
/// whose sandbox makes the venv read-only never has to write it.
pub fn provision(venv: &Venv) -> Result<Provisioned, ProvisionError> {
    let site = site_packages(&venv.root, Some(&venv.python))?;
    provision_into(&site, Some(&venv.python))
}

/// Puts the `troupe` package and its native module into `site_packages` (a directory on an
/// interpreter's path). Idempotent; safe to run from several processes at once.
pub fn provision_site_packages(site_packages: &Path) -> Result<Provisioned, ProvisionError> {
    provision_into(site_packages, None)
}

/// [`provision_site_packages`], compiling the bytecode with `python` when given.
fn provision_into(
    site_packages: &Path,
    python: Option<&Path>,
) -> Result<Provisioned, ProvisionError> {
    let package_dir = site_packages.join(PACKAGE_DIR);
    let stamp_path = package_dir.join(STAMP_FILE);
    let stamp = stamp();
    let current = fs::read_to_string(&stamp_path).is_ok_and(|s| s.trim() == stamp)
        && files().all(|(name, _)| package_dir.join(name).is_file());
    if current {
        return Ok(Provisioned {
            package_dir,
            written: false,
        });
    }
    fs::create_dir_all(&package_dir).map_err(ProvisionError::io(&package_dir))?;
    for (name, bytes) in files() {
        write_atomically(&package_dir.join(name), bytes)?;
    }
    remove_stale_modules(&package_dir)?;
    if let Some(python) = python {
        compile_bytecode(python, &package_dir);
    }
    // Last: a crash before this leaves no stamp, and the next run writes everything again.
    write_atomically(&stamp_path, format!("{stamp}\n").as_bytes())?;
    Ok(Provisioned {
        package_dir,
        written: true,
    })
}

/// The venv's site-packages directory: `lib/python3.X/site-packages` when there is exactly
/// one, else what `python` (the venv's interpreter, when given) says.
pub fn site_packages(venv: &Path, python: Option<&Path>) -> Result<PathBuf, ProvisionError> {
    let lib = venv.join("lib");
    let mut found: Vec<PathBuf> = match fs::read_dir(&lib) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path().join("site-packages"))
            .filter(|p| p.is_dir())
            .collect(),
        Err(_) => Vec::new(),
    };
    if found.len() == 1 {
        return Ok(found.remove(0));
    }
    let glob_result = format!(
        "{} directories match {}/python3*/site-packages",
        found.len(),
        lib.display()
    );
    let python = python.map_or_else(|| venv.join("bin").join("python"), Path::to_path_buf);
    ask_interpreter(&python).map_err(|reason| ProvisionError::NoSitePackages {
        venv: venv.to_path_buf(),
        reason: format!("{glob_result}; {reason}"),
    })
}

fn ask_interpreter(python: &Path) -> Result<PathBuf, String> {
    let output = Command::new(python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed: {}",
            python.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if path.is_dir() {
        Ok(path)
    } else {
        Err(format!(
            "{} names {}, which is no directory",
            python.display(),
            path.display()
        ))
    }
}

/// Compiles the package's modules to `__pycache__` (best effort: without bytecode the child
/// only starts slower).
fn compile_bytecode(python: &Path, package_dir: &Path) {
    let compiled = Command::new(python)
        .args(["-m", "compileall", "-q"])
        .arg(package_dir)
        .stdin(std::process::Stdio::null())
        .output();
    match compiled {
        Ok(out) if out.status.success() => {}
        other => tracing::warn!(
            package = %package_dir.display(),
            outcome = ?other.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()),
            "cannot compile the troupe package's bytecode; sandboxed children start slower"
        ),
    }
}

/// Every file of the package with its bytes.
fn files() -> impl Iterator<Item = (&'static str, &'static [u8])> {
    PACKAGE_FILES
        .iter()
        .map(|(name, text)| (*name, text.as_bytes()))
        .chain([(NATIVE_MODULE_FILE, NATIVE_MODULE)])
}

/// Hash of every file's name and bytes, computed once per process.
/// The hash of the package this build provisions (the native module and every Python file):
/// two builds share a venv only when they would put the same package in it.
pub(crate) fn stamp() -> &'static str {
    static STAMP: OnceLock<String> = OnceLock::new();
    STAMP.get_or_init(|| {
        let mut hash = Sha256::new();
        // Venvs provisioned before the bytecode was compiled get it once.
        hash.update(b"bytecode compiled\n");
        for (name, bytes) in files() {
            hash.update((name.len() as u64).to_le_bytes());
            hash.update(name.as_bytes());
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ProvisionError> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(
        ".{name}.{}-{:08x}.tmp",
        std::process::id(),
        temp_suffix()
    ));
    let written = fs::File::create(&temp)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| fs::rename(&temp, path));
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(ProvisionError::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(())
}

/// Removes `.py` files an older troupe wrote that this one no longer has.
fn remove_stale_modules(package_dir: &Path) -> Result<(), ProvisionError> {
    let entries = fs::read_dir(package_dir).map_err(ProvisionError::io(package_dir))?;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let known = PACKAGE_FILES.iter().any(|(file, _)| *file == name);
        if name.ends_with(".py") && !known {
            let path = entry.path();
            fs::remove_file(&path).map_err(ProvisionError::io(&path))?;
        }
    }
    Ok(())
}

/// A random number for temporary names (no extra dependency: the clock and the pid mixed).
fn temp_suffix() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}
