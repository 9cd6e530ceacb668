//! Named shared-memory regions that several processes map.
//!
//! A region is a file in `/dev/shm` mapped read-write. The process that created it owns the
//! name and unlinks it when its last handle drops; other processes open it by name and keep
//! their mapping alive for as long as they hold a handle, even after the name is gone.
//! [`open`] maps each name at most once per process: later opens return the same mapping.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use memmap2::MmapRaw;
use thiserror::Error;

/// Prefix of every region name troupe creates; names without it are refused on open.
pub const NAME_PREFIX: &str = "troupe-";

const SHM_DIR: &str = "/dev/shm";
const MAX_NAME_LEN: usize = 96;

/// Why a region could not be created or opened.
#[derive(Debug, Error)]
pub enum ShmError {
    /// The name is not one troupe creates (prefix, length or characters).
    #[error("invalid shared-memory region name {0:?}")]
    InvalidName(String),
    /// A zero-length region was asked for.
    #[error("a shared-memory region cannot be empty")]
    Empty,
    /// A slice was asked for that does not lie inside the region.
    #[error("slice {offset}+{len} is outside region {name} of {region_len} bytes")]
    OutOfBounds {
        /// The region's name.
        name: String,
        /// Start of the slice.
        offset: usize,
        /// Length of the slice.
        len: usize,
        /// Length of the region.
        region_len: usize,
    },
    /// The operating system refused to create, size or map the region.
    #[error("shared-memory region {name}: {source}")]
    Io {
        /// The region's name.
        name: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

/// A mapped shared-memory region.
///
/// The bytes are shared with other processes: troupe's ownership rules (see
/// `docs/semantics.md`) say who may write them and when. Reading through [`ShmRegion::as_slice`]
/// is safe as long as no process writes the part being read, which those rules guarantee for
/// every buffer handed to an actor.
pub struct ShmRegion {
    name: String,
    map: MmapRaw,
    owner: bool,
}

impl std::fmt::Debug for ShmRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmRegion")
            .field("name", &self.name)
            .field("len", &self.len())
            .field("owner", &self.owner)
            .finish()
    }
}

impl ShmRegion {
    /// Creates a new zero-filled region of `len` bytes with a fresh name.
    pub fn create(len: usize) -> Result<Arc<ShmRegion>, ShmError> {
        if len == 0 {
            return Err(ShmError::Empty);
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{NAME_PREFIX}{}-{}-{:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        let io_err = |source| ShmError::Io {
            name: name.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path_of(&name))
            .map_err(io_err)?;
        let region = file
            .set_len(len as u64)
            .and_then(|()| MmapRaw::map_raw(&file))
            .map(|map| ShmRegion {
                name: name.clone(),
                map,
                owner: true,
            });
        if region.is_err() {
            let _ = std::fs::remove_file(path_of(&name));
        }
        let region = Arc::new(region.map_err(io_err)?);
        cache().insert(region.name.clone(), Arc::downgrade(&region));
        Ok(region)
    }

    /// Creates a region holding a copy of `bytes`.
    pub fn create_from(bytes: &[u8]) -> Result<Arc<ShmRegion>, ShmError> {
        let region = ShmRegion::create(bytes.len())?;
        // SAFETY: the region was just created and no other handle to it exists yet.
        unsafe { region.as_mut_slice() }.copy_from_slice(bytes);
        Ok(region)
    }

    /// The name other processes open the region by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always false: regions are never empty.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Whether this process created the region (and unlinks its name on drop).
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// The region's bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is valid for `len` bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.map.len()) }
    }

    /// The region's bytes, writable.
    ///
    /// # Safety
    /// The caller must ensure that nobody reads or writes the bytes it writes while it holds the
    /// slice, in this process or another: in practice, that the part written has not been
    /// handed to anyone yet.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: valid mapping; exclusivity is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr(), self.map.len()) }
    }
}

impl Drop for ShmRegion {
    fn drop(&mut self) {
        let mut cache = cache();
        if cache.get(&self.name).is_some_and(|w| w.strong_count() == 0) {
            cache.remove(&self.name);
        }
        drop(cache);
        if self.owner {
            let _ = std::fs::remove_file(path_of(&self.name));
        }
    }
}

/// Opens the region called `name`, mapping it if this process has not mapped it yet.
pub fn open(name: &str) -> Result<Arc<ShmRegion>, ShmError> {
    validate_name(name)?;
    let mut cache = cache();
    if let Some(region) = cache.get(name).and_then(Weak::upgrade) {
        return Ok(region);
    }
    let io_err = |source| ShmError::Io {
        name: name.to_owned(),
        source,
    };
    let file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path_of(name))
        .map_err(io_err)?;
    let map = MmapRaw::map_raw(&file).map_err(io_err)?;
    let region = Arc::new(ShmRegion {
        name: name.to_owned(),
        map,
        owner: false,
    });
    cache.insert(name.to_owned(), Arc::downgrade(&region));
    Ok(region)
}

/// Removes the name of a region (mappings stay valid); errors are ignored: it may be gone.
pub(crate) fn unlink(name: &str) {
    if validate_name(name).is_ok() {
        let _ = std::fs::remove_file(path_of(name));
    }
}

/// Removes the names of every region process `pid` created (they carry its pid), and
/// returns how many went. For a host after a child ended: a killed process cannot remove
/// its own. Mappings that other processes hold stay valid.
pub fn remove_regions_of(pid: u32) -> usize {
    region_files_of(pid)
        .filter(|path| std::fs::remove_file(path).is_ok())
        .count()
}

/// How many region names process `pid` has in `/dev/shm` now.
pub fn count_regions_of(pid: u32) -> usize {
    region_files_of(pid).count()
}

/// The `/dev/shm` files of the regions process `pid` created (none if the directory
/// cannot be read).
fn region_files_of(pid: u32) -> impl Iterator<Item = PathBuf> {
    let prefix = format!("{NAME_PREFIX}{pid}-");
    std::fs::read_dir(SHM_DIR)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(move |e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .map(|e| e.path())
}

fn validate_name(name: &str) -> Result<(), ShmError> {
    let ok = name.starts_with(NAME_PREFIX)
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ShmError::InvalidName(name.to_owned()))
    }
}

fn path_of(name: &str) -> PathBuf {
    PathBuf::from(SHM_DIR).join(name)
}

static CACHE: LazyLock<Mutex<HashMap<String, Weak<ShmRegion>>>> = LazyLock::new(Mutex::default);

fn cache() -> MutexGuard<'static, HashMap<String, Weak<ShmRegion>>> {
    CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_region_is_shared_with_an_opener_and_unlinked_on_drop() {
        let region = ShmRegion::create_from(b"hello shared world").unwrap();
        let name = region.name().to_owned();
        let opened = open(&name).unwrap();
        assert!(Arc::ptr_eq(&region, &opened), "opened once per process");
        assert_eq!(opened.as_slice(), b"hello shared world");
        drop(opened);
        drop(region);
        assert!(!path_of(&name).exists());
        assert!(matches!(open(&name), Err(ShmError::Io { .. })));
    }

    #[test]
    fn names_outside_troupe_are_refused() {
        for bad in ["../etc/passwd", "other", "troupe-../../x", "troupe-a b"] {
            assert!(matches!(open(bad), Err(ShmError::InvalidName(_))), "{bad}");
        }
        assert!(matches!(ShmRegion::create(0), Err(ShmError::Empty)));
    }
}
