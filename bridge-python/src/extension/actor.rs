//! The actor behind an extension's address: it owns the child process through its life
//! (launch, start-up, running, restarts, stop) as one state machine, under the runtime's
//! [`Supervisor`]. Calls do not pass through it beyond being handed to the extension's
//! [`Calls`] table: its handler returns at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot, watch};
use troupe_protocol::{StartInfo, ToChild};
use troupe_runtime::metrics::ExtensionMetrics;
use troupe_runtime::resource::ResourceMonitor;
use troupe_runtime::supervision::{Decision, ExitReason, Supervisor};
use troupe_runtime::{Call, CallResult};
use troupe_value::{CallError, CrashInfo, ExitCause};

use super::calls::Calls;
use super::config::ExtensionConfig;
use super::router::Router;
use super::session::{Session, SessionEvent, SessionParts};
use super::spin_wait::SpinWait;
use crate::process::{LaunchSpec, Launched, Launcher};

/// How long after SIGTERM a stopping child gets SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(500);

/// Stops the extension gracefully: `prepare_shutdown`, then a deadline, then SIGTERM and
/// SIGKILL. Answers once the child is gone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StopExtension;

impl Message for StopExtension {
    type Result = ();
}

/// Where the extension stands: one state at a time, every transition in this file.
enum State {
    /// Instance `generation`'s child is being spawned and connected.
    Launching { generation: u64 },
    /// Its child is connected and runs its start-up hooks; calls wait.
    Starting { session: Arc<Session> },
    /// Its child serves calls.
    Running { session: Arc<Session> },
    /// Waiting out the backoff before the next instance; calls wait.
    Restarting,
    /// A graceful stop is under way (`session`: the child still to end, if any).
    Stopping {
        session: Option<Arc<Session>>,
        waiters: Vec<oneshot::Sender<()>>,
    },
    /// Done for good: every call fails.
    Closed,
}

impl State {
    /// The child this state has, if it has one.
    fn session(&self) -> Option<&Arc<Session>> {
        match self {
            State::Starting { session } | State::Running { session } => Some(session),
            State::Stopping { session, .. } => session.as_ref(),
            _ => None,
        }
    }
}

/// The actor of one Python extension. Start it with [`super::start`].
pub struct Extension {
    name: Arc<str>,
    config: Arc<ExtensionConfig>,
    launch: LaunchSpec,
    launcher: Arc<dyn Launcher>,
    router: Arc<dyn Router>,
    monitor: Option<ResourceMonitor>,
    supervisor: Supervisor,
    calls: Arc<Calls>,
    state: State,
    running: watch::Sender<Option<Instance>>,
    metrics: ExtensionMetrics,
}

/// What is known of the running instance: its process and the methods it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instance {
    pub(crate) pid: u32,
    pub(crate) methods: Arc<[String]>,
}

/// What [`Extension::new`] needs.
pub(crate) struct ExtensionParts {
    pub(crate) config: ExtensionConfig,
    pub(crate) launch: LaunchSpec,
    pub(crate) launcher: Arc<dyn Launcher>,
    pub(crate) router: Arc<dyn Router>,
    pub(crate) monitor: Option<ResourceMonitor>,
    pub(crate) supervisor: Supervisor,
    pub(crate) calls: Arc<Calls>,
    pub(crate) running: watch::Sender<Option<Instance>>,
    pub(crate) metrics: ExtensionMetrics,
}

impl Extension {
    pub(crate) fn new(parts: ExtensionParts) -> Extension {
        Extension {
            name: Arc::from(parts.config.name.as_str()),
            config: Arc::new(parts.config),
            launch: parts.launch,
            launcher: parts.launcher,
            router: parts.router,
            monitor: parts.monitor,
            supervisor: parts.supervisor,
            calls: parts.calls,
            state: State::Restarting,
            running: parts.running,
            metrics: parts.metrics,
        }
    }

