//! A fake child: a test double that speaks the bridge protocol in-process, so supervision,
//! deadlines, cancellation, backpressure and restarts of extensions are tested in
//! milliseconds and deterministically, next to the end-to-end tests with real venvs.
//!
//! A [`FakeChild`] is a [`Launcher`]: every launch starts a new *instance*, a thread that
//! says hello over a real socket pair and then does what the script says. The script is
//! plain Rust: how the start goes ([`Start`]) and what each call gets ([`Reply`], from a
//! closure of the call). What the instances received is recorded for assertions.
//!
//! ```
//! use std::sync::Arc;
//! use troupe_bridge_python::extension::{self, ExtensionConfig, NoRoutes};
//! use troupe_bridge_python::testing::{FakeChild, Reply};
//! use troupe_value::Value;
//!
//! actix::System::new().block_on(async {
//!     let fake = FakeChild::new(|call| match call.method.as_str() {
//!         "add" => Reply::value(Value::Int(2)),
//!         _ => Reply::Hang,
//!     });
//!     let ext = extension::start_with(
//!         None,
//!         ExtensionConfig::new("fake", "unused"),
//!         fake.spec("fake"),
//!         Arc::new(fake.clone()),
//!         Arc::new(NoRoutes),
//!     );
//!     assert_eq!(ext.call("add", vec![]).await, Ok(Value::Int(2)));
//!     assert_eq!(fake.instances(), 1);
//! });
//! ```

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use troupe_protocol::transport::{
    Doorbell, Incoming, Outgoing, OutgoingLimits, ReadError, Socket, Wake, wait_readable,
};
use troupe_protocol::{
    CallFrame, Ledger, MAX_FRAME, PROTOCOL_VERSION, SHM_THRESHOLD, ToChild, ToHost,
};
use troupe_value::{CallError, CrashInfo, ExitCause, RemoteException, Value};

use crate::process::{
    LaunchError, LaunchSpec, Launched, Launcher, Link, LinkLimits, NoHello, Process, await_hello,
};

/// Fake pids start here (no real process has them on Linux's default pid range).
const FAKE_PIDS: u32 = 4_000_000;

/// How an instance's start-up goes.
#[derive(Debug, Clone)]
pub enum Start {
    /// Hello, then `Started` with these methods.
    Ok(Vec<String>),
    /// Hello, then `StartFailed` with this exception, then exit with status 1 (as a real
    /// child whose import failed).
    Fail(RemoteException),
    /// Hello, then nothing: its start-up hooks never finish.
    Hang,
    /// No hello at all (the connect deadline ends it).
    Silent,
    /// A hello in another protocol version.
    WrongProtocol(u32),
    /// Exit with this status before the hello.
    ExitBeforeHello(i32),
}

/// What one call gets.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This answer, at once.
    Now(Result<Value, CallError>),
    /// This answer after a delay (cancelled by the host meanwhile: answered `Cancelled`,
    /// as an `async def` method is).
    After(Duration, Result<Value, CallError>),
    /// No answer ever (a call that runs forever).
    Hang,
    /// The instance exits with this status instead of answering.
    Exit(i32),
    /// These items at once, as a streaming call's (whatever credit the host gave: a child
    /// that yields more than the window breaks the protocol), then `Null`.
    Yield(Vec<Value>),
}

impl Reply {
    /// [`Reply::Now`] with a value.
    pub fn value(value: impl Into<Value>) -> Reply {
        Reply::Now(Ok(value.into()))
    }
}

type Script = dyn Fn(&CallFrame) -> Reply + Send + Sync;

/// A scripted child (see the module docs). Clones share the script and the records.
#[derive(Clone)]
pub struct FakeChild {
    inner: Arc<Inner>,
}

struct Inner {
    script: Box<Script>,
    starts: Mutex<Vec<Start>>,
    default_start: Start,
    instances: AtomicU32,
    record: Mutex<Record>,
    current: Mutex<Option<Arc<FakeProcess>>>,
}

