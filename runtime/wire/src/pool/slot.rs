//! One allocation in a pool, as a process holds it: its own (it returns to the pool on drop)
//! or a peer's (dropping it tells the peer, through the connection it came from).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Releases;
use super::Shared;
use crate::shm::ShmRegion;

/// Names a slot across processes: its creator's region and the slot's offset there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlotKey {
    /// The region's shared-memory name.
    pub region: String,
    /// Where the slot starts in the region.
    pub offset: u64,
}

/// A slot of a pool, held by this process.
pub(crate) struct Slot {
    pub(crate) region: Arc<ShmRegion>,
    pub(crate) offset: usize,
    /// Bytes usable from `offset` (a buffer viewing the slot may be shorter).
    pub(crate) len: usize,
    pub(crate) owner: Owner,
}

pub(crate) enum Owner {
    /// This process's pool made the slot; dropping returns its range there.
    Local {
        pool: Arc<Shared>,
        region_id: u64,
        /// The range's size in the arena (`len` rounded up to the alignment).
        size: usize,
    },
    /// A peer made the slot and sent it here; dropping queues a release for that peer.
    Foreign { releases: Option<Arc<Releases>> },
}

impl Slot {
    pub(crate) fn key(&self) -> SlotKey {
        SlotKey {
            region: self.region.name().to_owned(),
            offset: self.offset as u64,
        }
    }

    pub(crate) fn is_local(&self) -> bool {
        matches!(self.owner, Owner::Local { .. })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.region.as_slice()[self.offset..self.offset + self.len]
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        match &self.owner {
            Owner::Local {
                pool,
                region_id,
                size,
            } => pool.free(*region_id, self.offset, *size),
            Owner::Foreign {
                releases: Some(releases),
            } => releases.push(self.key()),
            Owner::Foreign { releases: None } => {}
        }
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whose = if self.is_local() { "own" } else { "peer's" };
        write!(
            f,
            "{whose} slot {}+{} ({} bytes)",
            self.region.name(),
            self.offset,
            self.len
        )
    }
}
