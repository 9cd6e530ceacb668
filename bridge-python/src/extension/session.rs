//! One running child of an extension: its connection, the reader thread that takes its
//! frames, and the calls it makes to the host.
//!
//! # Who reads, who writes
//!
//! - **Writing** never waits. Any thread sends a frame to the child (the actor's arbiter for
//!   calls, the arbiter's tasks for answers to the child's calls, whoever reads for
//!   acknowledgements); a child that is not reading makes frames wait in the connection's
//!   bounded queue ([`Link`]), which its flusher thread sends as the child makes room.
//! - **Reading** is done by this session's reader thread, or by a caller polling on its
//!   arbiter for its own answer ([`SpinWait`](super::spin_wait::SpinWait)): whoever holds the
//!   connection's receiving half takes every frame that waits and handles it, so frames are
//!   handled in the order the child sent them. A caller only ever tries (it never waits for
//!   the receiving half), and only while the doorbell says something waits.
//! - **The reader steps aside** while callers take frames: it sleeps on its eventfd instead
//!   of the socket, so a busy connection costs it no wake-ups. It comes back when the last
//!   caller stops without its answer or with a frame waiting, when the child rings with
//!   nobody taking (the child wakes it), when the child exits, and at the latest after
//!   [`ASIDE_TIMEOUT`], when it takes what waits itself. So the child's frames are always
//!   drained, whatever callers do.
//! - **Handling** a frame never waits either: an answer completes its call, a call from the
//!   child is routed and runs as a task on the extension's arbiter (at most
//!   `max_child_calls` at once; more are refused with `MailboxFull`), releases and
//!   lifecycle frames update bookkeeping or tell the actor.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use actix_rt::ArbiterHandle;
use tokio::sync::{mpsc, oneshot};
use troupe_protocol::transport::{ASIDE_TIMEOUT, ReadError, wait_readable};
use troupe_protocol::{CallFrame, Target, ToChild, ToHost};
use troupe_runtime::{Call, CallResult};
use troupe_value::{CallError, CrashInfo, ExitCause, RemoteException, Value};

use super::calls::{BadItem, Calls};
use super::router::Router;
use crate::process::{Launched, Link, LinkError, Process, frame_kind};

/// Datagrams one drain takes at most before it looks around again.
const DRAIN_BUDGET: usize = 64;

/// What a session tells the extension's actor.
#[derive(Debug)]
pub(crate) enum SessionEvent {
    /// The start-up hooks ran; calls may go.
    Started {
        generation: u64,
        methods: Vec<String>,
    },
    /// Loading or a hook failed; the child exits.
    StartFailed {
        generation: u64,
        error: RemoteException,
    },
    /// The child is gone; every call in flight has failed.
    Ended { generation: u64, info: CrashInfo },
}

/// What a session needs besides its child.
pub(crate) struct SessionParts {
    pub(crate) name: Arc<str>,
    pub(crate) generation: u64,
    pub(crate) calls: Arc<Calls>,
    pub(crate) router: Arc<dyn Router>,
    pub(crate) arbiter: ArbiterHandle,
    pub(crate) events: mpsc::UnboundedSender<SessionEvent>,
    pub(crate) max_child_calls: usize,
}