/// What the instances received, in order.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Every call received: (instance, call id, method).
    pub calls: Vec<(u32, u64, String)>,
    /// Every cancel received: (instance, call id).
    pub cancels: Vec<(u32, u64)>,
    /// The most calls an instance had unanswered at once.
    pub max_outstanding: usize,
    /// Shutdown requests received.
    pub shutdowns: u32,
}

impl std::fmt::Debug for FakeChild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeChild")
            .field("instances", &self.instances())
            .finish_non_exhaustive()
    }
}

impl FakeChild {
    /// A fake whose instances start with every method `script` knows (`Start::Ok` with no
    /// method list: any method is accepted) and answer calls as `script` says.
    pub fn new(script: impl Fn(&CallFrame) -> Reply + Send + Sync + 'static) -> FakeChild {
        FakeChild {
            inner: Arc::new(Inner {
                script: Box::new(script),
                starts: Mutex::default(),
                default_start: Start::Ok(Vec::new()),
                instances: AtomicU32::new(0),
                record: Mutex::default(),
                current: Mutex::default(),
            }),
        }
    }

    /// The next instances start as `starts` say, one each, in order; later ones start
    /// normally.
    pub fn starting(self, starts: impl IntoIterator<Item = Start>) -> FakeChild {
        lock(&self.inner.starts).extend(starts);
        self
    }

    /// A launch spec for it (the interpreter and venv are not used).
    pub fn spec(&self, name: &str) -> LaunchSpec {
        LaunchSpec {
            name: name.to_owned(),
            python: "fake-python".into(),
            venv: "fake-venv".into(),
            env: Vec::new(),
            cwd: None,
            sys_path: Vec::new(),
            memory_limit: None,
            sandbox: crate::process::SandboxConfig::default(),
            connect_timeout: Duration::from_secs(5),
            limits: LinkLimits::default(),
        }
    }

    /// How many instances were launched.
    pub fn instances(&self) -> u32 {
        self.inner.instances.load(Ordering::SeqCst)
    }

    /// What the instances received so far.
    pub fn record(&self) -> Record {
        lock(&self.inner.record).clone()
    }

    /// Ends the running instance as if a signal killed it.
    pub fn kill_current(&self, signal: i32) {
        if let Some(process) = lock(&self.inner.current).clone() {
            process.end(ExitCause::Signaled(signal));
        }
    }
}

impl Launcher for FakeChild {
    fn launch(&self, spec: &LaunchSpec) -> Result<Launched, LaunchError> {
        let started = Instant::now();
        let instance = self.inner.instances.fetch_add(1, Ordering::SeqCst) + 1;
        let start = {
            let mut starts = lock(&self.inner.starts);
            if starts.is_empty() {
                self.inner.default_start.clone()
            } else {
                starts.remove(0)
            }
        };
        let (host_end, child_end) = Socket::pair().map_err(LaunchError::Setup)?;
        let (doorbell, page) = Doorbell::create().map_err(LaunchError::Setup)?;
        let wake = Wake::new().map_err(LaunchError::Setup)?;
        let child_wake = Wake::from_fd(wake.duplicate().map_err(LaunchError::Setup)?)
            .map_err(LaunchError::Setup)?;
        let child_bell =
            Arc::new(Doorbell::adopt(page, Some(child_wake)).map_err(LaunchError::Setup)?);
        let process = Arc::new(FakeProcess {
            pid: FAKE_PIDS + instance,
            status: Mutex::default(),
            exited: Wake::new().map_err(LaunchError::Setup)?,
            socket: Arc::new(child_end),
            stop: AtomicBool::new(false),
        });
        *lock(&self.inner.current) = Some(process.clone());
        let link = Link::new(
            host_end,
            doorbell,
            wake,
            crate::process::devices(process.pid),
            spec.limits,
        )
        .map_err(LaunchError::Setup)?;
        let child = Instance {
            number: instance,
            fake: self.inner.clone(),
            process: process.clone(),
            outgoing: Arc::new(Outgoing::new(
                process.socket.clone(),
                OutgoingLimits {
                    max_frame: MAX_FRAME,
                    max_queued_bytes: usize::MAX,
                },
                Some(child_bell.clone()),
            )),
            ledger: Ledger::new(SHM_THRESHOLD),
            delayed: Mutex::default(),
            outstanding: Mutex::default(),
        };
        let flusher = child.outgoing.clone();
        std::thread::Builder::new()
            .name(format!("fake-flush-{instance}"))
            .spawn(move || flusher.flush_when_writable())
            .map_err(LaunchError::Setup)?;
        std::thread::Builder::new()
            .name(format!("fake-child-{instance}"))
            .spawn(move || child.run(start, child_bell))
            .map_err(LaunchError::Setup)?;
        let process: Arc<dyn Process> = process;
        match await_hello(&link, &*process, started + spec.connect_timeout) {
            Ok(python_version) => Ok(Launched {
                process,
                link,
                python_version,
                connect_time: started.elapsed(),
            }),
            Err(NoHello::TimedOut) => {
                process.kill();
                Err(NoHello::TimedOut.into_launch_error(&*process, spec.connect_timeout))
            }
            Err(e) => Err(e.into_launch_error(&*process, spec.connect_timeout)),
        }
    }
}

