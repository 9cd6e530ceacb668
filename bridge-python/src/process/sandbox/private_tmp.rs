//! A child's own temp dir: the one place it may write (besides the `write` paths it is
//! given), removed with it.

use std::path::{Path, PathBuf};

use super::SandboxError;

/// `$TMPDIR/troupe-<name>-<random>` (mode 0700), removed (with what it holds) on drop.
#[derive(Debug)]
pub(crate) struct PrivateTmp {
    path: PathBuf,
}

impl PrivateTmp {
    /// Makes a fresh one for extension `name` in the host's temp dir.
    pub(crate) fn create(name: &str) -> Result<PrivateTmp, SandboxError> {
        use std::os::unix::fs::DirBuilderExt;
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(32)
            .collect();
        let path = std::env::temp_dir().join(format!("troupe-{safe}-{:016x}", fastrand::u64(..)));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(SandboxError::io(&path))?;
        Ok(PrivateTmp { path })
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
