//! Calls the host has sent to a child and not yet had answered.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;
use troupe_runtime::CallResult;
use troupe_wire::CallError;

/// The calls in flight to one child process. Once the child is gone the table is closed:
/// every call in it fails at once, and later inserts are refused.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    inner: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    calls: HashMap<u64, oneshot::Sender<CallResult>>,
    closed: Option<CallError>,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers call `id`, answered through `reply`. Once the child is gone the table is
    /// closed and `reply` comes back, so the call can wait for the next instance.
    pub(crate) fn insert(
        &self,
        id: u64,
        reply: oneshot::Sender<CallResult>,
    ) -> Result<(), oneshot::Sender<CallResult>> {
        let mut table = self.lock();
        if table.closed.is_some() {
            return Err(reply);
        }
        table.calls.insert(id, reply);
        Ok(())
    }

    /// Answers call `id`; returns false if it was not pending (cancelled, timed out).
    pub(crate) fn complete(&self, id: u64, result: CallResult) -> bool {
        let sender = self.lock().calls.remove(&id);
        match sender {
            Some(tx) => {
                let _ = tx.send(result);
                true
            }
            None => false,
        }
    }

    /// Forgets call `id` (its caller gave up); returns whether it was pending.
    pub(crate) fn remove(&self, id: u64) -> bool {
        self.lock().calls.remove(&id).is_some()
    }

    /// Fails every pending call with `err` and refuses new ones.
    pub(crate) fn close(&self, err: CallError) -> usize {
        let calls = {
            let mut table = self.lock();
            table.closed = Some(err.clone());
            std::mem::take(&mut table.calls)
        };
        let failed = calls.len();
        for (_, tx) in calls {
            let _ = tx.send(Err(err.clone()));
        }
        failed
    }
}