/// The fake instance as the host sees it.
#[derive(Debug)]
struct FakeProcess {
    pid: u32,
    status: Mutex<Option<ExitCause>>,
    /// Readable once the instance ended.
    exited: Wake,
    socket: Arc<Socket>,
    stop: AtomicBool,
}

impl FakeProcess {
    /// Ends the instance (the first cause given wins): the host sees its end of the socket
    /// close and its exit descriptor fire.
    fn end(&self, cause: ExitCause) {
        let mut status = lock(&self.status);
        if status.is_some() {
            return;
        }
        *status = Some(cause);
        self.stop.store(true, Ordering::SeqCst);
        let _ = rustix::net::shutdown(&*self.socket, rustix::net::Shutdown::Both);
        self.exited.wake();
    }
}

impl Process for FakeProcess {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn kill(&self) {
        self.end(ExitCause::Signaled(libc::SIGKILL));
    }

    fn terminate(&self) {
        self.end(ExitCause::Signaled(libc::SIGTERM));
    }

    fn has_exited(&self) -> bool {
        lock(&self.status).is_some()
    }

    fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.exited.as_fd())
    }

    fn stderr_tail(&self) -> String {
        String::new()
    }

    fn crash_info(&self, cause: Option<ExitCause>) -> CrashInfo {
        let status = lock(&self.status).clone();
        CrashInfo::new(cause.or(status).unwrap_or(ExitCause::Unknown))
    }
}

/// An answer due at a time.
type Due = (Instant, Result<Value, CallError>);

/// One running fake instance: the child's side of the protocol.
struct Instance {
    number: u32,
    fake: Arc<Inner>,
    process: Arc<FakeProcess>,
    outgoing: Arc<Outgoing>,
    ledger: Ledger,
    /// Answers due later, by call id.
    delayed: Mutex<HashMap<u64, Due>>,
    /// Calls received and not answered.
    outstanding: Mutex<usize>,
}

impl Instance {
    fn send(&self, frame: ToHost) {
        if let Ok(sealed) = self.ledger.seal(frame) {
            let fds = sealed.fds();
            let _ = self.outgoing.send_with(sealed.bytes, fds);
        }
    }

    fn exit(&self, code: i32) {
        self.process.end(ExitCause::Exited(code));
        self.outgoing.close();
    }