    /// Launches the next instance.
    fn begin_instance(&mut self, ctx: &mut Context<Self>) {
        if !matches!(self.state, State::Restarting) {
            return;
        }
        let generation = self.supervisor.starting();
        self.state = State::Launching { generation };
        let launcher = self.launcher.clone();
        let spec = self.launch.clone();
        let launching = actix_rt::task::spawn_blocking(move || launcher.launch(&spec));
        ctx.spawn(launching.into_actor(self).map(move |joined, act, ctx| {
            let launched = joined.map_err(|e| {
                CrashInfo::new(ExitCause::Spawn(format!("the launch task failed: {e}")))
            });
            act.on_launched(
                generation,
                launched.and_then(|r| r.map_err(|e| e.into_crash())),
                ctx,
            );
        }));
    }

    fn on_launched(
        &mut self,
        generation: u64,
        launched: Result<Launched, CrashInfo>,
        ctx: &mut Context<Self>,
    ) {
        match (&mut self.state, launched) {
            (
                State::Launching {
                    generation: current,
                },
                Ok(launched),
            ) if *current == generation => {
                self.connected(generation, launched, ctx);
            }
            (
                State::Launching {
                    generation: current,
                },
                Err(info),
            ) if *current == generation => {
                tracing::warn!(extension = %self.name, crash = %info, "extension could not start");
                self.instance_ended(info, ctx);
            }
            (State::Stopping { session: None, .. }, launched) => {
                // A stop came while it launched: it never runs.
                if let Ok(launched) = launched {
                    launched.process.kill();
                    launched.link.close();
                }
                self.finish_stop(ctx);
            }
            (_, Ok(launched)) => {
                launched.process.kill();
                launched.link.close();
            }
            (_, Err(_)) => {}
        }
    }

    /// Instance `generation`'s child said hello: start its reader and its start-up hooks.
    fn connected(&mut self, generation: u64, launched: Launched, ctx: &mut Context<Self>) {
        let pid = launched.process.pid();
        tracing::debug!(extension = %self.name, pid, connect_ms = launched.connect_time.as_secs_f64() * 1e3, "extension process connected");
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
        let (events, received) = mpsc::unbounded_channel();
        ctx.add_stream(SessionEvents(received));
        let parts = SessionParts {
            name: self.name.clone(),
            generation,
            calls: self.calls.clone(),
            router: self.router.clone(),
            arbiter: actix::Arbiter::current(),
            events,
            max_child_calls: self.config.max_child_calls,
        };
        let process = launched.process.clone();
        let session = match Session::start(launched, start, parts) {
            Ok(session) => session,
            Err(e) => {
                process.kill();
                let info = CrashInfo::new(ExitCause::Spawn(format!(
                    "cannot start the reader thread: {e}"
                )));
                return self.instance_ended(info, ctx);
            }
        };
        self.watch_memory(&session, ctx);
        let start_timeout = self.config.start_timeout;
        ctx.run_later(start_timeout, move |act, _| {
            if let State::Starting { session } = &act.state
                && session.generation() == generation
            {
                session.kill(ExitCause::StartTimeout(start_timeout));
            }
        });
        self.state = State::Starting { session };
    }

    /// Kills the child when its resident memory passes the limit.
    fn watch_memory(&mut self, session: &Arc<Session>, ctx: &mut Context<Self>) {
        let (Some(limit), Some(monitor)) = (self.config.memory_limit, &self.monitor) else {
            return;
        };
        let watch = monitor.watch(session.process().pid());
        let mut samples = watch.receiver();
        let session = Arc::downgrade(session);
        ctx.spawn(
            async move {
                let _watch = watch;
                while samples.changed().await.is_ok() {
                    let rss = samples.borrow().map(|s| s.rss_bytes);
                    if let Some(rss) = rss.filter(|rss| *rss > limit) {
                        return Some(rss);
                    }
                }
                None
            }
            .into_actor(self)
            .map(move |over, _, _| {
                if let (Some(rss_bytes), Some(session)) = (over, session.upgrade()) {
                    session.kill(ExitCause::MemoryLimit {
                        rss_bytes,
                        limit_bytes: limit,
                    });
                }
            }),
        );
    }

