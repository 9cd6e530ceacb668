//! The serving side (`troupe serve`): a liveliness token, the admin and lifecycle services,
//! and one queryable per served extension.
//!
//! A zenoh callback never blocks (a blocked one closes the whole connection after 5 s): the
//! extension's queryable puts each query in the extension's bounded queue for its calling
//! peer and returns (`intake.rs`); past the bound the query is answered at once with
//! [`CallError::MailboxFull`]. A task per extension takes from the peers' queues in turn, at
//! most [`Limits::in_flight`] calls running at once, each through the extension's [`Caller`]
//! with the caller's remaining deadline.
//!
//! A streamed call sends each item as a reply of its own, only while its caller has granted
//! credit; the caller's [`Control`] messages (credit, cancel) arrive on the host's control
//! key and reach the running call (`calls.rs`); client tokens are counted in `clients.rs`;
//! the caller each extension runs behind now (a new one after a lifecycle start) is kept in
//! `served.rs`.

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::{Semaphore, watch};
use troupe_manifest::ServedNode;
use troupe_runtime::Caller;
use troupe_value::CallError;
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Subscriber;
use zenoh::query::{Query, Queryable};

use crate::admin::{AdminReply, AdminRequest, Hello, Lifecycle};
use crate::edge;
use crate::error::ClusterError;
use crate::frame::{self, FrameError, MAX_CONTROL, MAX_FRAME, RemoteReply};
use crate::keys;
use crate::runtime::{self, OnCluster, Task};
use crate::session::{self, ListenSpec, SharedSession};

mod calls;
mod clients;
mod intake;
mod served;

pub use calls::MAX_STREAM_WINDOW;
use calls::{Running, cannot_cross, serve_call};
use intake::{Intake, peer_of};
use served::{Served, answer_lifecycle};

/// How much work a serving host takes in per extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Calls waiting per extension and calling peer; more from that peer are refused with
    /// [`CallError::MailboxFull`].
    pub queue: usize,
    /// Calling peers with calls waiting per extension at once; a call from one more peer is
    /// refused with [`CallError::MailboxFull`].
    pub peers: usize,
    /// Calls running at once per extension (the peers with calls waiting take turns).
    pub in_flight: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            queue: 256,
            peers: 32,
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
    /// host's extensions) and `nodes` (pipeline nodes placed on this host, each run for
    /// other hosts' pipelines: [`crate::edge`]), each under `limits`. Its lifecycle service
    /// stops and starts the extensions through `lifecycle`; without one it answers
    /// [`LifecycleError::Unavailable`](crate::admin::LifecycleError::Unavailable). Call from
    /// within an actix system (the nodes run behind its actors).
    pub async fn start(
        spec: ListenSpec,
        extensions: IndexMap<String, Caller>,
        nodes: Vec<ServedNode>,
        limits: Limits,
        lifecycle: Option<Arc<dyn Lifecycle>>,
    ) -> Result<Server, ClusterError> {
        keys::check_name("host", &spec.name)?;
        for name in extensions.keys() {
            keys::check_name("extension", name)?;
        }
        for node in &nodes {
            keys::check_name("pipeline", &node.pipeline)?;
            keys::check_name("node", &node.node)?;
        }
        let config = session::server_config(&spec)?;
        let session = session::open(
            config,
            &spec.name,
            &spec.listen,
            session::DEFAULT_PROBE_TIMEOUT,
        )
        .await?;
        let node_names = nodes
            .iter()
            .map(|node| keys::node_name(&node.pipeline, &node.node))
            .collect();
        let node_callers: Vec<(String, Caller)> = nodes
            .into_iter()
            .map(|node| {
                let key = keys::node_call(&spec.name, &node.pipeline, &node.node);
                (key, edge::serve(node))
            })
            .collect();
        let hello = Hello::ours(&spec.name, extensions.keys().cloned().collect(), node_names);
        let name = spec.name.clone();
        let declared = runtime::spawn(declare_all(
            session.clone(),
            hello.clone(),
            (Arc::new(Served::new(extensions, lifecycle)), node_callers),
            limits,
        ))?
        .await??;
        let (token, queryables, control, drains) = declared;
        let (count, clients) = watch::channel(0);
        let watched =
            runtime::spawn(clients::watch(session.clone(), name.clone(), count))?.await??;
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

type Declared = (
    OnCluster<LivelinessToken>,
    Vec<OnCluster<Queryable<()>>>,
    OnCluster<Subscriber<()>>,
    Vec<Task<()>>,
);

/// Declares the admin, lifecycle and extension queryables, then the token (so a client that
/// sees the token finds them).
async fn declare_all(
    session: SharedSession,
    hello: Hello,
    (served, nodes): (Arc<Served>, Vec<(String, Caller)>),
    limits: Limits,
) -> Result<Declared, ClusterError> {
    let host = hello.host.clone();
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
                // Size checked before the bytes are gathered.
                let read = frame::within(payload.len(), MAX_CONTROL)
                    .and_then(|()| frame::decode_control(&payload.to_bytes()));
                match read {
                    Ok(control) => running.control(control),
                    Err(error) => tracing::debug!(%error, "bad control message"),
                }
            })
            .await
            .map_err(ClusterError::declare(
                &host,
                format!("subscriber {control_key}"),
            ))?
    };

    let admin_key = keys::admin(&host);
    let admin = {
        let (hello, served, handle) = (hello.clone(), served.clone(), handle.clone());
        zenoh
            .declare_queryable(&admin_key)
            .callback(move |query| {
                let (hello, served) = (hello.clone(), served.clone());
                // Never block the callback: answer from a task.
                handle.spawn(answer_admin(query, hello, served));
            })
            .await
            .map_err(ClusterError::declare(
                &host,
                format!("queryable {admin_key}"),
            ))?
    };
    queryables.push(OnCluster::new(admin));

    let lifecycle_key = keys::lifecycle(&host);
    let lifecycle = {
        let (served, handle) = (served.clone(), handle.clone());
        zenoh
            .declare_queryable(&lifecycle_key)
            .callback(move |query| {
                handle.spawn(answer_lifecycle(query, served.clone()));
            })
            .await
            .map_err(ClusterError::declare(
                &host,
                format!("queryable {lifecycle_key}"),
            ))?
    };
    queryables.push(OnCluster::new(lifecycle));

    let targets = served
        .names()
        .map(|name| {
            let key = keys::extension_call(&host, name);
            (key, Target::Extension(served.clone(), name.clone()))
        })
        .chain(
            nodes
                .into_iter()
                .map(|(key, caller)| (key, Target::Node(caller))),
        )
        .collect::<Vec<_>>();
    for (key, target) in targets {
        let intake = Arc::new(Intake::new(limits));
        let queue = intake.clone();
        let handle = handle.clone();
        let queryable = zenoh
            .declare_queryable(&key)
            .callback(move |query| {
                if let Err(query) = queue.offer(peer_of(&query), query) {
                    handle.spawn(reply(query, Err(CallError::MailboxFull)));
                }
            })
            .await
            .map_err(ClusterError::declare(&host, format!("queryable {key}")))?;
        queryables.push(OnCluster::new(queryable));
        let slots = Arc::new(Semaphore::new(limits.in_flight.max(1)));
        drains.push(runtime::spawn(drain(
            intake,
            target,
            slots,
            running.clone(),
        ))?);
    }

    let token_key = keys::host_token(&host);
    let token =
        zenoh
            .liveliness()
            .declare_token(&token_key)
            .await
            .map_err(ClusterError::declare(
                &host,
                format!("liveliness token {token_key}"),
            ))?;
    Ok((
        OnCluster::new(token),
        queryables,
        OnCluster::new(control),
        drains,
    ))
}

