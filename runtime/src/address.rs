//! Addresses: the only way to reach an actor's mailbox.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::dev::Envelope;
use actix::{Actor, AsyncContext, Context, Handler, Message};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use troupe_value::CallError;

use crate::call::{Call, CallResult};
use crate::mailbox::Senders;

/// Why a message could not be delivered or answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MailboxError {
    /// The actor is gone: nothing drains its mailbox any more.
    #[error("actor stopped")]
    Closed,
    /// The message was taken in, but the actor stopped before it replied.
    #[error("actor stopped before replying")]
    NoReply,
}

/// Why [`Address::try_send`] refused a message; the message comes back.
#[derive(Error)]
pub enum TrySendError<M> {
    /// The lane is at capacity.
    #[error("mailbox full")]
    Full(M),
    /// The actor is gone.
    #[error("actor stopped")]
    Closed(M),
}

impl<M> TrySendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            TrySendError::Full(m) | TrySendError::Closed(m) => m,
        }
    }
}

impl<M> fmt::Debug for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

/// Which of an actor's two lanes a message goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Ordinary messages, in order per sender, bounded by the mailbox capacity.
    Data,
    /// Control messages (stop, cancel, interrupt): handled before any queued data message.
    Control,
}

/// A handle to an actor's bounded mailbox. Cheap to clone; the actor lives while any clone
/// does (or until it stops itself).
pub struct Address<A: Actor> {
    senders: Senders<A>,
    name: Arc<str>,
}

impl<A: Actor> Clone for Address<A> {
    fn clone(&self) -> Self {
        Address {
            senders: self.senders.clone(),
            name: self.name.clone(),
        }
    }
}

impl<A: Actor> fmt::Debug for Address<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Address").field("name", &self.name).finish()
    }
}

/// The reply to a message handed over by [`Address::try_send`].
pub struct Reply<R>(oneshot::Receiver<R>);

impl<R> Future for Reply<R> {
    type Output = Result<R, MailboxError>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map_err(|_| MailboxError::NoReply)
    }
}

