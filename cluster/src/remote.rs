//! The client side: a [`RemoteHost`] is one session to one serving host, probed at start-up
//! and watched through its liveliness token; [`RemoteHost::extension`] gives a [`Caller`] for
//! one of its extensions, used exactly like a local or bridged one.
//!
//! A call is one zenoh query carrying the call frame and the caller's remaining deadline
//! (or the host's call timeout), made at most once:
//! - the answer is the extension's value or its [`CallError`];
//! - past the deadline it is [`CallError::Timeout`] (the host abandons the call at the same
//!   deadline, which cancels it in a bridged extension);
//! - when the host's token goes away (a crash, `kill -9`, a cut link) every pending call fails
//!   at once with [`CallError::HostLost`], and new calls fail so until the token is back;
//! - a caller that stops waiting gets nothing more; the host is told to abandon the call
//!   (a [`Control::Cancel`], best effort: one that overtakes its call is ignored).
//!
//! A streamed call ([`Caller::call_stream`]) is one query answered by several
//! [`StreamPart`]s: each item is pushed to the caller's stream as it arrives, and each batch
//! the caller takes is granted back to the host as credit ([`Control::Credit`]), so a slow
//! reader here slows the producer there with at most the window in between.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler, ResponseFuture};
use tokio::sync::watch;
use troupe_runtime::{ActorBuilder, Call, CallResult, Caller, ItemSink};
use troupe_value::CallError;
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Subscriber;
use zenoh::sample::SampleKind;

use crate::admin::{
    AdminReply, AdminRequest, CLUSTER_VERSION, ExtensionHealth, Hello, LifecycleReply,
    LifecycleRequest,
};
use crate::error::ClusterError;
use crate::failover::{Failover, Route};
use crate::frame::{self, CallOptions, Control, FrameError, MAX_FRAME};
use crate::keys;
use crate::runtime::{self, OnCluster};
use crate::session::{self, HostSpec, SharedSession, millis};

mod query;

use query::{Answer, await_answer, start_query, start_stream, tell};

/// How long a call that got no answer at all waits for the host's token to settle, to tell
/// a lost host ([`CallError::HostLost`]) from an extension it does not serve.
const SETTLE: Duration = Duration::from_millis(250);

/// A serving host this process calls: one session, probed when made.
#[derive(Debug)]
pub struct RemoteHost {
    link: Arc<HostLink>,
    hello: Hello,
}

/// What every call to one host shares; the session and the token watch end with the last.
struct HostLink {
    name: String,
    /// This session's id: with a call's id, what the host knows the call by.
    caller: String,
    /// Where [`Control`] messages to the host go.
    control_key: String,
    call_timeout: Duration,
    session: SharedSession,
    alive: watch::Receiver<bool>,
    _liveliness: OnCluster<Subscriber<()>>,
    /// This client's token at the host, present while the link lives.
    _present: OnCluster<LivelinessToken>,
}

impl std::fmt::Debug for HostLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostLink")
            .field("name", &self.name)
            .field("alive", &*self.alive.borrow())
            .finish_non_exhaustive()
    }
}

impl RemoteHost {
    /// Opens a session to `spec`'s host and probes it: its hello must come back within the
    /// probe timeout, in our cluster version, and its token must be seen. Nothing listening,
    /// refused credentials, or another program at the endpoint is an error here, at once.
    pub async fn connect(spec: HostSpec) -> Result<RemoteHost, ClusterError> {
        keys::check_name("host", &spec.name)?;
        let config = session::client_config(&spec)?;
        let session = session::open(config, &spec.name, &spec.connect, spec.probe_timeout).await?;
        let (alive_tx, alive) = watch::channel(false);
        let probe = runtime::spawn(probe(session.clone(), spec.clone(), alive_tx))?;
        let (hello, liveliness, present) = probe.await??;
        let link = Arc::new(HostLink {
            caller: session.get().zid().to_string(),
            control_key: keys::control(&spec.name),
            name: spec.name,
            call_timeout: spec.call_timeout,
            session,
            alive,
            _liveliness: liveliness,
            _present: present,
        });
        let mut alive = link.alive.clone();
        let seen = tokio::time::timeout(spec.probe_timeout, alive.wait_for(|alive| *alive)).await;
        if !matches!(seen, Ok(Ok(_))) {
            return Err(ClusterError::NoHello {
                host: link.name.clone(),
                timeout_ms: millis(spec.probe_timeout),
            });
        }
        Ok(RemoteHost { link, hello })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.link.name
    }