    /// The current instance ended (or never started): what the policy says follows. The
    /// first instance's start-up exception is final whatever the policy: the code as given
    /// does not load, and loading it again changes nothing.
    fn instance_ended(&mut self, info: CrashInfo, ctx: &mut Context<Self>) {
        let _ = self.running.send_replace(None);
        if self.supervisor.instance() == 1 && matches!(info.cause, ExitCause::StartFailed(_)) {
            tracing::info!(extension = %self.name, crash = %info, "extension cannot start; not retried");
            self.supervisor.finish(ExitReason::Crashed(info.clone()));
            return self.close(CallError::Crashed(info), ctx);
        }
        match self.supervisor.exited(ExitReason::Crashed(info.clone())) {
            Decision::Restart { delay, .. } => {
                self.metrics.restarts.inc();
                self.state = State::Restarting;
                ctx.run_later(delay, |act, ctx| act.begin_instance(ctx));
            }
            Decision::Stop => {
                let err = if info.is_clean_exit() {
                    CallError::ActorStopped
                } else {
                    CallError::Crashed(info)
                };
                self.close(err, ctx);
            }
            Decision::GiveUp(give_up) => {
                let err = CallError::Crashed(CrashInfo {
                    gave_up_after: Some(give_up.restarts),
                    ..info
                });
                self.close(err, ctx);
            }
        }
    }

    /// Done for good: every call fails with `err` from now on. The actor lives on while
    /// handles remain (their calls fail at once), and stops when the last is dropped.
    fn close(&mut self, err: CallError, _ctx: &mut Context<Self>) {
        self.calls.close(err);
        self.state = State::Closed;
    }

    /// Begins a graceful stop (or joins the one under way); `waiter` hears when it is over.
    fn begin_stop(&mut self, waiter: Option<oneshot::Sender<()>>, ctx: &mut Context<Self>) {
        let waiters: Vec<_> = waiter.into_iter().collect();
        let session = match std::mem::replace(&mut self.state, State::Closed) {
            State::Stopping {
                session,
                waiters: mut before,
            } => {
                before.extend(waiters);
                self.state = State::Stopping {
                    session,
                    waiters: before,
                };
                return;
            }
            State::Closed => {
                for waiter in waiters {
                    let _ = waiter.send(());
                }
                return;
            }
            State::Running { session } => {
                session.mark_stopping();
                if session.link().send(ToChild::Shutdown).is_err() {
                    session.process().kill();
                }
                Some(session)
            }
            State::Starting { session } => {
                session.mark_stopping();
                session.process().kill();
                Some(session)
            }
            State::Launching { .. } => None,
            State::Restarting => {
                self.state = State::Stopping {
                    session: None,
                    waiters,
                };
                return self.finish_stop(ctx);
            }
        };
        self.calls.close(CallError::ActorStopped);
        if let Some(session) = &session {
            let generation = session.generation();
            let grace = self.config.stop_timeout;
            ctx.run_later(grace, move |act, _| {
                if let Some(session) = act.state.session().filter(|s| s.generation() == generation)
                {
                    session.process().terminate();
                }
            });
            ctx.run_later(grace + TERM_GRACE, move |act, _| {
                if let Some(session) = act.state.session().filter(|s| s.generation() == generation)
                {
                    session.process().kill();
                }
            });
        }
        self.state = State::Stopping { session, waiters };
    }

    /// The stop is over: final status, waiters told, the actor stops.
    fn finish_stop(&mut self, ctx: &mut Context<Self>) {
        self.calls.close(CallError::ActorStopped);
        let _ = self.running.send_replace(None);
        self.supervisor.finish(ExitReason::Stopped);
        if let State::Stopping { waiters, .. } = std::mem::replace(&mut self.state, State::Closed) {
            for waiter in waiters {
                let _ = waiter.send(());
            }
        }
        ctx.stop();
    }