impl<A> Address<A>
where
    A: Actor<Context = Context<A>>,
{
    pub(crate) fn new(senders: Senders<A>, name: Arc<str>) -> Address<A> {
        Address { senders, name }
    }

    /// The actor's name (shown in traces and events).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the actor is gone for good.
    pub fn is_closed(&self) -> bool {
        self.senders.data.is_closed()
    }

    fn lane(&self, lane: Lane) -> &mpsc::Sender<Envelope<A>> {
        match lane {
            Lane::Data => &self.senders.data,
            Lane::Control => &self.senders.control,
        }
    }

    /// Sends `msg` on the data lane and waits for the reply. When the lane is full this waits
    /// for room (backpressure): it never queues past the capacity.
    pub async fn send<M>(&self, msg: M) -> Result<M::Result, MailboxError>
    where
        A: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.send_on(Lane::Data, msg).await
    }

    /// Sends `msg` on `lane` and waits for the reply (waiting for room when the lane is full).
    pub async fn send_on<M>(&self, lane: Lane, msg: M) -> Result<M::Result, MailboxError>
    where
        A: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let (tx, rx) = oneshot::channel();
        self.enqueue(lane, msg, Some(tx)).await?;
        rx.await.map_err(|_| MailboxError::NoReply)
    }

    /// Sends `msg` on `lane` if there is room now; gives the message back if not.
    ///
    /// Dropping the returned [`Reply`] before the actor takes the message cancels it: the
    /// actor skips it. Use [`Address::try_tell`] for fire-and-forget.
    pub fn try_send<M>(&self, lane: Lane, msg: M) -> Result<Reply<M::Result>, TrySendError<M>>
    where
        A: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let (tx, rx) = oneshot::channel();
        self.try_enqueue(lane, msg, Some(tx)).map(|()| Reply(rx))
    }

    /// Sends `msg` on `lane` without asking for a reply, if there is room now; gives the
    /// message back if not.
    pub fn try_tell<M>(&self, lane: Lane, msg: M) -> Result<(), TrySendError<M>>
    where
        A: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.try_enqueue(lane, msg, None)
    }

    fn try_enqueue<M>(
        &self,
        lane: Lane,
        msg: M,
        reply: Option<oneshot::Sender<M::Result>>,
    ) -> Result<(), TrySendError<M>>
    where
        A: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        match self.lane(lane).try_reserve() {
            Ok(permit) => {
                permit.send(Envelope::new(msg, reply));
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => Err(TrySendError::Full(msg)),
            Err(mpsc::error::TrySendError::Closed(())) => Err(TrySendError::Closed(msg)),
        }
    }

    /// Sends `msg` on `lane` without asking for a reply, waiting for room if the lane is full.
    pub async fn tell<M>(&self, lane: Lane, msg: M) -> Result<(), MailboxError>
    where
        A: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.enqueue(lane, msg, None).await
    }

    /// Waits for room on `lane`, then queues `msg` with its reply channel.
    async fn enqueue<M>(
        &self,
        lane: Lane,
        msg: M,
        reply: Option<oneshot::Sender<M::Result>>,
    ) -> Result<(), MailboxError>
    where
        A: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let permit = self
            .lane(lane)
            .reserve()
            .await
            .map_err(|_| MailboxError::Closed)?;
        permit.send(Envelope::new(msg, reply));
        Ok(())
    }

    /// Forwards `msg` from inside another actor's handler, keeping backpressure: if the data
    /// lane is full, `ctx` waits (handles nothing else) until there is room, so the
    /// forwarding actor's own mailbox fills up in turn.
    ///
    /// Call it at most once per handler invocation: to pass several messages, use
    /// [`Address::forward_all`], which keeps their order (actix runs pending `ctx.wait`
    /// futures newest first, so two waiting forwards would arrive reversed).
    pub fn forward<M, B>(&self, msg: M, ctx: &mut Context<B>) -> Result<(), MailboxError>
    where
        A: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
        B: Actor<Context = Context<B>>,
    {
        self.forward_all(std::iter::once(msg), ctx)
    }

    /// Forwards `msgs` in order from inside another actor's handler, keeping backpressure:
    /// they go straight into the data lane while it has room; the rest wait in one future
    /// that `ctx` waits on, sent one by one as room appears.
    pub fn forward_all<M, B>(
        &self,
        msgs: impl IntoIterator<Item = M>,
        ctx: &mut Context<B>,
    ) -> Result<(), MailboxError>
    where
        A: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
        B: Actor<Context = Context<B>>,
    {
        let mut msgs = msgs.into_iter();
        for msg in msgs.by_ref() {
            match self.try_tell(Lane::Data, msg) {
                Ok(()) => continue,
                Err(TrySendError::Closed(_)) => return Err(MailboxError::Closed),
                Err(TrySendError::Full(first)) => {
                    let rest: Vec<M> = std::iter::once(first).chain(msgs).collect();
                    let next = self.clone();
                    ctx.wait(actix::fut::wrap_future(async move {
                        for msg in rest {
                            if next.tell(Lane::Data, msg).await.is_err() {
                                tracing::debug!(actor = %next.name, "forward target stopped while full");
                                return;
                            }
                        }
                    }));
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Calls the actor and waits for the answer (see [`Caller::call`]).
    pub async fn call(&self, call: Call) -> CallResult
    where
        A: Handler<Call>,
    {
        call_on(self, call, None).await
    }

    /// [`Address::call`] with a deadline (see [`Caller::call_timeout`]).
    pub async fn call_timeout(&self, call: Call, timeout: Duration) -> CallResult
    where
        A: Handler<Call>,
    {
        call_on(self, call, Some(timeout)).await
    }

    /// A handle that does not keep the actor alive ([`WeakAddress::upgrade`] gives the
    /// address back while some other handle does).
    pub fn downgrade(&self) -> WeakAddress<A> {
        WeakAddress {
            control: self.senders.control.downgrade(),
            data: self.senders.data.downgrade(),
            name: self.name.clone(),
        }
    }

    /// A type-erased handle for dynamic calls to this actor.
    pub fn caller(&self) -> Caller
    where
        A: Handler<Call>,
    {
        Caller(Arc::new(self.clone()))
    }
}

/// An [`Address`] that does not keep its actor alive: for registries and routers that must
/// not decide how long the actors they list live.
pub struct WeakAddress<A: Actor> {
    control: mpsc::WeakSender<Envelope<A>>,
    data: mpsc::WeakSender<Envelope<A>>,
    name: Arc<str>,
}

impl<A: Actor> Clone for WeakAddress<A> {
    fn clone(&self) -> Self {
        WeakAddress {
            control: self.control.clone(),
            data: self.data.clone(),
            name: self.name.clone(),
        }
    }
}

impl<A: Actor> fmt::Debug for WeakAddress<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakAddress")
            .field("name", &self.name)
            .finish()
    }
}

impl<A> WeakAddress<A>
where
    A: Actor<Context = Context<A>>,
{
    /// The address, while another handle keeps the actor alive.
    pub fn upgrade(&self) -> Option<Address<A>> {
        Some(Address::new(
            Senders {
                control: self.control.upgrade()?,
                data: self.data.upgrade()?,
            },
            self.name.clone(),
        ))
    }
}

type BoxEnqueue<'a> =
    Pin<Box<dyn Future<Output = Result<Reply<CallResult>, MailboxError>> + Send + 'a>>;

/// What the call path needs of an actor's address, whatever the actor.
trait CallTarget: Send + Sync {
    /// Enqueues without waiting if there is room (the fast path: no allocation here). The
    /// call comes back unboxed when refused: boxing it would cost the fast path.
    #[allow(clippy::result_large_err)]
    fn try_enqueue(&self, call: Call) -> Result<Reply<CallResult>, TrySendError<Call>>;
    /// Waits for room, then enqueues.
    fn enqueue(&self, call: Call) -> BoxEnqueue<'_>;
    fn name(&self) -> &str;
    fn is_closed(&self) -> bool;
    fn downgrade(&self) -> WeakCaller;
}

impl<A> CallTarget for Address<A>
where
    A: Actor<Context = Context<A>> + Handler<Call>,
{
    #[allow(clippy::result_large_err)]
    fn try_enqueue(&self, call: Call) -> Result<Reply<CallResult>, TrySendError<Call>> {
        self.try_send(Lane::Data, call)
    }

    fn enqueue(&self, call: Call) -> BoxEnqueue<'_> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.enqueue(Lane::Data, call, Some(tx)).await?;
            Ok(Reply(rx))
        })
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn is_closed(&self) -> bool {
        Address::is_closed(self)
    }

    fn downgrade(&self) -> WeakCaller {
        WeakCaller(Arc::new(Address::downgrade(self)))
    }
}

