//! The serving side (`troupe serve`): a liveliness token, the admin service, and one
//! queryable per served extension.
//!
//! A zenoh callback never blocks (a blocked one closes the whole connection after 5 s): the
//! extension's queryable puts each query in that extension's bounded queue and returns; past
//! the bound the query is answered at once with [`CallError::MailboxFull`]. A task per
//! extension drains the queue, at most [`Limits::in_flight`] calls running at once, each
//! through the extension's [`Caller`] with the caller's remaining deadline.
//!
//! A streamed call sends each item as a reply of its own, only while its caller has granted
//! credit; the caller's [`Control`] messages (credit, cancel) arrive on the host's control
//! key and reach the running call through [`Running`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use troupe_runtime::{Call, Caller};
use troupe_value::{CallError, RemoteException, Value};
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Subscriber;
use zenoh::query::{Query, Queryable};

use crate::admin::{AdminReply, AdminRequest, ExtensionHealth, Hello};
use crate::error::ClusterError;
use crate::frame::{
    self, Control, FrameError, MAX_CONTROL, MAX_FRAME, RemoteCall, RemoteReply, StreamPart,
};
use crate::keys;
use crate::runtime::{self, OnCluster, Task};
use crate::session::{self, ListenSpec, SharedSession};

/// The most client tokens a host counts.
const MAX_CLIENTS: usize = 65_536;

/// The largest credit window a streamed call gets, whatever its caller asks.
pub const MAX_STREAM_WINDOW: u32 = 256;

/// How much work a serving host takes in per extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Calls waiting per extension; more are refused with [`CallError::MailboxFull`].
    pub queue: usize,
    /// Calls running at once per extension.
    pub in_flight: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            queue: 256,
            in_flight: 64,
        }
    }
}

/// A running `troupe serve`: while it lives, its token, admin service and extension
/// queryables are declared. Dropping it undeclares them all.
pub struct Server {
    name: String,
    hello: Hello,
    _token: OnCluster<LivelinessToken>,
    _queryables: Vec<OnCluster<Queryable<()>>>,
    _control: OnCluster<Subscriber<()>>,
    _clients: OnCluster<Subscriber<()>>,
    clients: watch::Receiver<usize>,
    _drains: Vec<Task<()>>,
    _session: SharedSession,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("extensions", &self.hello.extensions)
            .finish()
    }
}

