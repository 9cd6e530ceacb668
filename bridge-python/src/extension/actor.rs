//! The actor behind an extension's address: it owns the child process, restarts it per
//! policy, and sends calls without waiting for their answers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::{broadcast, oneshot, watch};
use troupe_runtime::resource::ResourceMonitor;
use troupe_runtime::supervision::{
    Decision, EventKind, ExitReason, RestartTracker, SupervisionEvent,
};
use troupe_runtime::{Call, CallResult};
use troupe_wire::protocol::{StartInfo, ToChild};
use troupe_wire::{CallError, CrashInfo};

use super::config::ExtensionConfig;
use super::router::Router;
use super::session::{Session, SessionEvent, Waiting, start_failed_reason};
use super::spin_wait::SpinWait;
use super::status::ExtensionStatus;
use crate::env::Venv;
use crate::process::{LaunchError, LaunchSpec, Launched, launch};

/// A call with its own deadline (`None`: the extension's default).
#[derive(Debug)]
pub struct TimedCall {
    /// The call.
    pub call: Call,
    /// Its deadline.
    pub timeout: Option<Duration>,
}

impl Message for TimedCall {
    type Result = CallResult;
}

/// Cancels call `id`: the caller gave up. A call still waiting for a start is dropped; one in
/// flight is forgotten and the child is told to cancel it.
#[derive(Debug, Clone, Copy)]
pub struct CancelCall {
    /// The call's id ([`Call::id`]).
    pub id: u64,
}

impl Message for CancelCall {
    type Result = ();
}

/// Stops the extension gracefully: `prepare_shutdown`, then a deadline, then SIGTERM and
/// SIGKILL. Calls waiting fail with `ActorStopped`. Answers once the child is gone.
#[derive(Debug, Clone, Copy)]
pub struct StopExtension;

impl Message for StopExtension {
    type Result = ();
}

/// The actor of one Python extension. Start it with [`super::start`].
pub struct Extension {
    name: Arc<str>,
    config: Arc<ExtensionConfig>,
    venv: Venv,
    router: Arc<dyn Router>,
    monitor: Option<ResourceMonitor>,
    tracker: RestartTracker,
    generation: u64,
    instance: u64,
    session: Option<Session>,
    ready: bool,
    waiting: VecDeque<Waiting>,
    /// Once set, every call fails with it (stopped, gave up).
    closed: Option<CallError>,
    stopping: bool,
    stop_waiters: Vec<oneshot::Sender<()>>,
    status: watch::Sender<ExtensionStatus>,
    events: broadcast::Sender<SupervisionEvent>,
}

impl Extension {
    pub(crate) fn new(
        config: ExtensionConfig,
        venv: Venv,
        router: Arc<dyn Router>,
        monitor: Option<ResourceMonitor>,
        status: watch::Sender<ExtensionStatus>,
        events: broadcast::Sender<SupervisionEvent>,
    ) -> Extension {
        Extension {
            name: Arc::from(config.name.as_str()),
            tracker: RestartTracker::new(config.restart),
            config: Arc::new(config),
            venv,
            router,
            monitor,
            generation: 0,
            instance: 0,
            session: None,
            ready: false,
            waiting: VecDeque::new(),
            closed: None,
            stopping: false,
            stop_waiters: Vec::new(),
            status,
            events,
        }
    }

    fn event(&self, kind: EventKind) {
        let _ = self.events.send(SupervisionEvent {
            actor: self.name.clone(),
            kind,
        });
    }

    fn begin_instance(&mut self, ctx: &mut Context<Self>) {
        if self.stopping || self.closed.is_some() {
            return;
        }
        self.generation += 1;
        self.instance += 1;
        let generation = self.generation;
        self.status.send_replace(ExtensionStatus::Starting {
            instance: self.instance,
        });
        let spec = LaunchSpec {
            name: self.config.name.clone(),
            python: self.venv.python.clone(),
            venv: self.venv.root.clone(),
            env: self.config.vars.clone(),
            cwd: self.config.cwd.clone(),
            connect_timeout: self.config.connect_timeout,
        };
        let launching = actix_rt::task::spawn_blocking(move || launch(&spec));
        ctx.spawn(launching.into_actor(self).map(move |joined, act, ctx| {
            let launched = joined.unwrap_or_else(|e| {
                Err(LaunchError::Handshake(format!("launch task failed: {e}")))
            });
            act.on_launched(generation, launched, ctx);
        }));
    }