/// What [`WeakCaller::upgrade`] needs, whatever the actor.
trait WeakCallTarget: Send + Sync {
    fn upgrade(&self) -> Option<Caller>;
    fn name(&self) -> &str;
}

impl<A> WeakCallTarget for WeakAddress<A>
where
    A: Actor<Context = Context<A>> + Handler<Call>,
{
    fn upgrade(&self) -> Option<Caller> {
        WeakAddress::upgrade(self).map(|address| address.caller())
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// A [`Caller`] that does not keep its actor alive.
#[derive(Clone)]
pub struct WeakCaller(Arc<dyn WeakCallTarget>);

impl fmt::Debug for WeakCaller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WeakCaller").field(&self.0.name()).finish()
    }
}

impl WeakCaller {
    /// The caller, while another handle keeps the actor alive.
    pub fn upgrade(&self) -> Option<Caller> {
        self.0.upgrade()
    }
}

/// Whether `deadline` (set) has passed.
fn deadline_passed(deadline: Option<std::time::Instant>) -> bool {
    deadline.is_some_and(|deadline| std::time::Instant::now() >= deadline)
}

/// The one implementation of a dynamic call, behind [`Caller::call`], [`Address::call`] and
/// the handles built on them: a `call` tracing span (actor, method, call id); the call put in
/// the data lane, waiting for room when it is full; the caller's deadline, if any, recorded
/// in the call and enforced here; and the call's abandon signal, which fires (telling the
/// actor to stop the work, see [`Call::take_abandoned`]) when this future is dropped or its
/// deadline passes.
async fn call_on(target: &dyn CallTarget, mut call: Call, timeout: Option<Duration>) -> CallResult {
    let span = tracing::debug_span!("call", actor = %target.name(), method = %call.method, call_id = call.id);
    let _waiting = call.watched();
    if let Some(timeout) = timeout {
        call.deadline = Some(std::time::Instant::now() + timeout);
    }
    let deadline = call.deadline;
    let answer = async move {
        let reply = match target.try_enqueue(call) {
            Ok(reply) => reply,
            Err(TrySendError::Full(call)) => match target.enqueue(call).await {
                Ok(reply) => reply,
                Err(_) => return Err(CallError::ActorStopped),
            },
            Err(TrySendError::Closed(_)) => return Err(CallError::ActorStopped),
        };
        reply.await.unwrap_or(Err(CallError::ActorStopped))
    };
    let answer = async move {
        match timeout {
            // The actor may enforce the same deadline itself and answer first; either way
            // the caller sees the timeout it asked for.
            Some(timeout) => match tokio::time::timeout(timeout, answer).await {
                Ok(Err(CallError::Timeout(_))) if deadline_passed(deadline) => {
                    Err(CallError::Timeout(timeout))
                }
                Ok(answer) => answer,
                Err(_) => Err(CallError::Timeout(timeout)),
            },
            None => answer.await,
        }
    };
    if span.is_disabled() {
        answer.await
    } else {
        answer.instrument(span).await
    }
}