impl Server {
    /// Listens as `spec` says and serves `extensions` (name to caller: a started extension
    /// host's extensions), each under `limits`.
    pub async fn start(
        spec: ListenSpec,
        extensions: IndexMap<String, Caller>,
        limits: Limits,
    ) -> Result<Server, ClusterError> {
        keys::check_name("host", &spec.name)?;
        for name in extensions.keys() {
            keys::check_name("extension", name)?;
        }
        let config = session::server_config(&spec)?;
        let session = session::open(
            config,
            &spec.name,
            &spec.listen,
            session::DEFAULT_PROBE_TIMEOUT,
        )
        .await?;
        let hello = Hello::ours(&spec.name, extensions.keys().cloned().collect());
        let name = spec.name.clone();
        let declared = runtime::spawn(declare_all(
            session.clone(),
            hello.clone(),
            Arc::new(extensions),
            limits,
        ))?
        .await??;
        let (token, queryables, control, drains) = declared;
        let (count, clients) = watch::channel(0);
        let watched =
            runtime::spawn(watch_clients(session.clone(), name.clone(), count))?.await??;
        Ok(Server {
            name,
            hello,
            _token: token,
            _queryables: queryables,
            _control: control,
            _clients: watched,
            clients,
            _drains: drains,
            _session: session,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it says to a hello.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// How many clients are connected now (their tokens), as it changes.
    pub fn clients(&self) -> watch::Receiver<usize> {
        self.clients.clone()
    }

    /// Resolves once clients came and then none was connected for `grace` on end: the
    /// owner went away. A client that comes back within `grace` starts the wait over.
    pub async fn owner_gone(&self, grace: Duration) {
        let mut clients = self.clients();
        let _ = clients.wait_for(|n| *n > 0).await;
        loop {
            if clients.wait_for(|n| *n == 0).await.is_err() {
                return std::future::pending().await;
            }
            match tokio::time::timeout(grace, clients.wait_for(|n| *n > 0)).await {
                Err(_) => return,
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return std::future::pending().await,
            }
        }
    }
}

/// Watches the client tokens of host `host`, counting them into `count`.
async fn watch_clients(
    session: SharedSession,
    host: String,
    count: watch::Sender<usize>,
) -> Result<OnCluster<Subscriber<()>>, ClusterError> {
    let key = keys::client_tokens(&host);
    let present = Mutex::new(std::collections::HashSet::new());
    let subscriber = session
        .get()
        .liveliness()
        .declare_subscriber(&key)
        .history(true)
        .callback(move |sample| {
            let mut present = present.lock().unwrap_or_else(|p| p.into_inner());
            let client = sample.key_expr().as_str().to_owned();
            if sample.kind() == zenoh::sample::SampleKind::Put {
                // Bounded whatever clients declare: past it, more are not counted.
                if present.len() < MAX_CLIENTS {
                    present.insert(client);
                }
            } else {
                present.remove(&client);
            }
            count.send_replace(present.len());
        })
        .await
        .map_err(|e| ClusterError::Declare {
            host,
            what: format!("liveliness subscriber {key}"),
            reason: e.to_string(),
        })?;
    Ok(OnCluster::new(subscriber))
}

type Declared = (
    OnCluster<LivelinessToken>,
    Vec<OnCluster<Queryable<()>>>,
    OnCluster<Subscriber<()>>,
    Vec<Task<()>>,
);

/// The calls a host runs, by who made them, so that a caller's [`Control`] reaches its call.
/// At most [`Limits::in_flight`] per extension are here (a call enters once it has a slot).
#[derive(Default)]
struct Running(Mutex<HashMap<(String, u64), Arc<RunningCall>>>);

/// What a caller's [`Control`] messages act on.
struct RunningCall {
    cancel: Notify,
    /// Items the caller will take now (a streamed call's credit).
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
            credit: Semaphore::new(0),
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
    fn control(&self, control: Control) {
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

/// Declares the admin and extension queryables, then the token (so a client that sees the
/// token finds them).
async fn declare_all(
    session: SharedSession,
    hello: Hello,
    extensions: Arc<IndexMap<String, Caller>>,
    limits: Limits,
) -> Result<Declared, ClusterError> {
    let host = hello.host.clone();
    let failed = |what: String, e: zenoh::Error| ClusterError::Declare {
        host: host.clone(),
        what,
        reason: e.to_string(),
    };
    let zenoh = session.get();
    let handle = runtime::handle()?.clone();
    let mut queryables = Vec::new();
    let mut drains = Vec::new();
    let running = Arc::new(Running::default());

    let control_key = keys::control(&host);
    let control = {
        let running = running.clone();
        zenoh
            .declare_subscriber(&control_key)
            .callback(move |sample| {
                let payload = sample.payload();
                if payload.len() > MAX_CONTROL {
                    tracing::debug!(len = payload.len(), "control message too large");
                    return;
                }
                match frame::decode_control(&payload.to_bytes()) {
                    Ok(control) => running.control(control),
                    Err(error) => tracing::debug!(%error, "bad control message"),
                }
            })
            .await
            .map_err(|e| failed(format!("subscriber {control_key}"), e))?
    };

    let admin_key = keys::admin(&host);
    let admin = {
        let (hello, extensions, handle) = (hello.clone(), extensions.clone(), handle.clone());
        zenoh
            .declare_queryable(&admin_key)
            .callback(move |query| {
                let (hello, extensions) = (hello.clone(), extensions.clone());
                // Never block the callback: answer from a task.
                handle.spawn(answer_admin(query, hello, extensions));
            })
            .await
            .map_err(|e| failed(format!("queryable {admin_key}"), e))?
    };
    queryables.push(OnCluster::new(admin));

    for (name, caller) in extensions.iter() {
        let key = keys::extension_call(&host, name);
        let (queue, intake) = mpsc::channel::<Query>(limits.queue.max(1));
        let handle = handle.clone();
        let queryable = zenoh
            .declare_queryable(&key)
            .callback(move |query| match queue.try_send(query) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(query)) => {
                    handle.spawn(reply(query, Err(CallError::MailboxFull)));
                }
                Err(mpsc::error::TrySendError::Closed(query)) => {
                    handle.spawn(reply(query, Err(CallError::ActorStopped)));
                }
            })
            .await
            .map_err(|e| failed(format!("queryable {key}"), e))?;
        queryables.push(OnCluster::new(queryable));
        let slots = Arc::new(Semaphore::new(limits.in_flight.max(1)));
        drains.push(runtime::spawn(drain(
            intake,
            caller.clone(),
            slots,
            running.clone(),
        ))?);
    }

    let token_key = keys::host_token(&host);
    let token = zenoh
        .liveliness()
        .declare_token(&token_key)
        .await
        .map_err(|e| failed(format!("liveliness token {token_key}"), e))?;
    Ok((
        OnCluster::new(token),
        queryables,
        OnCluster::new(control),
        drains,
    ))
}

/// Runs the queued calls of one extension, at most `slots` at once.
async fn drain(
    mut intake: mpsc::Receiver<Query>,
    caller: Caller,
    slots: Arc<Semaphore>,
    running: Arc<Running>,
) {
    while let Some(query) = intake.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (caller, running) = (caller.clone(), running.clone());
        tokio::spawn(async move {
            serve_call(&caller, query, &running).await;
            drop(slot);
        });
    }
}

/// Reads one call query (every byte of it untrusted), makes the call and answers it, unless
/// its caller cancels it first (then the call is abandoned and nothing is sent).
async fn serve_call(caller: &Caller, query: Query, running: &Running) {
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
    running.credit.add_permits(window as usize);
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

fn cannot_cross(error: &FrameError) -> CallError {
    CallError::Remote(RemoteException {
        type_name: "troupe.cluster.FrameError".to_owned(),
        message: format!("the result cannot cross hosts: {error}"),
        traceback: String::new(),
    })
}

/// A query's payload, size-checked before it is copied.
fn read_payload(query: &Query) -> Result<Vec<u8>, FrameError> {
    let payload = query.payload().ok_or(FrameError::Empty)?;
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len: payload.len(),
            max: MAX_FRAME,
        });
    }
    Ok(payload.to_bytes().into_owned())
}