    /// What it said when probed.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Whether its token is there now.
    pub fn is_alive(&self) -> bool {
        *self.link.alive.borrow()
    }

    /// Asks it to stop or start one of the extensions it serves (its lifecycle service: a
    /// start waits until the extension is ready), waiting up to `timeout` for the answer.
    ///
    /// # Errors
    /// [`ClusterError::Lifecycle`] when the host refused or failed (why, typed);
    /// [`ClusterError::Unanswered`] when no answer came: the host is gone, or it has a users
    /// file and this client's user is not one of its operators.
    pub async fn lifecycle(
        &self,
        request: LifecycleRequest,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let session = self.link.session.clone();
        let host = self.link.name.clone();
        let extension = match &request {
            LifecycleRequest::Stop(name) | LifecycleRequest::Start(name) => name.clone(),
        };
        let key = keys::lifecycle(&host);
        let asked = runtime::spawn(async move {
            ask::<LifecycleReply>(&session, key, &request, timeout).await
        })?;
        match asked.await? {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ClusterError::Lifecycle {
                host: self.link.name.clone(),
                extension,
                source,
            }),
            Err(Unanswered::NoAnswer) => Err(ClusterError::Unanswered {
                host: self.link.name.clone(),
                service: "lifecycle",
                timeout_ms: millis(timeout),
            }),
            Err(Unanswered::Bad(source)) => Err(ClusterError::BadAnswer {
                host: self.link.name.clone(),
                service: "lifecycle",
                source,
            }),
            Err(Unanswered::Query(error)) => Err(error),
        }
    }

    /// Its extensions' state now.
    pub async fn health(&self, timeout: Duration) -> Result<Vec<ExtensionHealth>, ClusterError> {
        let session = self.link.session.clone();
        let name = self.link.name.clone();
        let asked =
            runtime::spawn(
                async move { admin(&session, &name, AdminRequest::Health, timeout).await },
            )?;
        match asked.await?? {
            AdminReply::Health(health) => Ok(health),
            AdminReply::Hello(_) => Err(ClusterError::NoHello {
                host: self.link.name.clone(),
                timeout_ms: millis(timeout),
            }),
        }
    }

    /// A caller for its extension `extension`, an actor of this actix system (call from
    /// within one).
    pub fn extension(&self, extension: &str) -> Result<Caller, ClusterError> {
        keys::check_name("extension", extension)?;
        if !self.hello.extensions.iter().any(|e| e == extension) {
            return Err(ClusterError::NotServed {
                host: self.link.name.clone(),
                extension: extension.to_owned(),
                serves: self.hello.extensions.clone(),
            });
        }
        let actor = RemoteExtension {
            link: self.link.clone(),
            target: format!("extension:{extension}"),
            key: keys::extension_call(&self.link.name, extension),
        };
        let name = format!("{}@{}", extension, self.link.name);
        Ok(ActorBuilder::new(name).spawn(actor).caller())
    }

    /// A caller for node `node` of pipeline `pipeline` that it runs for others: what a
    /// [`RemoteNode`](crate::edge::RemoteNode) sends its batches through (call from within an
    /// actix system).
    pub fn node(&self, pipeline: &str, node: &str) -> Result<Caller, ClusterError> {
        keys::check_name("pipeline", pipeline)?;
        keys::check_name("node", node)?;
        let name = keys::node_name(pipeline, node);
        if !self.hello.nodes.contains(&name) {
            return Err(ClusterError::NodeNotServed {
                host: self.link.name.clone(),
                node: name,
                serves: self.hello.nodes.clone(),
            });
        }
        let actor = RemoteExtension {
            link: self.link.clone(),
            target: format!("node:{name}"),
            key: keys::node_call(&self.link.name, pipeline, node),
        };
        Ok(ActorBuilder::new(format!("{name}@{}", self.link.name))
            .spawn(actor)
            .caller())
    }
}

