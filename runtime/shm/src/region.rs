//! Shared-memory regions: anonymous memory files that travel between processes as file
//! descriptors, never by name.
//!
//! A region is a `memfd`: it has no name in any file system, so no process can list or open
//! it; a process maps it only once it was handed the descriptor (troupe passes them over
//! the connection to a peer, see `troupe-protocol`). The creator maps it read-write, then
//! seals it: it can never shrink (so no mapping of it can fault with `SIGBUS`) nor grow, and
//! nobody can map it writable again (`F_SEAL_FUTURE_WRITE`): a peer that receives the
//! descriptor can only read. A region received from a peer is checked ([`adopt`]: a sealed
//! memory file of a sane size) and mapped read-only. Memory files vanish with the last
//! descriptor and mapping: nothing is left behind when a process dies, however it dies.
//!
//! Regions are known across processes by their inode number ([`ShmRegion::id`]), the same in
//! every process that holds the file; each process maps a region at most once (a process-wide
//! table of live regions by id).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use memmap2::{MmapOptions, MmapRaw};
use rustix::fs::{MemfdFlags, SealFlags};
use thiserror::Error;

/// The largest region a peer may hand over (64 GiB): a mapping is address space, and a peer
/// must not make this process reserve an absurd amount of it.
pub const MAX_REGION_LEN: u64 = 64 << 30;

/// Seals a creator puts on its regions: size fixed, never mapped writable again.
const CREATOR_SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::FUTURE_WRITE)
    .union(SealFlags::SEAL);

/// Why a region could not be created, received or viewed.
#[derive(Debug, Error)]
pub enum ShmError {
    /// A zero-length region was asked for.
    #[error("a shared-memory region cannot be empty")]
    Empty,
    /// A slice was asked for that does not lie inside the region.
    #[error("slice {offset}+{len} is outside region {region} of {region_len} bytes")]
    OutOfBounds {
        /// The region's id.
        region: u64,
        /// Start of the slice.
        offset: usize,
        /// Length of the slice.
        len: usize,
        /// Length of the region.
        region_len: usize,
    },
    /// A descriptor from a peer is not an anonymous memory file.
    #[error("the descriptor is not a shared-memory region")]
    NotARegion,
    /// A region from a peer is not sealed against shrinking: it could vanish under a
    /// mapping (`SIGBUS`).
    #[error("region {region} is not sealed against shrinking")]
    NotSealed {
        /// The region's id.
        region: u64,
    },
    /// A region from a peer is empty or larger than [`MAX_REGION_LEN`].
    #[error("region {region} has a size of {len} bytes, outside 1..={MAX_REGION_LEN}")]
    BadSize {
        /// The region's id.
        region: u64,
        /// Its size.
        len: u64,
    },
    /// The operating system refused to create, seal, inspect or map a region.
    #[error("shared-memory region: {0}")]
    Io(#[from] io::Error),
}

/// A mapped shared-memory region.
///
/// The bytes are shared with other processes: troupe's ownership rules (see
/// `docs/semantics.md`, *Buffers*) say who may write them and when. Only the creator can
/// write (its mapping is the only writable one there will ever be). Reading through
/// [`ShmRegion::as_slice`] is sound as long as nobody writes the part being read, which those
/// rules promise for every buffer handed to an actor; a peer that breaks them can only
/// change the values read from its own regions.
pub struct ShmRegion {
    id: u64,
    /// The device its inode lives on (ids are unique per device).
    device: u64,
    map: MmapRaw,
    fd: OwnedFd,
    owner: bool,
}

impl std::fmt::Debug for ShmRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmRegion")
            .field("id", &self.id)
            .field("len", &self.len())
            .field("owner", &self.owner)
            .finish()
    }
}

impl ShmRegion {
    /// Creates a new zero-filled region of `len` bytes, mapped read-write here and sealed.
    ///
    /// # Errors
    /// `len` is 0, or the system refused to create, size, map or seal the memory file.
    pub fn create(len: usize) -> Result<Arc<ShmRegion>, ShmError> {
        if len == 0 {
            return Err(ShmError::Empty);
        }
        let fd =
            rustix::fs::memfd_create("troupe", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
                .map_err(io::Error::from)?;
        rustix::fs::ftruncate(&fd, len as u64).map_err(io::Error::from)?;
        let map = MmapOptions::new().len(len).map_raw(&fd)?;
        // After the writable mapping exists: it stays writable, no later one can be.
        rustix::fs::fcntl_add_seals(&fd, CREATOR_SEALS).map_err(io::Error::from)?;
        let stat = rustix::fs::fstat(&fd).map_err(io::Error::from)?;
        let region = Arc::new(ShmRegion {
            id: stat.st_ino,
            device: stat.st_dev,
            map,
            fd,
            owner: true,
        });
        live().insert(region.id, Arc::downgrade(&region));
        Ok(region)
    }

    /// Creates a region holding a copy of `bytes`.
    ///
    /// # Errors
    /// As [`ShmRegion::create`].
    pub fn create_from(bytes: &[u8]) -> Result<Arc<ShmRegion>, ShmError> {
        let region = ShmRegion::create(bytes.len())?;
        // SAFETY: the region was just created and no other handle to it exists yet.
        unsafe { region.as_mut_slice() }.copy_from_slice(bytes);
        Ok(region)
    }

    /// The id every process holding the region knows it by (its inode number).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always false: regions are never empty.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Whether this process created the region (and so is the only one that can write it).
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// The region's bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is valid for `len` bytes for as long as `self` lives, and the
        // file can never shrink under it (sealed).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.map.len()) }
    }

