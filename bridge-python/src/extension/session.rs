//! One running child of an extension: its link, its calls in flight, and the reader thread
//! that turns the child's frames into replies, calls and events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use actix_rt::ArbiterHandle;
use ipc_channel::ipc::IpcBytesReceiver;
use tokio::sync::oneshot;
use troupe_runtime::resource::ProcessWatch;
use troupe_runtime::{Call, CallResult};
use troupe_wire::protocol::{CallFrame, Target, ToChild, ToHost};
use troupe_wire::{CallError, CrashInfo, RemoteException, Value};

use super::pending::Pending;
use super::router::Router;
use crate::process::{ChildProcess, Launched, Link};

/// What the reader tells the extension's actor.
#[derive(Debug)]
pub(crate) enum SessionEvent {
    /// The start-up hooks ran; calls may go.
    Started {
        generation: u64,
        methods: Vec<String>,
    },
    /// Loading or a hook failed.
    StartFailed {
        generation: u64,
        error: RemoteException,
    },
    /// The child is gone; every call in flight has failed.
    Ended { generation: u64, info: CrashInfo },
}

impl actix::Message for SessionEvent {
    type Result = ();
}

/// A call not yet sent to a child, with where its answer goes.
pub(crate) struct Waiting {
    pub(crate) call: Call,
    pub(crate) reply: oneshot::Sender<CallResult>,
}

/// A child the actor talks to.
pub(crate) struct Session {
    pub(crate) generation: u64,
    /// The child, its link, its calls in flight and its frames (taken by the reader thread
    /// or by a caller waiting on the arbiter).
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) watch: Option<ProcessWatch>,
}

impl Session {
    /// Starts the reader thread of `launched` and sends it `Start`.
    pub(crate) fn start(
        name: Arc<str>,
        generation: u64,
        launched: Launched,
        start: ToChild,
        router: Arc<dyn Router>,
        arbiter: ArbiterHandle,
        notify: Box<dyn Fn(SessionEvent) + Send + Sync>,
    ) -> std::io::Result<Session> {
        let inbox = Arc::new(Inbox {
            name: name.clone(),
            generation,
            receiver: Mutex::new(launched.receiver),
            link: launched.link,
            pending: Pending::default(),
            process: launched.process,
            kill_reason: Mutex::default(),
            stopping: AtomicBool::default(),
            router,
            arbiter,
            inbound: Arc::default(),
            notify,
            takers: AtomicUsize::new(0),
            reader: OnceLock::new(),
        });
        let session = Session {
            generation,
            inbox: inbox.clone(),
            watch: None,
        };
        let reader = inbox.clone();
        let thread = std::thread::Builder::new()
            .name(format!("troupe-read-{name}"))
            .spawn(move || reader.run())?;
        let _ = inbox.reader.set(thread.thread().clone());
        if let Err(e) = session.link().send(start) {
            session.kill(format!("cannot send the start frame: {e}"));
        }
        Ok(session)
    }

    /// The child process.
    pub(crate) fn process(&self) -> &Arc<ChildProcess> {
        &self.inbox.process
    }

    /// The link to the child.
    pub(crate) fn link(&self) -> &Link {
        &self.inbox.link
    }

    /// A stop was asked for: the child's end is then not a crash.
    pub(crate) fn mark_stopping(&self) {
        self.inbox.stopping.store(true, Ordering::Release);
    }

    /// Sends `waiting.call`; its answer (or failure) goes to `waiting.reply`. When the child
    /// is already gone (its end not yet handled by the actor) the call comes back unsent.
    pub(crate) fn send(&self, waiting: Waiting) -> Result<(), Box<Waiting>> {
        let Waiting { call, reply } = waiting;
        let id = call.id;
        let Inbox { pending, link, .. } = &*self.inbox;
        if let Err(reply) = pending.insert(id, reply) {
            tracing::debug!(call_id = id, "call held back: the child is gone");
            return Err(Box::new(Waiting { call, reply }));
        }
        let frame = ToChild::Call(CallFrame {
            id,
            method: call.method.into_owned(),
            args: call.args,
            kwargs: call.kwargs,
        });
        // A broken channel is reported by the reader with the crash; only a frame that could
        // not be encoded is this call's own failure.
        if let Err(crate::process::LinkError::Frame(e)) = link.send(frame) {
            pending.complete(id, Err(CallError::bad_argument("args", e.to_string())));
        }
        Ok(())
    }

