//! The child's receive turn and its main loop.
//!
//! **The turn.** One thread at a time receives from the host: the main thread while it
//! waits for work, or any thread blocked in a call out (to the host, a singleton, another
//! extension) while nobody else receives, so that host -> extension -> host nesting works on
//! any thread. A thread waiting for the turn sleeps (without the GIL) until the holder gives
//! it up; every give bumps an epoch, so a waiter rechecks whether what it waits for (its
//! reply) was delivered meanwhile before it takes the turn and receives again. Replies are
//! delivered *before* the holder gives the turn up, so a waiter never takes the turn to wait
//! for a reply that already came.
//!
//! **The main loop** ([`serve`]) runs on the main thread until the host asks to shut down.
//! It takes the turn, receives with the GIL released, and for a call to a plain `def` method
//! gives the turn back, converts the arguments, calls the method, converts the result and
//! sends the reply, all from Rust. Everything else (async methods, generators, awaitables,
//! exceptions, results that do not convert, replies to the child's own calls, cancels) goes
//! to the Python runtime, which handles it as it always did.
//!
//! Sending never waits (see `connection`): a thread that replies while the host is not
//! reading queues its frame and goes on, so it never keeps the child from receiving.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use troupe_protocol::{CallFrame, ToChild, ToHost};

use crate::connection::{Connection, Incoming, connection};
use crate::frames::{self, Surfaced};
use troupe_pyvalue::convert::{Path, from_python};

/// Who receives now.
struct Turn {
    state: Mutex<TurnState>,
    freed: Condvar,
}

struct TurnState {
    receiving: bool,
    /// Bumped whenever the turn is given up (or the loop told to stop).
    epoch: u64,
    waiters: usize,
}

static TURN: Turn = Turn {
    state: Mutex::new(TurnState {
        receiving: false,
        epoch: 0,
        waiters: 0,
    }),
    freed: Condvar::new(),
};

/// Set once the host asked to shut down.
static SHUTDOWN: AtomicBool = AtomicBool::new(false);

fn state() -> MutexGuard<'static, TurnState> {
    TURN.state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes the turn, unless `done()` is true first (then `false`, without it).
fn take(py: Python<'_>, done: &dyn Fn(Python<'_>) -> PyResult<bool>) -> PyResult<bool> {
    loop {
        let seen = state().epoch;
        if done(py)? {
            return Ok(false);
        }
        {
            let mut state = state();
            if state.epoch == seen && !state.receiving {
                state.receiving = true;
                return Ok(true);
            }
        }
        let taken = py.detach(|| {
            let mut state = state();
            loop {
                if state.epoch != seen {
                    // Given up (or stopped) since `done` was checked: check it again.
                    return false;
                }
                if !state.receiving {
                    state.receiving = true;
                    return true;
                }
                state.waiters += 1;
                state = TURN.freed.wait(state).unwrap_or_else(|p| p.into_inner());
                state.waiters -= 1;
            }
        });
        if taken {
            return Ok(true);
        }
    }
}

/// Gives the turn up; threads waiting for it recheck what they wait for.
fn give() {
    let mut state = state();
    state.receiving = false;
    state.epoch += 1;
    if state.waiters > 0 {
        TURN.freed.notify_all();
    }
}

/// Gives the turn up when dropped.
struct Held;

impl Drop for Held {
    fn drop(&mut self) {
        give();
    }
}

/// Takes the receive turn unless `done()` is true first (then `False`).
#[pyfunction]
pub(crate) fn turn_take(py: Python<'_>, done: &Bound<'_, PyAny>) -> PyResult<bool> {
    take(py, &|_| done.call0()?.is_truthy())
}

/// Gives the receive turn up.
#[pyfunction]
pub(crate) fn turn_give() {
    give();
}

/// The host asked to shut down (seen by a thread other than [`serve`]'s): the main loop
/// ends.
#[pyfunction]
pub(crate) fn stop_serving() {
    SHUTDOWN.store(true, Ordering::SeqCst);
    let mut state = state();
    state.epoch += 1;
    if state.waiters > 0 {
        TURN.freed.notify_all();
    }
}

/// Serves the host until it asks to shut down. `plain`: name -> bound method of the
/// extension's plain `def` methods; `runtime` handles everything else (its `handle`,
/// `deliver_reply` and `finish_call`).
#[pyfunction]
pub(crate) fn serve(
    py: Python<'_>,
    runtime: &Bound<'_, PyAny>,
    plain: &Bound<'_, PyDict>,
) -> PyResult<()> {
    let connection = connection()?;
    let mut methods: HashMap<String, Py<PyAny>> = HashMap::new();
    for (name, method) in plain.iter() {
        methods.insert(name.extract()?, method.unbind());
    }
    let handle = runtime.getattr("handle")?;
    let deliver = runtime.getattr("deliver_reply")?;
    let finish = runtime.getattr("finish_call")?;
    let stopped = |_: Python<'_>| Ok(SHUTDOWN.load(Ordering::SeqCst));
    while !SHUTDOWN.load(Ordering::SeqCst) {
        if !take(py, &stopped)? {
            break;
        }
        let held = Held;
        match py.detach(|| connection.next_frame(None)) {
            Incoming::Frame(ToChild::Call(call)) if methods.contains_key(&call.method) => {
                drop(held);
                let method = methods[&call.method].bind(py);
                call_plain(py, connection, method, call, &finish)?;
            }
            Incoming::Frame(ToChild::Shutdown) => {
                SHUTDOWN.store(true, Ordering::SeqCst);
                runtime.setattr("shutdown_requested", true)?;
                drop(held);
            }
            Incoming::Frame(frame @ ToChild::Reply { .. }) => {
                // Delivered before the turn is given up (see the module docs).
                if let Surfaced::Tuple(tuple) = frames::surface(py, connection, frame)? {
                    deliver.call1((tuple,))?;
                }
                drop(held);
            }
            Incoming::Frame(frame) => {
                let surfaced = frames::surface(py, connection, frame)?;
                drop(held);
                if let Surfaced::Tuple(tuple) = surfaced {
                    handle.call1((tuple,))?;
                }
            }
            Incoming::Closed => {
                drop(held);
                handle.call1((frames::closed(py)?,))?;
            }
            Incoming::TimedOut => drop(held),
        }
    }
    Ok(())
}

/// Runs a plain `def` method for the host's call and sends its answer; what Rust cannot
/// finish (an exception, a generator, an awaitable, a value that does not convert) goes to
/// the runtime's `finish_call(id, result, exception)`.
fn call_plain(
    py: Python<'_>,
    connection: &Connection,
    method: &Bound<'_, PyAny>,
    call: CallFrame,
    finish: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let id = call.id;
    let (args, kwargs) = match frames::call_arguments(py, &call) {
        Ok(converted) => converted,
        Err(error) => {
            py.detach(|| frames::answer(connection, id, error))?;
            return Ok(());
        }
    };
    let called = if call.kwargs.is_empty() {
        method.call1(args)
    } else {
        method.call(args, Some(&kwargs))
    };
    match called {
        Ok(result) => match from_python(&result, &Path::Root("result"), 0) {
            Ok(value) => {
                let reply = ToHost::Reply {
                    id,
                    result: Ok(value),
                };
                py.detach(|| connection.send(reply))?;
            }
            Err(_) => {
                finish.call1((id, result, py.None()))?;
            }
        },
        // Exceptions go back as errors; `SystemExit` and friends end the loop.
        Err(e) if e.is_instance_of::<PyException>(py) => {
            finish.call1((id, py.None(), e.into_value(py)))?;
        }
        Err(e) => return Err(e),
    }
    Ok(())
}