impl RemoteHost {
    /// A caller for extension `extension` served by each of `hosts`, in order of
    /// preference (fail-over): each call goes to the first whose
    /// token is there; after a lost host only methods in `idempotent` are made again on the
    /// next. Every host must serve the extension.
    pub fn extension_on_any(
        hosts: &[&RemoteHost],
        extension: &str,
        idempotent: impl IntoIterator<Item = String>,
    ) -> Result<Caller, ClusterError> {
        let routes = hosts
            .iter()
            .map(|host| {
                Ok(Route {
                    host: host.link.name.clone(),
                    alive: host.link.alive.clone(),
                    caller: host.extension(extension)?,
                })
            })
            .collect::<Result<Vec<_>, ClusterError>>()?;
        if routes.is_empty() {
            return Err(ClusterError::NoHost {
                extension: extension.to_owned(),
            });
        }
        let name = format!(
            "{extension}@{}",
            routes
                .iter()
                .map(|r| r.host.as_str())
                .collect::<Vec<_>>()
                .join("|")
        );
        let failover = Failover {
            routes: routes.into(),
            idempotent: Arc::new(idempotent.into_iter().collect()),
        };
        Ok(ActorBuilder::new(name).spawn(failover).caller())
    }
}

/// What a probe leaves: the host's hello, the watch of its token, this client's own token.
type Probed = (Hello, OnCluster<Subscriber<()>>, OnCluster<LivelinessToken>);

/// Declares the token watch, then asks for the hello, then declares this client's token
/// (on the cluster runtime).
async fn probe(
    session: SharedSession,
    spec: HostSpec,
    alive: watch::Sender<bool>,
) -> Result<Probed, ClusterError> {
    let token = keys::host_token(&spec.name);
    let liveliness = session
        .get()
        .liveliness()
        .declare_subscriber(&token)
        .history(true)
        .callback(move |sample| {
            alive.send_replace(sample.kind() == SampleKind::Put);
        })
        .await
        .map_err(ClusterError::declare(
            &spec.name,
            format!("liveliness subscriber {token}"),
        ))?;
    let liveliness = OnCluster::new(liveliness);
    let AdminReply::Hello(hello) = admin(
        &session,
        &spec.name,
        AdminRequest::Hello,
        spec.probe_timeout,
    )
    .await?
    else {
        return Err(ClusterError::NoHello {
            host: spec.name.clone(),
            timeout_ms: millis(spec.probe_timeout),
        });
    };
    if hello.cluster_version != CLUSTER_VERSION {
        return Err(ClusterError::Version {
            host: spec.name,
            theirs: hello.cluster_version,
            ours: CLUSTER_VERSION,
        });
    }
    let present = keys::client_token(&spec.name, &session.get().zid().to_string());
    let present = session
        .get()
        .liveliness()
        .declare_token(&present)
        .await
        .map_err(ClusterError::declare(
            &spec.name,
            format!("liveliness token {present}"),
        ))?;
    Ok((hello, liveliness, OnCluster::new(present)))
}

/// Asks host `host`'s admin service; no answer within `timeout` is [`ClusterError::NoHello`].
async fn admin(
    session: &SharedSession,
    host: &str,
    request: AdminRequest,
    timeout: Duration,
) -> Result<AdminReply, ClusterError> {
    match ask(session, keys::admin(host), &request, timeout).await {
        Ok(reply) => Ok(reply),
        Err(Unanswered::NoAnswer) => Err(ClusterError::NoHello {
            host: host.to_owned(),
            timeout_ms: millis(timeout),
        }),
        Err(Unanswered::Bad(source)) => Err(ClusterError::BadHello {
            host: host.to_owned(),
            source,
        }),
        Err(Unanswered::Query(error)) => Err(error),
    }
}

/// Why a service query (admin, lifecycle) got no usable answer.
enum Unanswered {
    /// None within the timeout, or none at all.
    NoAnswer,
    /// One that could not be read.
    Bad(FrameError),
    /// The query could not be made.
    Query(ClusterError),
}

/// Asks the service at `key` (one query, one answer of type `R`).
async fn ask<R: serde::de::DeserializeOwned>(
    session: &SharedSession,
    key: String,
    request: &impl serde::Serialize,
    timeout: Duration,
) -> Result<R, Unanswered> {
    let payload = troupe_value::encode(request).map_err(|e| Unanswered::Bad(e.into()))?;
    let first = start_query(session.clone(), key, payload, timeout).map_err(Unanswered::Query)?;
    let bytes = match await_answer(first, timeout).await {
        Answer::Reply(bytes) => bytes,
        Answer::TooLarge(len) => {
            return Err(Unanswered::Bad(FrameError::TooLarge {
                len,
                max: MAX_FRAME,
            }));
        }
        Answer::NoReply | Answer::TimedOut | Answer::Failed(_) | Answer::Ended(_) => {
            return Err(Unanswered::NoAnswer);
        }
    };
    troupe_value::decode(&bytes).map_err(|e| Unanswered::Bad(e.into()))
}

