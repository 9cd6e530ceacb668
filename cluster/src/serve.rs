//! The serving side (`troupe serve`): a liveliness token, the admin service, and one
//! queryable per served extension.
//!
//! A zenoh callback never blocks (a blocked one closes the whole connection after 5 s): the
//! extension's queryable puts each query in that extension's bounded queue and returns; past
//! the bound the query is answered at once with [`CallError::MailboxFull`]. A task per
//! extension drains the queue, at most [`Limits::in_flight`] calls running at once, each
//! through the extension's [`Caller`] with the caller's remaining deadline.

use std::sync::Arc;

use indexmap::IndexMap;
use tokio::sync::{Semaphore, mpsc};
use troupe_runtime::{Call, Caller};
use troupe_value::{CallError, RemoteException};
use zenoh::liveliness::LivelinessToken;
use zenoh::query::{Query, Queryable};

use crate::admin::{AdminReply, AdminRequest, ExtensionHealth, Hello};
use crate::error::ClusterError;
use crate::frame::{self, FrameError, MAX_FRAME, RemoteReply};
use crate::keys;
use crate::runtime::{self, OnCluster, Task};
use crate::session::{self, ListenSpec, SharedSession};

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
        let (token, queryables, drains) = declared;
        Ok(Server {
            name,
            hello,
            _token: token,
            _queryables: queryables,
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
}

type Declared = (
    OnCluster<LivelinessToken>,
    Vec<OnCluster<Queryable<()>>>,
    Vec<Task<()>>,
);

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
        drains.push(runtime::spawn(drain(intake, caller.clone(), slots))?);
    }

    let token_key = keys::host_token(&host);
    let token = zenoh
        .liveliness()
        .declare_token(&token_key)
        .await
        .map_err(|e| failed(format!("liveliness token {token_key}"), e))?;
    Ok((OnCluster::new(token), queryables, drains))
}

/// Runs the queued calls of one extension, at most `slots` at once.
async fn drain(mut intake: mpsc::Receiver<Query>, caller: Caller, slots: Arc<Semaphore>) {
    while let Some(query) = intake.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let caller = caller.clone();
        tokio::spawn(async move {
            let answer = run_call(&caller, &query).await;
            reply(query, answer).await;
            drop(slot);
        });
    }
}

/// The answer to one call query: the frame read (every byte of it untrusted), the call made.
async fn run_call(caller: &Caller, query: &Query) -> RemoteReply {
    let remote = match read_payload(query).and_then(|bytes| frame::decode_call(&bytes)) {
        Ok(remote) => remote,
        Err(error) => {
            return Err(CallError::BadArguments {
                path: "frame".to_owned(),
                reason: error.to_string(),
            });
        }
    };
    let deadline = remote.deadline();
    let mut call = Call::new(remote.call.method, remote.call.args);
    call.kwargs = remote.call.kwargs;
    match deadline {
        Some(deadline) => caller.call_timeout(call, deadline).await,
        None => caller.call(call).await,
    }
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
    let bytes = frame::encode_reply(&answer).or_else(|error| {
        frame::encode_reply(&Err(CallError::Remote(RemoteException {
            type_name: "troupe.cluster.FrameError".to_owned(),
            message: format!("the result cannot cross hosts: {error}"),
            traceback: String::new(),
        })))
    });
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