/// A handle that answers dynamic [`Call`]s, whatever actor is behind it: a local Rust actor
/// or a bridged extension. Cheap to clone.
#[derive(Clone)]
pub struct Caller(Arc<dyn CallTarget>);

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Caller").field(&self.0.name()).finish()
    }
}

/// A call handed over by [`Caller::try_call`]: resolves to its answer. Dropping it before
/// then abandons the call (the actor is told, as for a dropped [`Caller::call`]).
pub struct PendingCall {
    reply: Reply<CallResult>,
    _waiting: crate::call::Waiting,
}

impl fmt::Debug for PendingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingCall").finish_non_exhaustive()
    }
}

impl Future for PendingCall {
    type Output = CallResult;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<CallResult> {
        Pin::new(&mut self.reply)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(CallError::ActorStopped)))
    }
}

impl Caller {
    /// Calls the actor and waits for its answer, waiting for mailbox room first if the
    /// mailbox is full. Dropping the future abandons the call.
    pub async fn call(&self, call: Call) -> CallResult {
        call_on(&*self.0, call, None).await
    }

    /// [`Caller::call`] with a deadline: past it the call fails with
    /// [`CallError::Timeout`] and is abandoned (skipped if it has not started; a bridged
    /// extension cancels it in its child).
    pub async fn call_timeout(&self, call: Call, timeout: Duration) -> CallResult {
        call_on(&*self.0, call, Some(timeout)).await
    }

    /// Calls the actor for a stream of items ([`crate::stream`]): each item as the actor
    /// produces it, at most `window` produced and not yet taken, then its final value unless
    /// that is `Null`. `timeout` covers the whole stream. Dropping the stream abandons the
    /// call.
    pub fn call_stream(
        &self,
        mut call: Call,
        timeout: Option<Duration>,
        window: u32,
    ) -> crate::CallStream {
        let items = call.streamed(window);
        let target = self.0.clone();
        let answer = async move { call_on(&*target, call, timeout).await };
        crate::CallStream::new(items, answer)
    }

    /// Hands `call` over only if the mailbox has room now: [`CallError::MailboxFull`] if it
    /// has none, [`CallError::ActorStopped`] if the actor is gone.
    pub fn try_call(&self, mut call: Call) -> Result<PendingCall, CallError> {
        let waiting = call.watched();
        match self.0.try_enqueue(call) {
            Ok(reply) => Ok(PendingCall {
                reply,
                _waiting: waiting,
            }),
            Err(TrySendError::Full(_)) => Err(CallError::MailboxFull),
            Err(TrySendError::Closed(_)) => Err(CallError::ActorStopped),
        }
    }

    /// The name of the actor behind it.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// A handle that does not keep the actor alive.
    pub fn downgrade(&self) -> WeakCaller {
        self.0.downgrade()
    }

    /// Whether the actor behind it is gone for good.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}