    /// The region's bytes, writable.
    ///
    /// # Safety
    /// The region must be this process's own ([`ShmRegion::is_owner`]; a peer's is mapped
    /// read-only and writing it faults), and the caller must ensure that nobody reads or
    /// writes the bytes it writes while it holds the slice, in this process or another: in
    /// practice, that the part written has not been handed to anyone yet.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        debug_assert!(self.owner, "only a region's creator writes it");
        // SAFETY: valid mapping; ownership and exclusivity are the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr(), self.map.len()) }
    }
}

impl AsFd for ShmRegion {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for ShmRegion {
    fn drop(&mut self) {
        let mut live = live();
        if live.get(&self.id).is_some_and(|w| w.strong_count() == 0) {
            live.remove(&self.id);
        }
    }
}

/// The region a peer handed over as `fd`: this process's mapping of it if it has one
/// already (the descriptor is then closed), else a new read-only mapping, once the file is
/// checked to be a memory file sealed against shrinking, of 1 to [`MAX_REGION_LEN`] bytes.
///
/// # Errors
/// The descriptor is not such a file ([`ShmError::NotARegion`], [`ShmError::NotSealed`],
/// [`ShmError::BadSize`]), or it cannot be inspected or mapped.
pub fn adopt(fd: OwnedFd) -> Result<Arc<ShmRegion>, ShmError> {
    let stat = rustix::fs::fstat(&fd).map_err(io::Error::from)?;
    let id = stat.st_ino;
    if let Some(region) = live().get(&id).and_then(Weak::upgrade)
        && region.device == stat.st_dev
    {
        return Ok(region);
    }
    // Memory files live on the kernel's internal shared-memory mount; so do ours.
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile
        || Some(stat.st_dev) != memory_file_device()
    {
        return Err(ShmError::NotARegion);
    }
    let seals = rustix::fs::fcntl_get_seals(&fd).map_err(|_| ShmError::NotARegion)?;
    if !seals.contains(SealFlags::SHRINK) {
        return Err(ShmError::NotSealed { region: id });
    }
    let len = u64::try_from(stat.st_size).unwrap_or(0);
    if len == 0 || len > MAX_REGION_LEN {
        return Err(ShmError::BadSize { region: id, len });
    }
    let len = usize::try_from(len).map_err(|_| ShmError::BadSize { region: id, len })?;
    let map = MmapOptions::new().len(len).map_raw_read_only(&fd)?;
    let region = Arc::new(ShmRegion {
        id,
        device: stat.st_dev,
        map,
        fd,
        owner: false,
    });
    let mut live = live();
    // Two threads may adopt the same region at once: the first one in the table wins.
    if let Some(mapped) = live.get(&id).and_then(Weak::upgrade) {
        return Ok(mapped);
    }
    live.insert(id, Arc::downgrade(&region));
    Ok(region)
}

/// The device memory files live on (learned once from one of our own).
fn memory_file_device() -> Option<u64> {
    static DEVICE: LazyLock<Option<u64>> = LazyLock::new(|| {
        let fd = rustix::fs::memfd_create("troupe-probe", MemfdFlags::CLOEXEC).ok()?;
        rustix::fs::fstat(&fd).ok().map(|stat| stat.st_dev)
    });
    *DEVICE
}

static LIVE: LazyLock<Mutex<HashMap<u64, Weak<ShmRegion>>>> = LazyLock::new(Mutex::default);

fn live() -> MutexGuard<'static, HashMap<u64, Weak<ShmRegion>>> {
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    fn dup(region: &ShmRegion) -> OwnedFd {
        region.as_fd().try_clone_to_owned().unwrap()
    }

    #[test]
    fn a_region_is_one_mapping_per_process_and_travels_as_a_descriptor() {
        let region = ShmRegion::create_from(b"hello shared world").unwrap();
        assert!(region.is_owner());
        let again = adopt(dup(&region)).unwrap();
        assert!(Arc::ptr_eq(&region, &again), "mapped once per process");
        assert_eq!(again.as_slice(), b"hello shared world");
        assert!(matches!(ShmRegion::create(0), Err(ShmError::Empty)));
    }

    #[test]
    fn a_region_cannot_be_shrunk_grown_or_mapped_writable_by_whoever_receives_it() {
        let region = ShmRegion::create(4096).unwrap();
        let fd = dup(&region);
        assert!(rustix::fs::ftruncate(&fd, 0).is_err(), "no shrinking");
        assert!(rustix::fs::ftruncate(&fd, 1 << 20).is_err(), "no growing");
        assert!(
            MmapOptions::new().len(4096).map_raw(&fd).is_err(),
            "no writable mapping"
        );
        assert!(rustix::io::write(&fd, b"x").is_err(), "no writes");
        assert!(MmapOptions::new().len(4096).map_raw_read_only(&fd).is_ok());
        // The creator's own mapping stays writable.
        // SAFETY: nobody else reads this region.
        unsafe { region.as_mut_slice()[0] = 9 };
        assert_eq!(region.as_slice()[0], 9);
    }

    #[test]
    fn descriptors_that_are_not_sealed_memory_files_are_refused() {
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert!(matches!(
            adopt(OwnedFd::from(file)),
            Err(ShmError::NotARegion)
        ));
        let unsealed = rustix::fs::memfd_create("x", MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&unsealed, 4096).unwrap();
        assert!(matches!(adopt(unsealed), Err(ShmError::NotSealed { .. })));
        let sealable =
            rustix::fs::memfd_create("x", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&sealable, MAX_REGION_LEN + 1).unwrap();
        rustix::fs::fcntl_add_seals(&sealable, SealFlags::SHRINK).unwrap();
        assert!(matches!(adopt(sealable), Err(ShmError::BadSize { .. })));
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(a.as_raw_fd() > 0);
        assert!(matches!(adopt(OwnedFd::from(a)), Err(ShmError::NotARegion)));
    }
}