/// What a queryable's calls go to.
enum Target {
    /// A served extension, through the caller it runs behind when the call's turn comes.
    Extension(Arc<Served>, String),
    /// A pipeline node run for others (its batches).
    Node(Caller),
}

impl Target {
    fn caller(&self) -> Option<Caller> {
        match self {
            Target::Extension(served, name) => served.caller(name),
            Target::Node(caller) => Some(caller.clone()),
        }
    }
}

/// Runs the queued calls of one extension or node, at most `slots` at once: a call is taken
/// from the peers' queues only once a slot is free, so the peers' turns decide what runs
/// next.
async fn drain(intake: Arc<Intake>, target: Target, slots: Arc<Semaphore>, running: Arc<Running>) {
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let query = intake.take().await;
        let Some(caller) = target.caller() else {
            return;
        };
        let running = running.clone();
        tokio::spawn(async move {
            serve_call(&caller, query, &running).await;
            drop(slot);
        });
    }
}

/// A query's payload, size-checked before it is copied.
pub(super) fn read_payload(query: &Query) -> Result<Vec<u8>, FrameError> {
    let payload = query.payload().ok_or(FrameError::Empty)?;
    frame::within(payload.len(), MAX_FRAME)?;
    Ok(payload.to_bytes().into_owned())
}

/// Sends `answer` (an answer that cannot be encoded becomes a typed error saying why).
pub(super) async fn reply(query: Query, answer: RemoteReply) {
    let bytes = frame::encode_reply(&answer)
        .or_else(|error| frame::encode_reply(&Err(cannot_cross(&error))));
    let Ok(bytes) = bytes else {
        tracing::warn!("cannot encode an error reply");
        return;
    };
    send(&query, bytes).await;
}

pub(super) async fn send(query: &Query, bytes: Vec<u8>) {
    // A reply takes the query's congestion control: `Block` (see `remote.rs`), never a
    // silent drop.
    let sent = query.reply(query.key_expr().clone(), bytes).await;
    if let Err(error) = sent {
        tracing::debug!(%error, key = %query.key_expr(), "reply not sent");
    }
}

async fn answer_admin(query: Query, hello: Hello, served: Arc<Served>) {
    let request = read_payload(&query)
        .and_then(|bytes| troupe_value::decode::<AdminRequest>(&bytes).map_err(FrameError::from));
    let answer = match request {
        Ok(AdminRequest::Hello) => AdminReply::Hello(hello),
        Ok(AdminRequest::Health) => AdminReply::Health(served.health()),
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