/// A running child (see the module docs).
pub(crate) struct Session {
    name: Arc<str>,
    generation: u64,
    link: Arc<Link>,
    process: Arc<dyn Process>,
    calls: Arc<Calls>,
    router: Arc<dyn Router>,
    arbiter: ArbiterHandle,
    events: mpsc::UnboundedSender<SessionEvent>,
    /// The child's calls being served, by the child's id, to cancel them.
    inbound: Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>,
    max_child_calls: usize,
    /// Why troupe killed the child, when it did (the first reason given wins).
    kill_reason: Mutex<Option<ExitCause>>,
    /// Set once a stop was asked for: the end is then not a crash.
    stopping: AtomicBool,
    /// Set once the child broke the protocol: nothing more it sent is handled.
    broken: AtomicBool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("name", &self.name)
            .field("generation", &self.generation)
            .field("pid", &self.process.pid())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts the reader thread of `launched` and sends the child `start`.
    pub(crate) fn start(
        launched: Launched,
        start: ToChild,
        parts: SessionParts,
    ) -> std::io::Result<Arc<Session>> {
        let session = Arc::new(Session {
            name: parts.name,
            generation: parts.generation,
            link: launched.link,
            process: launched.process,
            calls: parts.calls,
            router: parts.router,
            arbiter: parts.arbiter,
            events: parts.events,
            inbound: Arc::default(),
            max_child_calls: parts.max_child_calls,
            kill_reason: Mutex::default(),
            stopping: AtomicBool::default(),
            broken: AtomicBool::default(),
        });
        let reader = session.clone();
        std::thread::Builder::new()
            .name(format!("troupe-read-{}", session.name))
            .spawn(move || {
                let session = reader.clone();
                // A bug here must not leave the extension "running" with nobody reading:
                // the child is killed and its end reported like any other.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.run())).is_err()
                {
                    session.kill(ExitCause::Protocol(
                        "the host's reader of this child failed".into(),
                    ));
                    session.finish();
                }
            })?;
        if let Err(e) = session.link.send(start) {
            session.kill(ExitCause::Protocol(format!(
                "cannot send the start frame: {e}"
            )));
        }
        Ok(session)
    }

    /// Which instance of the extension this child is.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The child process.
    pub(crate) fn process(&self) -> &Arc<dyn Process> {
        &self.process
    }

    /// The connection to the child.
    pub(crate) fn link(&self) -> &Link {
        &self.link
    }

    /// A stop was asked for: the child's end is then not a crash.
    pub(crate) fn mark_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Kills the child, remembering why. After a protocol error nothing more it sent is
    /// handled: its calls in flight fail with the crash.
    pub(crate) fn kill(&self, cause: ExitCause) {
        if matches!(cause, ExitCause::Protocol(_)) {
            self.broken.store(true, Ordering::Release);
        }
        if matches!(cause, ExitCause::StartFailed(_)) {
            // It exits by itself; its host reports why.
            tracing::debug!(extension = %self.name, pid = self.process.pid(), reason = %cause, "killing extension process");
        } else {
            tracing::warn!(extension = %self.name, pid = self.process.pid(), reason = %cause, "killing extension process");
        }
        self.record_kill_reason(cause);
        self.process.kill();
    }

    fn record_kill_reason(&self, cause: ExitCause) {
        self.kill_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(cause);
    }

    /// Takes the frames that wait, unless another thread is taking them: for a caller
    /// polling for its answer. Never waits.
    pub(crate) fn take_frames(&self) {
        if !self.link.doorbell().has_mail() {
            return;
        }
        match self.link.try_drain(DRAIN_BUDGET, &mut |bytes, fds| {
            self.handle_bytes(bytes, fds)
        }) {
            None | Some(Ok(_)) => {}
            Some(Err(e)) => {
                self.read_failed(e);
                // The reader finishes the session.
                self.link.wake().wake();
            }
        }
    }