    fn on_launched(
        &mut self,
        generation: u64,
        launched: Result<Launched, LaunchError>,
        ctx: &mut Context<Self>,
    ) {
        if generation != self.generation {
            return;
        }
        let launched = match launched {
            Ok(launched) if !self.stopping => launched,
            Ok(_) => return self.instance_ended(CrashInfo::default(), ctx),
            Err(e) => {
                tracing::warn!(extension = %self.name, error = %e, "extension could not start");
                return self.instance_ended(launch_crash(e), ctx);
            }
        };
        tracing::debug!(extension = %self.name, pid = launched.process.pid(), connect_ms = launched.connect_time.as_secs_f64() * 1e3, "extension process connected");
        let start = ToChild::Start(StartInfo {
            name: self.config.name.clone(),
            module: self.config.module.clone(),
            class: self.config.class.clone(),
            sys_path: self
                .config
                .sys_path
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            host_calls: self.config.host_calls,
        });
        let me = ctx.address();
        let session = Session::start(
            self.name.clone(),
            generation,
            launched,
            start,
            self.router.clone(),
            actix::Arbiter::current(),
            Box::new(move |event| me.do_send(event)),
        );
        let mut session = match session {
            Ok(session) => session,
            Err(e) => {
                return self.instance_ended(
                    CrashInfo {
                        reason: Some(format!("cannot start the reader thread: {e}")),
                        ..CrashInfo::default()
                    },
                    ctx,
                );
            }
        };
        if let (Some(limit), Some(monitor)) = (self.config.memory_limit, &self.monitor) {
            let watch = monitor.watch(session.process().pid());
            let mut samples = watch.receiver();
            session.watch = Some(watch);
            ctx.spawn(
                async move {
                    while samples.changed().await.is_ok() {
                        let rss = samples.borrow().map(|s| s.rss_bytes);
                        if let Some(rss) = rss.filter(|rss| *rss > limit) {
                            return Some(rss);
                        }
                    }
                    None
                }
                .into_actor(self)
                .map(move |over, act, _| {
                    if let (Some(rss), Some(session)) = (over, &act.session)
                        && session.generation == generation
                    {
                        session.kill(format!(
                            "memory limit exceeded: {} MiB resident > limit {} MiB",
                            rss >> 20,
                            limit >> 20
                        ));
                    }
                }),
            );
        }
        let start_timeout = self.config.start_timeout;
        ctx.run_later(start_timeout, move |act, _| {
            if let Some(session) = &act.session
                && session.generation == generation
                && !act.ready
            {
                session.kill(format!(
                    "start-up hooks did not finish within {start_timeout:?}"
                ));
            }
        });
        self.session = Some(session);
    }

    fn instance_ended(&mut self, info: CrashInfo, ctx: &mut Context<Self>) {
        self.session = None;
        self.ready = false;
        if self.stopping {
            self.finish_stop(ctx);
            return;
        }
        self.event(EventKind::Exited {
            reason: ExitReason::Failed(info.to_string()),
        });
        match self
            .tracker
            .on_exit(&ExitReason::Failed(info.to_string()), Instant::now())
        {
            Decision::Restart { attempt, delay } => {
                tracing::info!(extension = %self.name, attempt, ?delay, "restarting extension");
                self.status.send_replace(ExtensionStatus::Restarting {
                    attempt,
                    last: info,
                });
                self.event(EventKind::Restarting { attempt, delay });
                ctx.run_later(delay, |act, ctx| act.begin_instance(ctx));
            }
            Decision::Stop => {
                self.close(CallError::Crashed(info));
                self.status.send_replace(ExtensionStatus::Stopped);
                self.event(EventKind::Stopped);
            }
            Decision::GiveUp(give_up) => {
                tracing::error!(extension = %self.name, %give_up, "extension failed for good");
                let err = CallError::Crashed(CrashInfo {
                    reason: Some(match &info.reason {
                        Some(r) => format!("{r}; extension failed: {give_up}"),
                        None => format!("extension failed: {give_up}"),
                    }),
                    ..info.clone()
                });
                self.close(err);
                self.event(EventKind::GaveUp(give_up.clone()));
                self.status.send_replace(ExtensionStatus::Failed {
                    give_up,
                    last: info,
                });
            }
        }
    }

    /// Fails every waiting call and every later one with `err`.
    fn close(&mut self, err: CallError) {
        for waiting in self.waiting.drain(..) {
            let _ = waiting.reply.send(Err(err.clone()));
        }
        self.closed = Some(err);
    }

    fn finish_stop(&mut self, ctx: &mut Context<Self>) {
        self.close(CallError::ActorStopped);
        self.status.send_replace(ExtensionStatus::Stopped);
        self.event(EventKind::Stopped);
        for waiter in self.stop_waiters.drain(..) {
            let _ = waiter.send(());
        }
        ctx.stop();
    }

    fn submit(&mut self, call: Call, reply: oneshot::Sender<CallResult>) {
        if let Some(err) = &self.closed {
            let _ = reply.send(Err(err.clone()));
            return;
        }
        match &self.session {
            Some(session) if self.ready => {
                if let Err(unsent) = session.send(Waiting { call, reply }) {
                    // The child just died: this call waits for the next instance.
                    self.ready = false;
                    self.waiting.push_back(*unsent);
                }
            }
            _ if self.waiting.len() >= self.config.capacity => {
                let _ = reply.send(Err(CallError::MailboxFull));
            }
            _ => self.waiting.push_back(Waiting { call, reply }),
        }
    }

