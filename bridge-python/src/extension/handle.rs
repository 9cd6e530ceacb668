//! The handle host code holds for an extension.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use troupe_runtime::supervision::{SupervisionEvent, SupervisionWatch, SupervisorStatus};
use troupe_runtime::{Address, Call, CallResult, CallStream, Caller, Lane, PendingCall};
use troupe_value::{CallError, FromValue, Value};

use super::actor::{Extension, StopExtension};
use super::calls::{CallCounts, Calls};

/// A running extension: how to call it, and how to follow it. Cheap to clone.
///
/// The extension lives as long as a handle to it does (or a [`Caller`] made from one): when
/// the last is dropped, its child is stopped gracefully (`prepare_shutdown`, the stop
/// deadline, then SIGTERM and SIGKILL), as [`ExtensionRef::stop`] does.
///
/// Every call goes through the runtime's one call path ([`Caller`]): a `call` tracing span,
/// the caller's deadline (else the extension's default), and cancellation in the child when
/// the caller's future is dropped or its deadline passes.
#[derive(Clone)]
pub struct ExtensionRef {
    pub(crate) name: Arc<str>,
    pub(crate) address: Address<Extension>,
    pub(crate) caller: Caller,
    pub(crate) watch: SupervisionWatch,
    pub(crate) running: watch::Receiver<Option<super::actor::Instance>>,
    pub(crate) calls: Arc<Calls>,
}

impl std::fmt::Debug for ExtensionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionRef")
            .field("name", &self.name)
            .field("status", &self.watch.status())
            .finish()
    }
}

impl ExtensionRef {
    /// The extension's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A type-erased handle, the same kind local actors give. It keeps the extension alive
    /// like this handle does.
    pub fn caller(&self) -> Caller {
        self.caller.clone()
    }

    /// Whether `other` is a handle to this same extension (the same actor, not merely one
    /// of the same name started again).
    pub fn is_same(&self, other: &ExtensionRef) -> bool {
        Arc::ptr_eq(&self.calls, &other.calls)
    }

    /// Calls `method` with positional `args`, with the extension's default deadline.
    pub async fn call(&self, method: &str, args: Vec<Value>) -> CallResult {
        self.caller.call(Call::new(method.to_owned(), args)).await
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
        match timeout {
            Some(timeout) => self.caller.call_timeout(call, timeout).await,
            None => self.caller.call(call).await,
        }
    }

    /// Calls a generator method and streams what it yields: each value as soon as the child
    /// yields it (each item of a returned list; a single other value is one item), at most
    /// `window` yielded and not yet taken (the generator waits at its `yield` meanwhile),
    /// then the end. `timeout` (`None`: the extension's default) covers the whole stream; an
    /// error ends it. Dropping the stream cancels the call: a `def` generator stops at its
    /// next `yield`, an `async def` one is cancelled.
    pub fn call_stream(&self, call: Call, timeout: Option<Duration>, window: u32) -> CallStream {
        self.caller.call_stream(call, timeout, window)
    }

    /// Hands `call` over only if the extension's mailbox has room now
    /// ([`CallError::MailboxFull`] if not); dropping the returned future cancels the call.
    pub fn try_call(&self, call: Call) -> Result<PendingCall, CallError> {
        self.caller.try_call(call)
    }

    /// Where the extension stands now.
    pub fn status(&self) -> SupervisorStatus {
        self.watch.status()
    }

    /// A receiver of every status change.
    pub fn status_changes(&self) -> watch::Receiver<SupervisorStatus> {
        self.watch.status_changes()
    }

    /// Its supervision: status and events.
    pub fn watch(&self) -> &SupervisionWatch {
        &self.watch
    }

    /// The running child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.running.borrow().as_ref().map(|running| running.pid)
    }

    /// The methods the running child offers (what its `Started` said); `None` while no
    /// instance runs.
    pub fn methods(&self) -> Option<Arc<[String]>> {
        self.running
            .borrow()
            .as_ref()
            .map(|running| running.methods.clone())
    }

    /// How many calls wait to be sent and how many are in the child now.
    pub fn call_counts(&self) -> CallCounts {
        self.calls.counts()
    }

    /// Supervision events from now on (started, exited, restarting, gave up).
    pub fn subscribe(&self) -> broadcast::Receiver<SupervisionEvent> {
        self.watch.subscribe()
    }

    /// Waits until an instance runs, or until the extension is done for good, and says which.
    pub async fn ready(&self) -> SupervisorStatus {
        self.watch.ready().await
    }

    /// [`ExtensionRef::ready`] with a deadline; `Err` holds the status at the deadline.
    pub async fn ready_within(
        &self,
        timeout: Duration,
    ) -> Result<SupervisorStatus, SupervisorStatus> {
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