/// An extension (or a node's batches) served by a remote host, as an actor: its handler
/// starts the query and returns at once, so its mailbox never waits on the network.
struct RemoteExtension {
    link: Arc<HostLink>,
    /// What a call that reaches nothing names (`extension:NAME`, `node:PIPELINE/NODE`).
    target: String,
    key: String,
}

impl Actor for RemoteExtension {
    type Context = Context<Self>;
}

impl Handler<Call> for RemoteExtension {
    type Result = ResponseFuture<CallResult>;

    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> Self::Result {
        let (link, target, key) = (self.link.clone(), self.target.clone(), self.key.clone());
        Box::pin(async move { link.call(&target, key, call).await })
    }
}

impl HostLink {
    fn lost(&self) -> CallError {
        CallError::HostLost {
            host: self.name.clone(),
        }
    }

    async fn call(&self, target: &str, key: String, mut call: Call) -> CallResult {
        let timeout = call
            .deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
            .unwrap_or(self.call_timeout);
        if timeout.is_zero() {
            return Err(CallError::Timeout(timeout));
        }
        let mut alive = self.alive.clone();
        if !*alive.borrow_and_update() {
            return Err(self.lost());
        }
        let sink = call.take_items();
        let options = CallOptions {
            caller: &self.caller,
            deadline: Some(timeout),
            window: sink.as_ref().map(ItemSink::window),
        };
        let payload = frame::encode_call(call.id, &call.method, &call.args, &call.kwargs, options)
            .map_err(|error| CallError::BadArguments {
                path: "args".to_owned(),
                reason: error.to_string(),
            })?;
        let abandoned = call.take_abandoned();
        let first = match sink {
            None => start_query(self.session.clone(), key, payload, timeout),
            Some(sink) => {
                let (session, control_key) = (self.session.clone(), self.control_key.clone());
                let (caller, id) = (self.caller.clone(), call.id);
                sink.on_taken(move |items| {
                    let credit = Control::Credit {
                        caller: caller.clone(),
                        call: id,
                        items,
                    };
                    tell(&session, &control_key, &credit);
                });
                start_stream(self.session.clone(), key, payload, timeout, sink)
            }
        }
        .map_err(|_| CallError::ActorStopped)?;
        let answer = tokio::select! {
            answer = await_answer(first, timeout) => answer,
            () = lost(&mut alive) => return Err(self.lost()),
            () = abandoned => {
                let cancel = Control::Cancel { caller: self.caller.clone(), call: call.id };
                tell(&self.session, &self.control_key, &cancel);
                return Err(CallError::Cancelled);
            }
        };
        match answer {
            Answer::Ended(reply) => reply,
            Answer::Reply(bytes) => frame::decode_reply(&bytes)
                .unwrap_or_else(|error| Err(frame_error(&self.name, &error.to_string()))),
            Answer::TooLarge(len) => Err(frame_error(
                &self.name,
                &FrameError::TooLarge {
                    len,
                    max: MAX_FRAME,
                }
                .to_string(),
            )),
            Answer::TimedOut => Err(CallError::Timeout(timeout)),
            Answer::Failed(reason) => Err(frame_error(&self.name, &reason)),
            Answer::NoReply => {
                // The host's going away ends its queries too: give its token a moment.
                match tokio::time::timeout(SETTLE, lost(&mut alive)).await {
                    Ok(()) => Err(self.lost()),
                    Err(_) => Err(CallError::NotFound {
                        target: format!("{target} on host {}", self.name),
                    }),
                }
            }
        }
    }
}

/// Resolves when the host's token is gone (or its watch ended).
async fn lost(alive: &mut watch::Receiver<bool>) {
    let _ = alive.wait_for(|alive| !*alive).await;
}

fn frame_error(host: &str, reason: &str) -> CallError {
    frame::call_error(format!("host {host}: {reason}"))
}
