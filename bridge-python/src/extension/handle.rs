//! The handle host code holds for an extension.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use troupe_runtime::supervision::SupervisionEvent;
use troupe_runtime::{Address, Call, CallResult, Caller, Lane, Reply};
use troupe_wire::{CallError, FromValue, Value};

use super::actor::{CancelCall, Extension, StopExtension, TimedCall};
use super::status::ExtensionStatus;

/// A running extension: its address, its status and its events. Cheap to clone.
///
/// Calls made through [`ExtensionRef::call`] and friends are cancelled in the child when
/// their future is dropped before the answer (e.g. by `tokio::time::timeout` or `select!`).
#[derive(Clone)]
pub struct ExtensionRef {
    pub(crate) name: Arc<str>,
    pub(crate) address: Address<Extension>,
    pub(crate) status: watch::Receiver<ExtensionStatus>,
    pub(crate) events: broadcast::Sender<SupervisionEvent>,
}

impl std::fmt::Debug for ExtensionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionRef")
            .field("name", &self.name)
            .field("status", &*self.status.borrow())
            .finish()
    }
}

impl ExtensionRef {
    /// The extension's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The actor's address: it answers [`Call`] like any troupe actor.
    pub fn address(&self) -> &Address<Extension> {
        &self.address
    }

    /// A type-erased handle, the same kind local actors give.
    pub fn caller(&self) -> Caller {
        self.address.caller()
    }

    /// Calls `method` with positional `args`, with the extension's default deadline.
    pub async fn call(&self, method: &str, args: Vec<Value>) -> CallResult {
        self.call_with(Call::new(method.to_owned(), args), None)
            .await
    }

    /// Calls `method` and converts the answer to `T` (a mismatch is
    /// [`CallError::BadArguments`] at path `result`).
    pub async fn call_as<T: FromValue>(
        &self,
        method: &str,
        args: Vec<Value>,
    ) -> Result<T, CallError> {
        let value = self.call(method, args).await?;
        T::from_value(value).map_err(|reason| CallError::bad_argument("result", reason))
    }

    /// Sends `call` with deadline `timeout` (`None`: the extension's default). Dropping the
    /// future before it resolves cancels the call.
    pub async fn call_with(&self, call: Call, timeout: Option<Duration>) -> CallResult {
        let id = call.id;
        let sent = self.address.send(TimedCall { call, timeout });
        let guard = CancelOnDrop {
            id,
            address: &self.address,
            armed: true,
        };
        let result = sent.await.unwrap_or(Err(CallError::ActorStopped));
        guard.disarm();
        result
    }

    /// Sends `call` without waiting for mailbox room: [`CallError::MailboxFull`] if there is
    /// none. The returned [`Reply`] does not cancel the call when dropped.
    pub fn try_call(&self, call: Call) -> Result<Reply<CallResult>, CallError> {
        self.address
            .try_send(
                Lane::Data,
                TimedCall {
                    call,
                    timeout: None,
                },
            )
            .map_err(|e| match e {
                troupe_runtime::TrySendError::Full(_) => CallError::MailboxFull,
                troupe_runtime::TrySendError::Closed(_) => CallError::ActorStopped,
            })
    }

    /// Where the extension stands now.
    pub fn status(&self) -> ExtensionStatus {
        self.status.borrow().clone()
    }

    /// A receiver of every status change.
    pub fn status_changes(&self) -> watch::Receiver<ExtensionStatus> {
        self.status.clone()
    }

    /// The running child's process id.
    pub fn pid(&self) -> Option<u32> {
        match &*self.status.borrow() {
            ExtensionStatus::Running { pid, .. } => Some(*pid),
            _ => None,
        }
    }

    /// Supervision events from now on (started, exited, restarting, gave up).
    pub fn subscribe(&self) -> broadcast::Receiver<SupervisionEvent> {
        self.events.subscribe()
    }

    /// Waits until an instance runs, or until the extension is done for good, and says which.
    pub async fn ready(&self) -> ExtensionStatus {
        let mut status = self.status.clone();
        let settled = status
            .wait_for(|s| s.is_running() || s.is_final())
            .await
            .map(|s| s.clone());
        settled.unwrap_or_else(|_| self.status())
    }

    /// [`ExtensionRef::ready`] with a deadline; `Err` holds the status at the deadline.
    pub async fn ready_within(
        &self,
        timeout: Duration,
    ) -> Result<ExtensionStatus, ExtensionStatus> {
        match tokio::time::timeout(timeout, self.ready()).await {
            Ok(status) if status.is_running() => Ok(status),
            Ok(status) => Err(status),
            Err(_) => Err(self.status()),
        }
    }

    /// Stops the extension gracefully and waits until its process is gone.
    pub async fn stop(&self) {
        // An error means it is already gone.
        let _ = self.address.send_on(Lane::Control, StopExtension).await;
    }
}

struct CancelOnDrop<'a> {
    id: u64,
    address: &'a Address<Extension>,
    armed: bool,
}

impl CancelOnDrop<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self
                .address
                .try_tell(Lane::Control, CancelCall { id: self.id });
        }
    }
}
