//! An exclusive lock on a file, held across threads and processes, released on drop.
//!
//! std's `File::lock` (`flock` on Linux) locks an open file description, so two threads that
//! each open the file exclude each other as two processes do. Lock files are never deleted:
//! deleting one while a waiter holds it open would let a third party lock a new file and
//! build alongside the waiter.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use super::error::EnvError;

/// Holds the lock until dropped.
#[derive(Debug)]
pub(crate) struct FileLock {
    file: File,
}

impl FileLock {
    /// Blocks until the lock at `path` is held; calls `on_wait` first when someone else
    /// holds it.
    pub(crate) fn acquire(path: &Path, on_wait: impl FnOnce()) -> Result<Self, EnvError> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => return Ok(Self { file }),
            Err(TryLockError::WouldBlock) => on_wait(),
            Err(TryLockError::Error(source)) => return Err(EnvError::io(path)(source)),
        }
        file.lock().map_err(EnvError::io(path))?;
        Ok(Self { file })
    }

    /// Takes the lock at `path` if it is free; `None` when someone else holds it.
    pub(crate) fn try_acquire(path: &Path) -> Result<Option<Self>, EnvError> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(source)) => Err(EnvError::io(path)(source)),
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first just says so.
        let _ = self.file.unlock();
    }
}

fn open(path: &Path) -> Result<File, EnvError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(EnvError::io(path))
}