    fn dispatch(
        &mut self,
        call: Call,
        timeout: Option<Duration>,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<CallResult> {
        let id = call.id;
        let (reply, answer) = oneshot::channel();
        self.submit(call, reply);
        let answer = SpinWait::new(answer, self.session.as_ref().map(|s| s.inbox.clone()));
        let Some(timeout) = timeout else {
            return Box::pin(async move { answer.await.unwrap_or(Err(CallError::ActorStopped)) });
        };
        let me = ctx.address();
        Box::pin(async move {
            match tokio::time::timeout(timeout, answer).await {
                Ok(answer) => answer.unwrap_or(Err(CallError::ActorStopped)),
                Err(_) => {
                    me.do_send(CancelCall { id });
                    Err(CallError::Timeout(timeout))
                }
            }
        })
    }
}

fn launch_crash(e: LaunchError) -> CrashInfo {
    match e {
        LaunchError::ExitedEarly(info) => CrashInfo {
            reason: Some(
                info.reason
                    .clone()
                    .unwrap_or_else(|| "exited before connecting".into()),
            ),
            ..info
        },
        LaunchError::ConnectTimeout { after, stderr_tail } => CrashInfo {
            reason: Some(format!("did not connect within {after:?}")),
            stderr_tail,
            ..CrashInfo::default()
        },
        other => CrashInfo {
            reason: Some(other.to_string()),
            ..CrashInfo::default()
        },
    }
}

impl Actor for Extension {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.begin_instance(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(session) = self.session.take() {
            session.mark_stopping();
            session.process().kill();
        }
        if !self.status.borrow().is_final() {
            self.status.send_replace(ExtensionStatus::Stopped);
        }
    }
}

impl Handler<Call> for Extension {
    type Result = ResponseFuture<CallResult>;

    fn handle(&mut self, call: Call, ctx: &mut Context<Self>) -> Self::Result {
        let timeout = self.config.call_timeout;
        self.dispatch(call, timeout, ctx)
    }
}

impl Handler<TimedCall> for Extension {
    type Result = ResponseFuture<CallResult>;

    fn handle(&mut self, msg: TimedCall, ctx: &mut Context<Self>) -> Self::Result {
        let timeout = msg.timeout.or(self.config.call_timeout);
        self.dispatch(msg.call, timeout, ctx)
    }
}

impl Handler<CancelCall> for Extension {
    type Result = ();

    fn handle(&mut self, msg: CancelCall, _: &mut Context<Self>) {
        if let Some(at) = self.waiting.iter().position(|w| w.call.id == msg.id) {
            self.waiting.remove(at);
        } else if let Some(session) = &self.session {
            session.cancel(msg.id);
        }
    }
}

impl Handler<SessionEvent> for Extension {
    type Result = ();

    fn handle(&mut self, event: SessionEvent, ctx: &mut Context<Self>) {
        match event {
            SessionEvent::Started {
                generation,
                methods,
            } if generation == self.generation => {
                let Some(session) = &self.session else { return };
                self.ready = true;
                let pid = session.process().pid();
                tracing::info!(extension = %self.name, pid, instance = self.instance, methods = methods.len(), "extension ready");
                self.status.send_replace(ExtensionStatus::Running {
                    instance: self.instance,
                    pid,
                });
                self.event(EventKind::Started {
                    instance: self.instance,
                });
                let mut refused = VecDeque::new();
                for waiting in std::mem::take(&mut self.waiting) {
                    if waiting.reply.is_closed() {
                        continue;
                    }
                    if let Err(unsent) = session.send(waiting) {
                        refused.push_back(*unsent);
                    }
                }
                if !refused.is_empty() {
                    // The new child died at once; these wait for the one after it.
                    self.ready = false;
                    self.waiting = refused;
                }
            }
            SessionEvent::StartFailed { generation, error } if generation == self.generation => {
                if let Some(session) = &self.session {
                    session.kill(start_failed_reason(&error));
                }
            }
            SessionEvent::Ended { generation, info } if generation == self.generation => {
                self.instance_ended(info, ctx);
            }
            _ => {}
        }
    }
}

impl Handler<StopExtension> for Extension {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopExtension, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.stop_waiters.push(tx);
        if !self.stopping {
            self.stopping = true;
            for waiting in self.waiting.drain(..) {
                let _ = waiting.reply.send(Err(CallError::ActorStopped));
            }
            match &self.session {
                Some(session) => {
                    session.mark_stopping();
                    if !self.ready || session.link().send(ToChild::Shutdown).is_err() {
                        session.process().kill();
                    }
                    let generation = session.generation;
                    let grace = self.config.stop_timeout;
                    ctx.run_later(grace, move |act, _| {
                        if let Some(session) =
                            act.session.as_ref().filter(|s| s.generation == generation)
                        {
                            session.process().terminate();
                        }
                    });
                    ctx.run_later(grace + Duration::from_millis(500), move |act, _| {
                        if let Some(session) =
                            act.session.as_ref().filter(|s| s.generation == generation)
                        {
                            session.process().kill();
                        }
                    });
                }
                None => self.finish_stop(ctx),
            }
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
