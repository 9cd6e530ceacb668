//! Which files a sandboxed child may reach: the system's, its Python installation, its venv
//! and module paths read-only; its private temp dir read-write. Not `/dev/shm`: the pool's
//! regions are memory files handed over as descriptors, and a child needs no name there.
//! (Python's `multiprocessing` semaphores live there: an extension that uses them lists
//! `/dev/shm` in its `write` paths.)

use std::path::{Path, PathBuf};

use super::SandboxConfig;

/// System folders the interpreter, its shared libraries and numpy's need, read-only:
/// binaries and libraries, `/etc` (ld.so's cache, passwd, locales, certificates),
/// `/proc` and `/sys` (CPU counts and topology for BLAS threads).
const SYSTEM_READ: &[&str] = &[
    "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys",
];

/// Devices any child may read.
const DEVICES_READ: &[&str] = &["/dev/zero", "/dev/random", "/dev/urandom", "/dev/full"];

/// Devices any child may write.
const DEVICES_WRITE: &[&str] = &["/dev/null"];

/// GPU devices (`gpu = true`), read-write.
const GPU_DEVICES: &[&str] = &["/dev/dri"];

/// What one child is and where its files are.
#[derive(Debug, Clone)]
pub(crate) struct Subject<'a> {
    /// The venv's interpreter (`<venv>/bin/python`, usually a symlink).
    pub(crate) python: &'a Path,
    /// The venv's root.
    pub(crate) venv: &'a Path,
    /// The extension's module paths.
    pub(crate) sys_path: &'a [PathBuf],
    /// Its working directory, when it has its own.
    pub(crate) cwd: Option<&'a Path>,
}

/// The paths one child may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AllowedPaths {
    /// Read (and execute).
    pub(crate) read: Vec<PathBuf>,
    /// Read and write.
    pub(crate) write: Vec<PathBuf>,
}

impl AllowedPaths {
    /// What `subject` may reach under `config`, with `private_tmp` its temp dir. Paths that
    /// do not exist are left out.
    pub(crate) fn of(
        subject: &Subject<'_>,
        config: &SandboxConfig,
        private_tmp: &Path,
    ) -> AllowedPaths {
        let mut read: Vec<PathBuf> = SYSTEM_READ
            .iter()
            .chain(DEVICES_READ)
            .map(PathBuf::from)
            .collect();
        read.extend(python_installation(subject.python, subject.venv));
        read.push(subject.venv.to_path_buf());
        read.extend(subject.sys_path.iter().cloned());
        read.extend(subject.cwd.map(Path::to_path_buf));
        read.extend(config.read.iter().cloned());
        let mut write: Vec<PathBuf> = DEVICES_WRITE.iter().map(PathBuf::from).collect();
        write.push(private_tmp.to_path_buf());
        if config.gpu {
            write.extend(GPU_DEVICES.iter().map(PathBuf::from));
            write.extend(nvidia_devices());
        }
        write.extend(config.write.iter().cloned());
        let exists = |p: &PathBuf| p.exists();
        read.retain(exists);
        write.retain(exists);
        read.sort();
        read.dedup();
        write.sort();
        write.dedup();
        AllowedPaths { read, write }
    }
}

/// The Python installation the venv runs on: the prefix of `pyvenv.cfg`'s `home`, and the
/// prefix of the file the venv's interpreter symlink resolves to (both, resolved).
fn python_installation(python: &Path, venv: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(home) = pyvenv_home(venv)
        && let Ok(home) = home.canonicalize()
    {
        found.extend(home.parent().map(Path::to_path_buf));
    }
    if let Ok(real) = python.canonicalize() {
        // `<prefix>/bin/python3.X`: the prefix holds `lib/python3.X` and `libpython`.
        found.extend(real.parent().and_then(Path::parent).map(Path::to_path_buf));
        found.push(real);
    }
    // A prefix of `/` (an interpreter in `/bin`) would open everything.
    found.retain(|p| p.parent().is_some());
    found
}

/// `home = ...` of `<venv>/pyvenv.cfg`: the directory of the base interpreter.
fn pyvenv_home(venv: &Path) -> Option<PathBuf> {
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok()?;
    cfg.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "home").then(|| PathBuf::from(value.trim()))
    })
}

/// `/dev/nvidia*`.
fn nvidia_devices() -> Vec<PathBuf> {
    std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("nvidia"))
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_venv_reaches_its_base_interpreter_and_nothing_of_other_venvs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("base");
        std::fs::create_dir_all(base.join("bin")).expect("base");
        std::fs::write(base.join("bin/python3.12"), b"").expect("interpreter");
        let venv = dir.path().join("venv");
        std::fs::create_dir_all(venv.join("bin")).expect("venv");
        std::fs::write(
            venv.join("pyvenv.cfg"),
            format!("home = {}\nversion = 3.12\n", base.join("bin").display()),
        )
        .expect("cfg");
        std::os::unix::fs::symlink(base.join("bin/python3.12"), venv.join("bin/python"))
            .expect("symlink");
        let other = dir.path().join("other-venv");
        std::fs::create_dir_all(&other).expect("other");
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp");
        let subject = Subject {
            python: &venv.join("bin/python"),
            venv: &venv,
            sys_path: &[],
            cwd: None,
        };
        let allowed = AllowedPaths::of(&subject, &SandboxConfig::default(), &tmp);
        let base = base.canonicalize().expect("base");
        assert!(allowed.read.contains(&base), "{allowed:?}");
        assert!(allowed.read.contains(&venv));
        assert!(!allowed.read.iter().any(|p| p.starts_with(&other)));
        assert!(!allowed.read.contains(&dir.path().to_path_buf()));
        assert!(allowed.write.contains(&tmp));
        assert!(!allowed.write.contains(&venv));
    }
}
