//! The bookkeeping of exports, apart from the driver so that it is testable without a GPU.

use std::collections::HashMap;

use super::{ExportError, PeerId};
use troupe_value::device::ExportId;

/// Exports by id, each with what keeps it alive (`T`) and how many holds each peer has on it.
#[derive(Debug)]
pub(crate) struct ExportTable<T> {
    next_id: u64,
    entries: HashMap<ExportId, Entry<T>>,
}

#[derive(Debug)]
struct Entry<T> {
    kept: T,
    /// Holds per peer; never zero (a peer with no hold is removed).
    holds: HashMap<PeerId, u32>,
}

impl<T> ExportTable<T> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        ExportTable {
            next_id: 1,
            entries: HashMap::new(),
        }
    }

    /// Keeps `kept` alive under a new id, with one hold by `peer`.
    pub(crate) fn insert(&mut self, kept: T, peer: PeerId) -> ExportId {
        let id = ExportId(self.next_id);
        self.next_id += 1;
        self.entries.insert(
            id,
            Entry {
                kept,
                holds: HashMap::from([(peer, 1)]),
            },
        );
        id
    }

    /// Adds a hold by `peer` on export `id` (its descriptor is sent once more).
    pub(crate) fn hold(&mut self, id: ExportId, peer: PeerId) -> Result<(), ExportError> {
        let entry = self
            .entries
            .get_mut(&id)
            .ok_or(ExportError::UnknownExport(id))?;
        *entry.holds.entry(peer).or_insert(0) += 1;
        Ok(())
    }

    /// Takes one hold of `peer` off export `id`; hands back what was kept alive when that was
    /// the last hold of any peer.
    pub(crate) fn release(&mut self, id: ExportId, peer: PeerId) -> Result<Option<T>, ExportError> {
        let entry = self
            .entries
            .get_mut(&id)
            .ok_or(ExportError::UnknownExport(id))?;
        let holds = entry
            .holds
            .get_mut(&peer)
            .ok_or(ExportError::NotHeld { export: id, peer })?;
        *holds -= 1;
        if *holds == 0 {
            entry.holds.remove(&peer);
        }
        if entry.holds.is_empty() {
            Ok(self.entries.remove(&id).map(|e| e.kept))
        } else {
            Ok(None)
        }
    }

    /// Drops every hold of `peer`; hands back what was kept alive only for it.
    pub(crate) fn peer_gone(&mut self, peer: PeerId) -> Vec<T> {
        let mut freed = Vec::new();
        let mut emptied = Vec::new();
        for (&id, entry) in &mut self.entries {
            if entry.holds.remove(&peer).is_some() && entry.holds.is_empty() {
                emptied.push(id);
            }
        }
        for id in emptied {
            if let Some(entry) = self.entries.remove(&id) {
                freed.push(entry.kept);
            }
        }
        freed
    }

    /// What export `id` keeps alive, when `peer` holds it.
    pub(crate) fn held_by(&self, id: ExportId, peer: PeerId) -> Option<&T> {
        self.entries
            .get(&id)
            .filter(|e| e.holds.contains_key(&peer))
            .map(|e| &e.kept)
    }

    /// Holds of `peer` on export `id` (0 for an unknown export).
    pub(crate) fn holds(&self, id: ExportId, peer: PeerId) -> u32 {
        self.entries
            .get(&id)
            .and_then(|e| e.holds.get(&peer).copied())
            .unwrap_or(0)
    }

    /// Exports still held by some peer.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const A: PeerId = PeerId(1);
    const B: PeerId = PeerId(2);

    #[test]
    fn an_export_lives_until_every_hold_is_released() -> Result<(), ExportError> {
        let memory = Arc::new(());
        let mut table = ExportTable::new();
        let id = table.insert(Arc::clone(&memory), A);
        table.hold(id, A)?;
        table.hold(id, B)?;
        assert_eq!((table.holds(id, A), table.holds(id, B)), (2, 1));

        assert!(table.release(id, A)?.is_none());
        assert!(table.release(id, B)?.is_none());
        assert_eq!(Arc::strong_count(&memory), 2, "A still holds it");
        let kept = table.release(id, A)?;
        assert!(kept.is_some());
        drop(kept);
        assert_eq!(Arc::strong_count(&memory), 1, "freed with the last hold");
        assert_eq!(table.len(), 0);
        Ok(())
    }

    #[test]
    fn ids_are_not_reused() {
        let mut table = ExportTable::new();
        let first = table.insert((), A);
        assert!(matches!(table.release(first, A), Ok(Some(()))));
        let second = table.insert((), A);
        assert_ne!(first, second);
    }

    #[test]
    fn releases_that_match_no_hold_are_errors() -> Result<(), ExportError> {
        let mut table = ExportTable::new();
        let id = table.insert((), A);
        assert_eq!(
            table.release(id, B).err(),
            Some(ExportError::NotHeld {
                export: id,
                peer: B
            })
        );
        let unknown = ExportId(999);
        assert_eq!(
            table.release(unknown, A).err(),
            Some(ExportError::UnknownExport(unknown))
        );
        assert_eq!(
            table.hold(unknown, A),
            Err(ExportError::UnknownExport(unknown))
        );
        // A peer cannot release twice what it held once, and the errors changed nothing.
        assert!(table.release(id, A)?.is_some());
        assert_eq!(
            table.release(id, A).err(),
            Some(ExportError::UnknownExport(id))
        );
        Ok(())
    }

    #[test]
    fn peer_gone_reclaims_what_only_that_peer_held() -> Result<(), ExportError> {
        let mut table = ExportTable::new();
        let only_a = table.insert("only a", A);
        table.hold(only_a, A)?;
        let shared = table.insert("shared", A);
        table.hold(shared, B)?;
        let only_b = table.insert("only b", B);

        let mut freed = table.peer_gone(A);
        freed.sort();
        assert_eq!(freed, vec!["only a"]);
        assert_eq!(table.len(), 2);
        assert_eq!(table.holds(shared, A), 0);
        assert_eq!(table.holds(shared, B), 1);
        // A late release from the dead peer is refused, not double counted.
        assert_eq!(
            table.release(shared, A).err(),
            Some(ExportError::NotHeld {
                export: shared,
                peer: A
            })
        );
        assert!(table.peer_gone(A).is_empty());

        let mut freed = table.peer_gone(B);
        freed.sort();
        assert_eq!(freed, vec!["only b", "shared"]);
        assert_eq!(table.len(), 0);
        let _ = only_b;
        Ok(())
    }
}