    /// Forgets call `id` and tells the child to cancel it.
    pub(crate) fn cancel(&self, id: u64) {
        if self.inbox.pending.remove(id) {
            let _ = self.inbox.link.send(ToChild::Cancel { id });
        }
    }

    /// Kills the child, remembering why.
    pub(crate) fn kill(&self, reason: String) {
        self.inbox.kill(reason);
    }
}

type Inbound = Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>;

/// The child's frames and what handling them needs.
///
/// Two kinds of taker share them. The reader thread polls the doorbell (without holding the
/// receiver), then takes a frame, or sleeps in `recv` once its polling time is over. A
/// caller polling on the arbiter for its answer ([`Inbox::take_waiting`], see
/// [`SpinWait`](super::spin_wait::SpinWait)) takes frames itself, so its answer needs no
/// hand-over from the reader to the arbiter's thread; meanwhile the reader steps aside (it
/// sleeps in short naps instead of polling), leaving the cores to the caller and the child.
/// Frames are handled while the receiver is held, so in the order the child sent them,
/// whoever takes them.
pub(crate) struct Inbox {
    name: Arc<str>,
    generation: u64,
    receiver: Mutex<IpcBytesReceiver>,
    link: Arc<Link>,
    pending: Pending,
    process: Arc<ChildProcess>,
    /// Why troupe killed the child, when it did (memory limit, start-up deadline, ...).
    kill_reason: Mutex<Option<String>>,
    /// Set once a stop was asked for: the end is then not a crash.
    stopping: AtomicBool,
    router: Arc<dyn Router>,
    arbiter: ArbiterHandle,
    /// The child's calls being served, by the child's id, to cancel them.
    inbound: Inbound,
    notify: Box<dyn Fn(SessionEvent) + Send + Sync>,
    /// Callers polling [`Inbox::take_waiting`] now.
    takers: AtomicUsize,
    /// The reader thread, to wake from its nap.
    reader: OnceLock<std::thread::Thread>,
}

impl Inbox {
    /// A caller starts polling [`Inbox::take_waiting`]; it calls [`Inbox::end_taking`] once
    /// it stops.
    pub(crate) fn begin_taking(&self) {
        self.takers.fetch_add(1, Ordering::AcqRel);
    }

    /// A caller stopped polling (see [`Inbox::begin_taking`]); `unanswered`: without its
    /// answer, which the reader thread must then take: it is woken at once. Otherwise it
    /// takes over within its nap ([`spin`](troupe_wire::protocol::spin)).
    pub(crate) fn end_taking(&self, unanswered: bool) {
        let left = self.takers.fetch_sub(1, Ordering::AcqRel) - 1;
        if unanswered
            && left == 0
            && let Some(reader) = self.reader.get()
        {
            reader.unpark();
        }
    }

    fn has_takers(&self) -> bool {
        self.takers.load(Ordering::Acquire) > 0
    }

    /// The reader thread: takes and handles frames until the channel ends, then reports the
    /// end.
    fn run(&self) {
        let doorbell = self.link.doorbell();
        loop {
            if self.has_takers() {
                std::thread::park_timeout(troupe_wire::protocol::spin());
                continue;
            }
            let rang = doorbell.wait_unless(|| self.has_takers());
            if !rang && self.has_takers() {
                continue;
            }
            let receiver = self.receiver.lock().unwrap_or_else(|p| p.into_inner());
            if rang && !doorbell.has_mail() {
                // A waiting caller took it meanwhile.
                continue;
            }
            let Ok(bytes) = receiver.recv() else { break };
            doorbell.took();
            if !self.open_and_handle(&bytes) {
                break;
            }
        }
        self.finish();
    }

    /// Takes and handles the frames the child has sent, unless the reader thread is taking
    /// them now.
    pub(crate) fn take_waiting(&self) {
        let doorbell = self.link.doorbell();
        if !doorbell.has_mail() {
            return;
        }
        let Ok(receiver) = self.receiver.try_lock() else {
            return;
        };
        while doorbell.has_mail() {
            // A broken channel is the reader thread's to see (and report) on its own recv.
            let Ok(bytes) = receiver.recv() else { return };
            doorbell.took();
            if !self.open_and_handle(&bytes) {
                return;
            }
        }
    }

