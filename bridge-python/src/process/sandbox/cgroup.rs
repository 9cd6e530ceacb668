//! A cgroup v2 of one child (`strict`, where this process may make one): `memory.max` and
//! `pids.max`, removed when the child is gone.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Most processes and threads a strict child may have (BLAS threads and subprocesses
/// included).
const PIDS_MAX: u32 = 4096;

/// A child's cgroup; removed on drop (once the child is gone it is empty).
#[derive(Debug)]
pub(crate) struct ChildCgroup {
    dir: PathBuf,
}

impl ChildCgroup {
    /// Makes `troupe-<name>-<random>` under `parent` with its limits; returns it and its
    /// `cgroup.procs`, opened for the child to move itself in.
    pub(crate) fn create(
        parent: &Path,
        name: &str,
        memory_limit: Option<u64>,
    ) -> std::io::Result<(ChildCgroup, OwnedFd)> {
        let safe: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(32)
            .collect();
        let dir = parent.join(format!("troupe-{safe}-{:08x}", fastrand::u32(..)));
        std::fs::create_dir(&dir)?;
        let cgroup = ChildCgroup { dir };
        let set = |file: &str, value: String| -> std::io::Result<()> {
            std::fs::OpenOptions::new()
                .write(true)
                .open(cgroup.dir.join(file))?
                .write_all(value.as_bytes())
        };
        if let Some(limit) = memory_limit {
            set("memory.max", limit.to_string())?;
        }
        set("pids.max", PIDS_MAX.to_string())?;
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(cgroup.dir.join("cgroup.procs"))?;
        Ok((cgroup, procs.into()))
    }
}

impl Drop for ChildCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}
