//! Releases a process owes its peer: one per pool descriptor it decoded, queued when the
//! last reference made from that descriptor drops, and one per device array it imported,
//! queued when the import ends; sent in batches.

use std::sync::{Condvar, Mutex, MutexGuard};

use troupe_shm::pool::{SlotKey, SlotReleases};
use troupe_value::device::{ExportId, ExportReleases};

/// Most slot releases one frame carries (a `ReleaseSlots` frame, or the `released` list of an
/// envelope).
pub const MAX_RELEASES_PER_FRAME: usize = 4096;

/// How long a queued release waits for a frame going to the peer anyway (which takes it
/// along) before a release frame of its own is sent.
pub const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// The queue of releases owed to one peer (of its pool slots, and of its exported device
/// arrays), filled from any thread (often from a destructor: a numpy array being collected)
/// and drained by whoever sends frames.
#[derive(Debug, Default)]
pub struct Releases {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct State {
    keys: Vec<SlotKey>,
    exports: Vec<ExportId>,
    closed: bool,
    /// The sending thread waits for a first release (not lingering): only then does a push
    /// wake it. A lingering thread wakes by itself, so steady traffic costs no wake-ups.
    idle: bool,
}

/// A release of `key` is dropped when the queue is closed: the peer is gone.
impl SlotReleases for Releases {
    fn release_slot(&self, key: SlotKey) {
        self.queue(|state| state.keys.push(key));
    }
}

/// A release of `export` is dropped when the queue is closed: the peer is gone.
impl ExportReleases for Releases {
    fn release_export(&self, export: ExportId) {
        self.queue(|state| state.exports.push(export));
    }
}

impl Releases {
    /// Queues a release with `add` unless the queue is closed, and wakes a sending thread
    /// waiting for a first release.
    fn queue(&self, add: impl FnOnce(&mut State)) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        add(&mut state);
        if state.idle {
            state.idle = false;
            self.ready.notify_all();
        }
    }

    /// Puts back releases taken for a frame that was never sent (ahead of newer ones).
    pub fn restore(&self, keys: Vec<SlotKey>, exports: Vec<ExportId>) {
        if keys.is_empty() && exports.is_empty() {
            return;
        }
        self.queue(|state| {
            state.keys.splice(0..0, keys);
            state.exports.splice(0..0, exports);
        });
    }

    /// Takes every queued device export release without waiting; empty when none. They ride
    /// on the envelope of any frame (`Envelope::exports_released`).
    pub fn take_exports(&self) -> Vec<ExportId> {
        std::mem::take(&mut self.lock().exports)
    }

    /// Takes up to [`MAX_RELEASES_PER_FRAME`] queued slot releases without waiting; empty when
    /// none.
    pub fn take(&self) -> Vec<SlotKey> {
        let mut state = self.lock();
        let n = state.keys.len().min(MAX_RELEASES_PER_FRAME);
        state.keys.drain(..n).collect()
    }

    /// Waits for releases that no frame took along within [`LINGER`] and takes up to
    /// [`MAX_RELEASES_PER_FRAME`] slot releases; `None` once closed. The batch is empty when
    /// only device export releases are due: the caller's frame carries those on its envelope
    /// ([`Releases::take_exports`]).
    pub fn wait(&self) -> Option<Vec<SlotKey>> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if state.keys.is_empty() && state.exports.is_empty() {
                state.idle = true;
                state = self.ready.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // A frame sealed meanwhile takes them along: no frame of their own needed.
            state.idle = false;
            let (after, _) = self
                .ready
                .wait_timeout(state, LINGER)
                .unwrap_or_else(|p| p.into_inner());
            state = after;
            let due = !(state.keys.is_empty() && state.exports.is_empty());
            if !state.closed && due {
                let n = state.keys.len().min(MAX_RELEASES_PER_FRAME);
                return Some(state.keys.drain(..n).collect());
            }
        }
    }

    /// How many slot releases wait to be sent.
    pub fn pending(&self) -> usize {
        self.lock().keys.len()
    }

    /// How many device export releases wait to be sent.
    pub fn pending_exports(&self) -> usize {
        self.lock().exports.len()
    }

    /// The peer is gone: forget what is queued, ignore later pushes, wake [`Releases::wait`].
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.keys.clear();
        state.exports.clear();
        self.ready.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