    fn run(self, start: Start, doorbell: Arc<Doorbell>) {
        let hello = |protocol| ToHost::Hello {
            protocol,
            pid: self.process.pid,
            python: "fake".into(),
        };
        match &start {
            Start::ExitBeforeHello(code) => return self.exit(*code),
            Start::Silent => {}
            Start::WrongProtocol(protocol) => self.send(hello(*protocol)),
            _ => self.send(hello(PROTOCOL_VERSION)),
        }
        let mut incoming = Incoming::new(self.process.socket.clone(), MAX_FRAME, Some(doorbell));
        while !self.process.stop.load(Ordering::SeqCst) {
            let flow = incoming.drain(64, &mut |bytes, fds| self.handle(bytes, fds, &start));
            match flow {
                Err(ReadError::Closed) => return self.exit(0),
                Err(_) => return self.exit(70),
                Ok(_) => {}
            }
            self.answer_due();
            let next_due = lock(&self.delayed).values().map(|(at, _)| *at).min();
            let nap = next_due
                .map(|at| at.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_millis(50))
                .min(Duration::from_millis(50));
            let _ = wait_readable(&[self.process.socket.as_fd()], Some(nap));
        }
    }

    fn handle(&self, bytes: &[u8], fds: Vec<OwnedFd>, start: &Start) -> ControlFlow<()> {
        let Ok(envelope) = self.ledger.open::<ToChild>(bytes, fds) else {
            return ControlFlow::Break(());
        };
        match envelope.body {
            ToChild::Start(_) => match start {
                Start::Ok(methods) => self.send(ToHost::Started {
                    methods: methods.clone(),
                }),
                Start::Fail(error) => {
                    self.send(ToHost::StartFailed(error.clone()));
                    self.exit(1);
                    return ControlFlow::Break(());
                }
                _ => {}
            },
            ToChild::Call(call) | ToChild::Stream { call, .. } => return self.call(call),
            ToChild::Cancel { id } => {
                lock(&self.fake.record).cancels.push((self.number, id));
                if lock(&self.delayed).remove(&id).is_some() {
                    self.answered();
                    self.send(ToHost::Reply {
                        id,
                        result: Err(CallError::Cancelled),
                    });
                }
            }
            ToChild::Shutdown => {
                lock(&self.fake.record).shutdowns += 1;
                self.send(ToHost::ShutdownDone);
                self.exit(0);
                return ControlFlow::Break(());
            }
            ToChild::Reply { .. } | ToChild::ReleaseSlots { .. } | ToChild::Credit { .. } => {}
        }
        ControlFlow::Continue(())
    }

    fn call(&self, call: CallFrame) -> ControlFlow<()> {
        {
            let mut outstanding = lock(&self.outstanding);
            *outstanding += 1;
            let mut record = lock(&self.fake.record);
            record
                .calls
                .push((self.number, call.id, call.method.clone()));
            record.max_outstanding = record.max_outstanding.max(*outstanding);
        }
        match (self.fake.script)(&call) {
            Reply::Now(result) => {
                self.answered();
                self.send(ToHost::Reply {
                    id: call.id,
                    result,
                });
            }
            Reply::After(delay, result) => {
                lock(&self.delayed).insert(call.id, (Instant::now() + delay, result));
            }
            Reply::Hang => {}
            Reply::Yield(items) => {
                for value in items {
                    self.send(ToHost::Yield { id: call.id, value });
                }
                self.answered();
                self.send(ToHost::Reply {
                    id: call.id,
                    result: Ok(Value::Null),
                });
            }
            Reply::Exit(code) => {
                self.exit(code);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    fn answered(&self) {
        let mut outstanding = lock(&self.outstanding);
        *outstanding = outstanding.saturating_sub(1);
    }

    fn answer_due(&self) {
        let now = Instant::now();
        let due: Vec<(u64, Result<Value, CallError>)> = {
            let mut delayed = lock(&self.delayed);
            let ids: Vec<u64> = delayed
                .iter()
                .filter(|(_, (at, _))| *at <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| delayed.remove(&id).map(|(_, result)| (id, result)))
                .collect()
        };
        for (id, result) in due {
            self.answered();
            self.send(ToHost::Reply { id, result });
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