    /// The reader thread: takes and handles frames until the child is gone, then reports the
    /// end.
    fn run(self: Arc<Self>) {
        let link = &*self.link;
        let doorbell = link.doorbell();
        let wake = link.wake().as_fd();
        let exit = self.process.exit_fd();
        let mut watched = vec![wake];
        watched.extend(exit);
        loop {
            if link.takers() > 0 {
                // Callers take the frames: step aside (see the module docs).
                doorbell.set_aside(true);
                let ready = if link.takers() > 0 {
                    wait_readable(&watched, Some(ASIDE_TIMEOUT)).unwrap_or_default()
                } else {
                    Vec::new()
                };
                doorbell.set_aside(false);
                link.wake().clear();
                let exited = ready.get(1).copied().unwrap_or(false);
                // Whatever callers do, what waits is taken at least this often.
                let drained = link.try_drain(DRAIN_BUDGET, &mut |bytes, fds| {
                    self.handle_bytes(bytes, fds)
                });
                if let Some(Err(e)) = drained {
                    self.read_failed(e);
                    break;
                }
                if exited {
                    self.drain_rest();
                    break;
                }
                continue;
            }
            if let Err(e) = link.drain(DRAIN_BUDGET, &mut |bytes, fds| {
                self.handle_bytes(bytes, fds)
            }) {
                self.read_failed(e);
                break;
            }
            if doorbell.wait_unless(|| link.takers() > 0) || link.takers() > 0 {
                continue;
            }
            let ready = match link.socket().wait(true, &watched, None) {
                Ok(ready) => ready,
                Err(e) => {
                    self.kill(ExitCause::Protocol(format!(
                        "cannot wait on the connection: {e}"
                    )));
                    break;
                }
            };
            link.wake().clear();
            if ready.extra.get(1).copied().unwrap_or(false) {
                // The child exited (the socket may live on in a process it started).
                self.drain_rest();
                break;
            }
        }
        self.finish();
    }

    /// Takes what the child sent before it exited.
    fn drain_rest(&self) {
        let _ = self
            .link
            .drain(usize::MAX, &mut |bytes, fds| self.handle_bytes(bytes, fds));
    }

    /// The connection cannot be read any more: a closed one is the child's end; anything
    /// else is the child breaking the protocol.
    fn read_failed(&self, e: ReadError) {
        if !matches!(e, ReadError::Closed) {
            self.kill(ExitCause::Protocol(e.to_string()));
        }
    }

    /// Decodes and handles one frame (with the descriptors it carried); an undecodable one,
    /// or one naming memory the child was not handed, kills the child.
    fn handle_bytes(&self, bytes: &[u8], fds: Vec<OwnedFd>) -> ControlFlow<()> {
        if self.broken.load(Ordering::Acquire) {
            return ControlFlow::Break(());
        }
        match self.link.open::<ToHost>(bytes, fds) {
            Ok(envelope) => {
                self.handle(envelope.body);
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.kill(ExitCause::Protocol(format!("undecodable frame: {e}")));
                ControlFlow::Break(())
            }
        }
    }

    /// Sends a frame the child is owed (an answer, an acknowledgement). A child that lets
    /// more than the connection's limit pile up is not reading: it is killed.
    fn send_owed(&self, frame: ToChild) {
        match self.link.send(frame) {
            Ok(()) | Err(LinkError::Send(troupe_protocol::transport::SendError::Closed)) => {}
            Err(LinkError::Send(troupe_protocol::transport::SendError::Full {
                queued, ..
            })) => self.kill(ExitCause::Protocol(format!(
                "stopped reading: {} MiB wait for it",
                queued >> 20
            ))),
            Err(e) => {
                tracing::warn!(extension = %self.name, error = %e, "cannot send a frame the child is owed")
            }
        }
    }

    fn handle(&self, frame: ToHost) {
        match frame {
            ToHost::Reply { id, result } => self.calls.complete(id, result.and_then(usable_here)),
            ToHost::Yield { id, value } => {
                let item = match usable_here(value) {
                    Ok(value) => self.calls.item(id, value),
                    // Not usable here (a device array that cannot be imported): the item is
                    // the call's failure, as for a reply, and the generator is stopped.
                    Err(err) => {
                        self.calls.fail(id, err);
                        Ok(())
                    }
                };
                if let Err(BadItem(what)) = item {
                    self.kill(ExitCause::Protocol(what));
                }
            }
            ToHost::Call { target, call } => self.serve(target, call),
            ToHost::Cancel { id } => {
                let cancel = self.lock_inbound().remove(&id);
                if let Some(cancel) = cancel {
                    let _ = cancel.send(());
                }
            }
            ToHost::ReleaseSlots { slots } => self.link.release_slots(&slots),
            ToHost::Started { methods } => {
                let _ = self.events.send(SessionEvent::Started {
                    generation: self.generation,
                    methods,
                });
            }
            ToHost::StartFailed(error) => {
                // The child exits right after this frame: record why now, so the end that
                // `finish` reports carries it.
                self.record_kill_reason(ExitCause::StartFailed(error.clone()));
                let _ = self.events.send(SessionEvent::StartFailed {
                    generation: self.generation,
                    error,
                });
            }
            ToHost::ShutdownDone => {
                tracing::debug!(extension = %self.name, "prepare_shutdown done");
            }
            other @ ToHost::Hello { .. } => {
                tracing::warn!(extension = %self.name, frame = frame_kind(&other), "second hello from the child ignored");
            }
        }
    }

