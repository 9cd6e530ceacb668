//! The calls a serving host runs: each call query read, made and answered; a streamed
//! call's items sent under its caller's credit; and the registry through which a caller's
//! [`Control`] messages (credit, cancel) reach its running call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use troupe_runtime::{Call, Caller};
use troupe_value::{CallError, Value};
use zenoh::query::Query;

use super::{read_payload, reply, send};
use crate::frame::{self, Control, FrameError, RemoteCall, StreamPart};

/// The largest credit window a streamed call gets, whatever its caller asks.
pub const MAX_STREAM_WINDOW: u32 = 256;

/// The calls a host runs, by who made them, so that a caller's [`Control`] reaches its call.
/// At most [`Limits::in_flight`] per extension are here (a call enters once it has a slot).
#[derive(Default)]
pub(super) struct Running(Mutex<HashMap<(String, u64), Arc<RunningCall>>>);

/// What a caller's [`Control`] messages act on.
struct RunningCall {
    cancel: Notify,
    /// Items the caller will take now (a streamed call's credit: its window to start with).
    credit: Semaphore,
    window: u32,
}

/// A call's place in [`Running`], left when dropped.
struct Entered<'a> {
    running: &'a Running,
    key: (String, u64),
    call: Arc<RunningCall>,
}

impl Running {
    fn enter(&self, remote: &RemoteCall, window: u32) -> Entered<'_> {
        let key = (remote.caller.clone(), remote.call.id);
        let call = Arc::new(RunningCall {
            cancel: Notify::new(),
            credit: Semaphore::new(window as usize),
            window,
        });
        self.lock().insert(key.clone(), call.clone());
        Entered {
            running: self,
            key,
            call,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), Arc<RunningCall>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Acts on a caller's message; one about a call not running here is ignored.
    pub(super) fn control(&self, control: Control) {
        let (key, credit) = match control {
            Control::Credit {
                caller,
                call,
                items,
            } => ((caller, call), Some(items)),
            Control::Cancel { caller, call } => ((caller, call), None),
        };
        let Some(call) = self.lock().get(&key).cloned() else {
            return;
        };
        match credit {
            // Never more than the window outstanding, whatever the caller says.
            Some(items) => {
                let room = call.window.saturating_sub(
                    u32::try_from(call.credit.available_permits()).unwrap_or(u32::MAX),
                );
                call.credit.add_permits(items.min(room) as usize);
            }
            None => call.cancel.notify_one(),
        }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let mut running = self.running.lock();
        // A caller that reused an id replaced this entry: leave its own.
        if running
            .get(&self.key)
            .is_some_and(|call| Arc::ptr_eq(call, &self.call))
        {
            running.remove(&self.key);
        }
    }
}

/// Reads one call query (every byte of it untrusted), makes the call and answers it, unless
/// its caller cancels it first (then the call is abandoned and nothing is sent).
pub(super) async fn serve_call(caller: &Caller, query: Query, running: &Running) {
    let remote = match read_payload(&query).and_then(|bytes| frame::decode_call(&bytes)) {
        Ok(remote) => remote,
        Err(error) => {
            let error = CallError::BadArguments {
                path: "frame".to_owned(),
                reason: error.to_string(),
            };
            return reply(query, Err(error)).await;
        }
    };
    let window = remote.window.map(|w| w.clamp(1, MAX_STREAM_WINDOW));
    let entered = running.enter(&remote, window.unwrap_or(0));
    let deadline = remote.deadline();
    let mut call = Call::new(remote.call.method, remote.call.args);
    call.kwargs = remote.call.kwargs;
    let answered = async {
        match window {
            None => {
                let answer = match deadline {
                    Some(deadline) => caller.call_timeout(call, deadline).await,
                    None => caller.call(call).await,
                };
                reply(query, answer).await;
            }
            Some(window) => stream(caller, call, deadline, window, query, &entered.call).await,
        }
    };
    tokio::select! {
        () = answered => {}
        () = entered.call.cancel.notified() => {}
    }
}

/// Runs a streamed call: each item is sent once the caller has credit for it, then the end.
async fn stream(
    caller: &Caller,
    call: Call,
    deadline: Option<Duration>,
    window: u32,
    query: Query,
    running: &RunningCall,
) {
    let mut items = caller.call_stream(call, deadline, window);
    let sent = async {
        loop {
            let item = match items.next().await {
                Some(Ok(item)) => item,
                Some(Err(error)) => return Err(error),
                None => return Ok(Value::Null),
            };
            match running.credit.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return Err(CallError::Cancelled),
            }
            send_part(&query, &StreamPart::Item(item)).await?;
        }
    };
    let end = match deadline {
        Some(deadline) => tokio::time::timeout(deadline, sent)
            .await
            .unwrap_or(Err(CallError::Timeout(deadline))),
        None => sent.await,
    };
    let _ = send_part(&query, &StreamPart::End(end)).await;
}

/// Sends one part of a streamed answer; an item that cannot cross hosts is the call's error.
async fn send_part(query: &Query, part: &StreamPart) -> Result<(), CallError> {
    let bytes = match frame::encode_part(part) {
        Ok(bytes) => bytes,
        Err(error) => return Err(cannot_cross(&error)),
    };
    send(query, bytes).await;
    Ok(())
}

pub(super) fn cannot_cross(error: &FrameError) -> CallError {
    frame::call_error(format!("the result cannot cross hosts: {error}"))
}
