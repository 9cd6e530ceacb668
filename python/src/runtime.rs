//! troupe's runtime in a Python process: one actix system on a thread of its own, started
//! on first use, where every extension, singleton and pipeline of the process lives.
//!
//! Python threads never run actors: they hand work to the runtime ([`Runtime::spawn`]) and
//! wait for its answer without the GIL ([`wait`]), waking every [`SIGNAL_CHECK`] to let
//! Ctrl-C through. No actor thread ever takes the GIL: results bound for asyncio go through
//! [`crate::completion`], to the loop's own thread.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use actix::{Arbiter, System};
use actix_rt::ArbiterHandle;
use pyo3::prelude::*;

use crate::errors::HostError;

/// How often a blocked Python thread looks for a pending signal (Ctrl-C).
pub(crate) const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// The process's runtime.
pub(crate) struct Runtime {
    system: System,
    arbiter: ArbiterHandle,
    thread: Mutex<Option<JoinHandle<()>>>,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Set in a child forked after the runtime started (by `os.register_at_fork`, see
/// [`after_fork_in_child`]): the child has a copy of [`RUNTIME`] but not its thread, so it
/// must not use (or join) it. A flag, not a pid check: calls read it, cheaply.
static FORKED: AtomicBool = AtomicBool::new(false);

/// Runs in the child after `os.fork()`.
pub(crate) fn after_fork_in_child() {
    if RUNTIME.get().is_some() {
        FORKED.store(true, Ordering::Relaxed);
    }
}

/// The runtime if it was started in this process.
pub(crate) fn started() -> Option<&'static Runtime> {
    RUNTIME.get().filter(|_| !forked())
}

/// Whether this process was forked from one whose runtime had started.
pub(crate) fn forked() -> bool {
    FORKED.load(Ordering::Relaxed)
}

/// The runtime, started on first use.
///
/// # Errors
/// [`HostError::Runtime`] when its thread cannot be started; [`HostError::Forked`] in a
/// child forked after the parent started it.
pub(crate) fn runtime() -> Result<&'static Runtime, HostError> {
    if let Some(runtime) = RUNTIME.get() {
        return runtime.here();
    }
    // One thread starts it; the others wait here and take that one.
    static STARTING: Mutex<()> = Mutex::new(());
    let _starting = STARTING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(runtime) = RUNTIME.get() {
        return runtime.here();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("troupe-runtime".into())
        .spawn(move || {
            let system = System::new();
            let _ = tx.send((System::current(), Arbiter::current()));
            let _ = system.run();
        })
        .map_err(|e| HostError::Runtime(e.to_string()))?;
    let (system, arbiter) = rx
        .recv()
        .map_err(|_| HostError::Runtime("its thread ended at start".into()))?;
    Ok(RUNTIME.get_or_init(|| Runtime {
        system,
        arbiter,
        thread: Mutex::new(Some(thread)),
    }))
}

impl Runtime {
    /// This runtime, if it runs in this process.
    fn here(&'static self) -> Result<&'static Runtime, HostError> {
        if !forked() {
            Ok(self)
        } else {
            Err(HostError::Forked)
        }
    }

    /// Runs the future `make` returns on the runtime's thread (it may hold `!Send` state).
    ///
    /// # Errors
    /// [`HostError::Stopped`] once the runtime has stopped.
    pub(crate) fn spawn<F, Fut>(&self, make: F) -> Result<(), HostError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let spawned = self.arbiter.spawn_fn(move || {
            actix_rt::spawn(make());
        });
        if spawned {
            Ok(())
        } else {
            Err(HostError::Stopped)
        }
    }

    /// Runs `make`'s future on the runtime and waits for its output (see [`wait`]).
    ///
    /// # Errors
    /// [`HostError::Stopped`], or the exception of a signal handler (Ctrl-C) that ran while
    /// waiting: the future is dropped then, which abandons what it was doing.
    pub(crate) fn run<T, F, Fut>(&self, py: Python<'_>, make: F) -> PyResult<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
        self.spawn(move || async move {
            tokio::select! {
                output = make() => { let _ = tx.send(output); }
                _ = cancelled => {}
            }
        })?;
        let output = wait(py, rx);
        drop(cancel);
        output
    }