    fn on_event(&mut self, event: SessionEvent, ctx: &mut Context<Self>) {
        let current = self.state.session().map(|s| s.generation());
        match event {
            SessionEvent::Started {
                generation,
                methods,
            } if current == Some(generation) => {
                let State::Starting { session } = &self.state else {
                    return;
                };
                let session = session.clone();
                let pid = session.process().pid();
                tracing::info!(extension = %self.name, pid, instance = generation, methods = methods.len(), "extension ready");
                let _ = self.running.send_replace(Some(Instance {
                    pid,
                    methods: Arc::from(methods),
                }));
                self.supervisor.running();
                self.calls.open(session.clone());
                self.state = State::Running { session };
            }
            SessionEvent::StartFailed { generation, error } if current == Some(generation) => {
                if let Some(session) = self.state.session() {
                    session.kill(ExitCause::StartFailed(error));
                }
            }
            SessionEvent::Ended { generation, info } if current == Some(generation) => {
                if matches!(self.state, State::Stopping { .. }) {
                    self.finish_stop(ctx);
                } else {
                    self.instance_ended(info, ctx);
                }
            }
            _ => {}
        }
    }

    /// Hands `call` to the extension's calls; the future resolves with its answer, its
    /// deadline (the caller's, else the extension's default) or its caller giving up.
    fn dispatch(&mut self, mut call: Call) -> ResponseFuture<CallResult> {
        let id = call.id;
        let mut abandoned = call.take_abandoned();
        let timeout = match call.deadline {
            Some(deadline) => Some(deadline.saturating_duration_since(Instant::now())),
            None => self.config.call_timeout,
        };
        let (reply, answer) = oneshot::channel();
        if abandoned.is_abandoned() {
            return Box::pin(async { Err(CallError::Cancelled) });
        }
        let began = Instant::now();
        self.calls.submit(call, reply);
        let answer = SpinWait::new(answer, self.calls.session());
        let calls = self.calls.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let deadline = async {
                match timeout {
                    Some(timeout) => tokio::time::sleep(timeout).await,
                    None => std::future::pending().await,
                }
            };
            let result = tokio::select! {
                biased;
                answer = answer => answer.unwrap_or(Err(CallError::ActorStopped)),
                () = abandoned => {
                    calls.cancel(id);
                    Err(CallError::Cancelled)
                }
                () = deadline => {
                    calls.cancel(id);
                    Err(CallError::Timeout(timeout.unwrap_or_default()))
                }
            };
            metrics.call_ended(&result, began.elapsed());
            result
        })
    }
}

/// A session's events, as a stream the actor handles.
struct SessionEvents(mpsc::UnboundedReceiver<SessionEvent>);

impl actix::dev::Stream for SessionEvents {
    type Item = SessionEvent;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<SessionEvent>> {
        self.0.poll_recv(cx)
    }
}

impl StreamHandler<SessionEvent> for Extension {
    fn handle(&mut self, event: SessionEvent, ctx: &mut Context<Self>) {
        self.on_event(event, ctx);
    }

    /// A session's stream ends with its reader; the actor lives on.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Actor for Extension {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.begin_instance(ctx);
    }

    /// Every handle is gone (or the actor is told to stop): the child gets a graceful stop
    /// first; the actor stops once it is over.
    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        if tokio::runtime::Handle::try_current().is_err() {
            // The arbiter itself is going away (the actix System ended): no timer can run,
            // so there is no graceful stop; `stopped` kills the child.
            return Running::Stop;
        }
        match self.state {
            State::Closed => Running::Stop,
            State::Stopping { .. } => Running::Continue,
            _ => {
                self.begin_stop(None, ctx);
                if matches!(self.state, State::Closed) {
                    Running::Stop
                } else {
                    Running::Continue
                }
            }
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(session) = self.state.session() {
            session.mark_stopping();
            session.process().kill();
        }
        self.calls.close(CallError::ActorStopped);
        self.supervisor.finish(ExitReason::Stopped);
    }
}

impl Handler<Call> for Extension {
    type Result = ResponseFuture<CallResult>;

    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> Self::Result {
        self.dispatch(call)
    }
}

impl Handler<StopExtension> for Extension {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopExtension, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.begin_stop(Some(tx), ctx);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