/// Sends `answer` (an answer that cannot be encoded becomes a typed error saying why).
async fn reply(query: Query, answer: RemoteReply) {
    let bytes = frame::encode_reply(&answer)
        .or_else(|error| frame::encode_reply(&Err(cannot_cross(&error))));
    let Ok(bytes) = bytes else {
        tracing::warn!("cannot encode an error reply");
        return;
    };
    send(&query, bytes).await;
}

async fn send(query: &Query, bytes: Vec<u8>) {
    // A reply takes the query's congestion control: `Block` (see `remote.rs`), never a
    // silent drop.
    let sent = query.reply(query.key_expr().clone(), bytes).await;
    if let Err(error) = sent {
        tracing::debug!(%error, key = %query.key_expr(), "reply not sent");
    }
}

async fn answer_admin(query: Query, hello: Hello, extensions: Arc<IndexMap<String, Caller>>) {
    let request = read_payload(&query)
        .and_then(|bytes| troupe_value::decode::<AdminRequest>(&bytes).map_err(FrameError::from));
    let answer = match request {
        Ok(AdminRequest::Hello) => AdminReply::Hello(hello),
        Ok(AdminRequest::Health) => AdminReply::Health(
            extensions
                .iter()
                .map(|(name, caller)| ExtensionHealth {
                    name: name.clone(),
                    up: !caller.is_closed(),
                })
                .collect(),
        ),
        Err(error) => {
            tracing::debug!(%error, "bad admin query");
            return;
        }
    };
    match troupe_value::encode(&answer) {
        Ok(bytes) => send(&query, bytes).await,
        Err(error) => tracing::warn!(%error, "cannot encode an admin reply"),
    }
}