    /// Runs `make`'s future on the runtime and waits for its output, like [`Runtime::run`],
    /// but a signal (Ctrl-C) only stops the *wait*: the work goes on to its end, and its
    /// output goes to `abandoned` (to undo it, such as stopping what a start started).
    /// [`Runtime::stop`] waits for such work (see [`linger_at_exit`]).
    ///
    /// # Errors
    /// As for [`Runtime::run`].
    pub(crate) fn run_to_end<T, F, Fut, A, AFut>(
        &self,
        py: Python<'_>,
        make: F,
        abandoned: A,
    ) -> PyResult<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        A: FnOnce(T) -> AFut + Send + 'static,
        AFut: Future<Output = ()> + 'static,
    {
        // Who takes the output is decided under one lock: the waiter (it came in time) or
        // `abandoned` (the waiter gave up first, or gave up as it came).
        let handoff = Arc::new(Mutex::new(Handoff::Waiting));
        let abandoned = Arc::new(Mutex::new(Some(abandoned)));
        let (bell, rung) = std::sync::mpsc::channel::<()>();
        let lingering = Lingering::enter();
        {
            let handoff = handoff.clone();
            let abandoned = abandoned.clone();
            self.spawn(move || async move {
                let _lingering = lingering;
                let output = make().await;
                let output = {
                    let mut handoff = lock(&handoff);
                    match *handoff {
                        Handoff::Abandoned => Some(output),
                        _ => {
                            *handoff = Handoff::Done(output);
                            None
                        }
                    }
                };
                let _ = bell.send(());
                if let Some(output) = output {
                    let undo = lock(&abandoned).take();
                    if let Some(undo) = undo {
                        undo(output).await;
                    }
                }
            })?;
        }
        let waited = wait(py, rung);
        let taken = std::mem::replace(&mut *lock(&handoff), Handoff::Abandoned);
        match (waited, taken) {
            (Ok(()), Handoff::Done(output)) => Ok(output),
            (Err(e), Handoff::Done(output)) => {
                // It came as the wait gave up: undone all the same.
                let lingering = Lingering::enter();
                let undo = lock(&abandoned).take();
                if let Some(undo) = undo {
                    let _ = self.spawn(move || async move {
                        let _lingering = lingering;
                        undo(output).await;
                    });
                }
                Err(e)
            }
            (Err(e), _) => Err(e),
            (Ok(()), _) => Err(HostError::Stopped.into()),
        }
    }

    /// Stops the runtime (what still runs on it is dropped) and waits for its thread.
    pub(crate) fn stop(&self) {
        self.system.stop();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

/// Where the output of [`Runtime::run_to_end`]'s work goes.
enum Handoff<T> {
    /// Not there yet; the caller waits.
    Waiting,
    /// There, for the caller.
    Done(T),
    /// The caller gave up: the output goes to `abandoned`.
    Abandoned,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Work of [`Runtime::run_to_end`] not finished yet: how many, and a bell rung at each end.
static LINGERING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// Counts one piece of work in [`LINGERING`] while it lives.
struct Lingering;

impl Lingering {
    fn enter() -> Lingering {
        *LINGERING
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        Lingering
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        *LINGERING
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
        LINGERING.1.notify_all();
    }
}

/// Waits (without the GIL) until no [`Runtime::run_to_end`] work is left — a start or
/// shutdown whose caller was interrupted — or `limit` passes, or a signal handler raises
/// (a second Ctrl-C at exit). Returns whether none is left.
pub(crate) fn linger_at_exit(py: Python<'_>, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let idle = py.detach(|| {
            let left = LINGERING
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (left, _) = LINGERING
                .1
                .wait_timeout_while(left, SIGNAL_CHECK, |left| *left > 0)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *left == 0
        });
        if idle {
            return true;
        }
        if std::time::Instant::now() >= deadline || py.check_signals().is_err() {
            return false;
        }
    }
}

/// Waits for `rx` without the GIL, running Python's signal handlers every
/// [`SIGNAL_CHECK`] (on the main thread: Ctrl-C raises `KeyboardInterrupt` here).
///
/// # Errors
/// [`HostError::Stopped`] when the sender is gone; a signal handler's exception.
pub(crate) fn wait<T: Send>(py: Python<'_>, mut rx: Receiver<T>) -> PyResult<T> {
    loop {
        let (back, received) = py.detach(move || {
            let received = rx.recv_timeout(SIGNAL_CHECK);
            (rx, received)
        });
        rx = back;
        match received {
            Ok(value) => return Ok(value),
            Err(RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(RecvTimeoutError::Disconnected) => return Err(HostError::Stopped.into()),
        }
    }
}
