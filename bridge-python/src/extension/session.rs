//! One running child of an extension: its link, its calls in flight, and the reader thread
//! that turns the child's frames into replies, calls and events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
    pub(crate) process: Arc<ChildProcess>,
    pub(crate) link: Arc<Link>,
    pub(crate) pending: Arc<Pending>,
    /// Why troupe killed the child, when it did (memory limit, start-up deadline, ...).
    pub(crate) kill_reason: Arc<Mutex<Option<String>>>,
    /// Set once a stop was asked for: the end is then not a crash.
    pub(crate) stopping: Arc<AtomicBool>,
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
        notify: Box<dyn Fn(SessionEvent) + Send>,
    ) -> std::io::Result<Session> {
        let session = Session {
            generation,
            process: launched.process,
            link: launched.link,
            pending: Arc::default(),
            kill_reason: Arc::default(),
            stopping: Arc::default(),
            watch: None,
        };
        let reader = Reader {
            name: name.clone(),
            generation,
            receiver: launched.receiver,
            link: session.link.clone(),
            pending: session.pending.clone(),
            process: session.process.clone(),
            kill_reason: session.kill_reason.clone(),
            stopping: session.stopping.clone(),
            router,
            arbiter,
            inbound: Arc::default(),
            notify,
        };
        std::thread::Builder::new()
            .name(format!("troupe-read-{name}"))
            .spawn(move || reader.run())?;
        if let Err(e) = session.link.send(start) {
            session.kill(format!("cannot send the start frame: {e}"));
        }
        Ok(session)
    }

    /// Sends `waiting.call`; its answer (or failure) goes to `waiting.reply`. When the child
    /// is already gone (its end not yet handled by the actor) the call comes back unsent.
    pub(crate) fn send(&self, waiting: Waiting) -> Result<(), Box<Waiting>> {
        let Waiting { call, reply } = waiting;
        let id = call.id;
        if let Err(reply) = self.pending.insert(id, reply) {
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
        if let Err(crate::process::LinkError::Frame(e)) = self.link.send(frame) {
            self.pending
                .complete(id, Err(CallError::bad_argument("args", e.to_string())));
        }
        Ok(())
    }

    /// Forgets call `id` and tells the child to cancel it.
    pub(crate) fn cancel(&self, id: u64) {
        if self.pending.remove(id) {
            let _ = self.link.send(ToChild::Cancel { id });
        }
    }

    /// Kills the child, remembering why.
    pub(crate) fn kill(&self, reason: String) {
        tracing::warn!(extension = %self.process.name(), pid = self.process.pid(), %reason, "killing extension process");
        self.kill_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(reason);
        self.process.kill();
    }
}

type Inbound = Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>;

struct Reader {
    name: Arc<str>,
    generation: u64,
    receiver: IpcBytesReceiver,
    link: Arc<Link>,
    pending: Arc<Pending>,
    process: Arc<ChildProcess>,
    kill_reason: Arc<Mutex<Option<String>>>,
    stopping: Arc<AtomicBool>,
    router: Arc<dyn Router>,
    arbiter: ArbiterHandle,
    /// The child's calls being served, by the child's id, to cancel them.
    inbound: Inbound,
    notify: Box<dyn Fn(SessionEvent) + Send>,
}

impl Reader {
    fn run(self) {
        while let Ok(bytes) = self.link.recv(&self.receiver) {
            match self.link.open::<ToHost>(&bytes) {
                Ok(envelope) => {
                    if let Some(hold) = envelope.hold {
                        let _ = self.link.send(ToChild::Release { hold });
                    }
                    self.handle(envelope.body);
                }
                Err(e) => {
                    let reason = format!("protocol error: undecodable frame from the child: {e}");
                    self.kill_reason
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(reason);
                    self.process.kill();
                    break;
                }
            }
        }
        self.finish();
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
                self.kill_reason
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert_with(|| start_failed_reason(&error));
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

    fn lock_inbound(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<()>>> {
        self.inbound.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(self) {
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
