//! Releases a process owes its peer: one per pool descriptor it decoded, queued when the
//! last reference made from that descriptor drops, sent in batches.

use std::sync::{Condvar, Mutex, MutexGuard};

use super::SlotKey;

/// Most keys one release frame carries.
pub const MAX_BATCH: usize = 4096;

/// How long a queued release waits for a frame going to the peer anyway (which takes it
/// along) before a release frame of its own is sent.
pub const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// The queue of slot releases owed to one peer, filled from any thread (often from a
/// destructor: a numpy array being collected) and drained by whoever sends frames.
#[derive(Debug, Default)]
pub struct Releases {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct State {
    keys: Vec<SlotKey>,
    closed: bool,
    /// The sending thread waits for a first release (not lingering): only then does a push
    /// wake it. A lingering thread wakes by itself, so steady traffic costs no wake-ups.
    idle: bool,
}

impl Releases {
    /// Queues a release of `key` (dropped when the queue is closed: the peer is gone).
    pub(crate) fn push(&self, key: SlotKey) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.keys.push(key);
        if state.idle {
            state.idle = false;
            self.ready.notify_all();
        }
    }

    /// Takes up to [`MAX_BATCH`] queued releases without waiting; empty when none.
    pub fn take(&self) -> Vec<SlotKey> {
        let mut state = self.lock();
        let n = state.keys.len().min(MAX_BATCH);
        state.keys.drain(..n).collect()
    }

    /// Waits for releases that no frame took along within [`LINGER`] and takes up to
    /// [`MAX_BATCH`] of them; `None` once closed.
    pub fn wait(&self) -> Option<Vec<SlotKey>> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if state.keys.is_empty() {
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
            if !state.closed && !state.keys.is_empty() {
                let n = state.keys.len().min(MAX_BATCH);
                return Some(state.keys.drain(..n).collect());
            }
        }
    }

    /// How many releases wait to be sent.
    pub fn pending(&self) -> usize {
        self.lock().keys.len()
    }

    /// The peer is gone: forget what is queued, ignore later pushes, wake [`Releases::wait`].
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.keys.clear();
        self.ready.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