    /// Serves a call from the child on the extension's arbiter, concurrently with others.
    fn serve(&self, target: Target, frame: CallFrame) {
        let id = frame.id;
        let unusable = frame
            .args
            .iter()
            .chain(frame.kwargs.values())
            .find_map(Value::device_error);
        let routed = match unusable {
            Some(e) => Err(CallError::bad_argument("args", e.to_string())),
            None => self.router.route(&self.name, &target),
        };
        let caller = match routed {
            Ok(caller) => caller,
            Err(err) => {
                if let CallError::PermissionDenied { .. } = &err {
                    tracing::warn!(extension = %self.name, %target, method = %frame.method, "call refused: not granted");
                }
                return self.send_owed(ToChild::Reply {
                    id,
                    result: Err(err),
                });
            }
        };
        let (cancel_tx, cancel_rx) = oneshot::channel();
        {
            let mut inbound = self.lock_inbound();
            if inbound.len() >= self.max_child_calls {
                drop(inbound);
                tracing::warn!(extension = %self.name, limit = self.max_child_calls, "call refused: too many calls from the child at once");
                return self.send_owed(ToChild::Reply {
                    id,
                    result: Err(CallError::MailboxFull),
                });
            }
            inbound.insert(id, cancel_tx);
        }
        let link = self.link.clone();
        let inbound = self.inbound.clone();
        let mut call = Call::new(frame.method, frame.args);
        call.kwargs = frame.kwargs;
        let spawned = self.arbiter.spawn(async move {
            let result: CallResult = tokio::select! {
                result = caller.call(call) => result,
                _ = cancel_rx => return,
            };
            inbound
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            // The child may be gone meanwhile; nothing is owed then.
            let _ = link.send(ToChild::Reply { id, result });
        });
        if !spawned {
            self.lock_inbound().remove(&id);
            self.send_owed(ToChild::Reply {
                id,
                result: Err(CallError::ActorStopped),
            });
        }
    }

    fn lock_inbound(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<()>>> {
        self.inbound.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The child is gone: fail its calls, reclaim what it held, tell the actor.
    fn finish(&self) {
        let reason = self
            .kill_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let info = self.process.crash_info(reason);
        let stopping = self.stopping.load(Ordering::Acquire);
        let err = if stopping {
            CallError::ActorStopped
        } else {
            CallError::Crashed(info.clone())
        };
        let failed = self.calls.child_gone(self.generation, err);
        // Everything the child held of the host's pool comes back (its own regions vanish
        // with the last mapping: nothing to clean up, however it died).
        self.link.close();
        self.lock_inbound().clear();
        if !stopping && !matches!(info.cause, ExitCause::StartFailed(_)) {
            tracing::warn!(extension = %self.name, pid = self.process.pid(), failed_calls = failed, crash = %info, "extension process ended");
        }
        let _ = self.events.send(SessionEvent::Ended {
            generation: self.generation,
            info,
        });
    }
}

/// A reply value, or why this process cannot use it: a device array of the child that could
/// not be imported here (no CUDA driver, ...) fails the call with a typed error.
fn usable_here(value: Value) -> CallResult {
    match value.device_error() {
        None => Ok(value),
        Some(e) => Err(CallError::bad_argument("result", e.to_string())),
    }
}