    /// Decodes and handles one frame; an undecodable one kills the child (`false`).
    fn open_and_handle(&self, bytes: &[u8]) -> bool {
        match self.link.open::<ToHost>(bytes) {
            Ok(envelope) => {
                if let Some(hold) = envelope.hold {
                    let _ = self.link.send(ToChild::Release { hold });
                }
                self.handle(envelope.body);
                true
            }
            Err(e) => {
                self.kill(format!(
                    "protocol error: undecodable frame from the child: {e}"
                ));
                false
            }
        }
    }

    fn handle(&self, frame: ToHost) {
        match frame {
            ToHost::Reply { id, result } => {
                self.pending.complete(id, result.and_then(usable_here));
            }
            ToHost::Call { target, call } => self.serve(target, call),
            ToHost::Cancel { id } => {
                let cancel = self.lock_inbound().remove(&id);
                if let Some(cancel) = cancel {
                    let _ = cancel.send(());
                }
            }
            ToHost::Release { hold } => self.link.release(hold),
            ToHost::ReleaseSlots { slots } => self.link.release_slots(&slots),
            ToHost::Started { methods } => (self.notify)(SessionEvent::Started {
                generation: self.generation,
                methods,
            }),
            ToHost::StartFailed(error) => {
                // The child exits right after this frame: record why now, so the crash that
                // `finish` reports carries it even if the actor has not seen this event yet.
                self.record_kill_reason(|| start_failed_reason(&error));
                (self.notify)(SessionEvent::StartFailed {
                    generation: self.generation,
                    error,
                });
            }
            ToHost::ShutdownDone => {
                tracing::debug!(extension = %self.name, "prepare_shutdown done");
            }
            ToHost::Hello { .. } => {
                tracing::warn!(extension = %self.name, "second hello from the child ignored");
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
                let _ = self.link.send(ToChild::Reply {
                    id,
                    result: Err(err),
                });
                return;
            }
        };
        let (cancel_tx, cancel_rx) = oneshot::channel();
        self.lock_inbound().insert(id, cancel_tx);
        let link = self.link.clone();
        let inbound = self.inbound.clone();
        let mut call = Call::new(frame.method, frame.args);
        call.kwargs = frame.kwargs;
        let spawned = self.arbiter.spawn(async move {
            let result = tokio::select! {
                result = caller.call(call) => result,
                _ = cancel_rx => return,
            };
            inbound
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            let _ = link.send(ToChild::Reply { id, result });
        });
        if !spawned {
            self.lock_inbound().remove(&id);
            let _ = self.link.send(ToChild::Reply {
                id,
                result: Err(CallError::ActorStopped),
            });
        }
    }

    /// Kills the child, remembering why.
    fn kill(&self, reason: String) {
        tracing::warn!(extension = %self.name, pid = self.process.pid(), %reason, "killing extension process");
        self.record_kill_reason(|| reason);
        self.process.kill();
    }

    /// Records why the child ends (the first reason given wins).
    fn record_kill_reason(&self, reason: impl FnOnce() -> String) {
        self.kill_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(reason);
    }

    fn lock_inbound(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<()>>> {
        self.inbound.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(&self) {
        let reason = self
            .kill_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let info = self.process.crash_info(reason);
        let err = if self.stopping.load(Ordering::Acquire) {
            CallError::ActorStopped
        } else {
            CallError::Crashed(info.clone())
        };
        let failed = self.pending.close(err);
        // Everything the child held of the host's pool comes back; the names of its own
        // regions go (a killed child could not remove them; the host's mappings stay valid).
        self.link.clear();
        troupe_wire::shm::remove_regions_of(self.process.pid());
        self.lock_inbound().clear();
        if !self.stopping.load(Ordering::Acquire) {
            tracing::warn!(extension = %self.name, pid = self.process.pid(), failed_calls = failed, crash = %info, "extension process ended");
        }
        (self.notify)(SessionEvent::Ended {
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

/// Why an instance whose start-up failed is counted as crashed: the exception, with its
/// traceback.
pub(crate) fn start_failed_reason(error: &RemoteException) -> String {
    if error.traceback.is_empty() {
        format!("start-up failed: {error}")
    } else {
        format!("start-up failed: {error}\n{}", error.traceback)
    }
}
