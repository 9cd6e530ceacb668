//! Starting actors: plain or supervised, on this arbiter or another.

use std::sync::Arc;

use actix::{Actor, ArbiterHandle, AsyncContext, Context};
use tokio::sync::oneshot;

use crate::address::Address;
use crate::mailbox::{self, Driver, Exit, Intake, Lanes, MailboxConfig};
use crate::supervision::{self, RestartSpec, Supervised};

/// Configures and starts an actor.
///
/// ```
/// use actix::prelude::*;
/// use troupe_runtime::ActorBuilder;
///
/// struct Counter(u64);
/// impl Actor for Counter { type Context = Context<Self>; }
///
/// #[derive(Message)]
/// #[rtype(result = "u64")]
/// struct Add(u64);
///
/// impl Handler<Add> for Counter {
///     type Result = u64;
///     fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> u64 {
///         self.0 += n;
///         self.0
///     }
/// }
///
/// actix::System::new().block_on(async {
///     let counter = ActorBuilder::new("counter").capacity(16).spawn(Counter(0));
///     assert_eq!(counter.send(Add(2)).await.unwrap(), 2);
///     assert_eq!(counter.send(Add(3)).await.unwrap(), 5);
/// });
/// ```
#[derive(Debug, Clone)]
pub struct ActorBuilder {
    name: Arc<str>,
    mailbox: MailboxConfig,
    intake: Intake,
}

impl ActorBuilder {
    /// A builder for an actor called `name` with the default mailbox.
    pub fn new(name: impl AsRef<str>) -> ActorBuilder {
        ActorBuilder {
            name: Arc::from(name.as_ref()),
            mailbox: MailboxConfig::default(),
            intake: Intake::new(),
        }
    }

    /// Data-lane capacity (at least 1).
    pub fn capacity(mut self, capacity: usize) -> ActorBuilder {
        self.mailbox.capacity = capacity.max(1);
        self
    }

    /// Both lanes' sizes.
    pub fn mailbox(mut self, mailbox: MailboxConfig) -> ActorBuilder {
        self.mailbox = mailbox;
        self
    }

    /// The valve the actor's data lane goes through (see [`Intake`]): the actor keeps a
    /// clone to pause and resume what it takes.
    pub fn intake(mut self, intake: Intake) -> ActorBuilder {
        self.intake = intake;
        self
    }

    fn channels<A: Actor<Context = Context<A>>>(&self) -> (Address<A>, Lanes<A>) {
        let (senders, lanes) = mailbox::lanes(self.mailbox, self.intake.clone());
        (Address::new(senders, self.name.clone()), lanes)
    }

    /// Starts `actor` on the current arbiter. It is not restarted if it stops or panics.
    pub fn spawn<A: Actor<Context = Context<A>>>(self, actor: A) -> Address<A> {
        let (address, lanes) = self.channels();
        start_instance(actor, lanes, None);
        address
    }

    /// Starts `actor` on `arbiter`.
    pub fn spawn_on<A: Actor<Context = Context<A>> + Send>(
        self,
        arbiter: &ArbiterHandle,
        actor: A,
    ) -> Address<A> {
        let (address, lanes) = self.channels();
        let started = arbiter.spawn_fn(move || start_instance(actor, lanes, None));
        if !started {
            tracing::warn!(actor = %self.name, "arbiter is stopped; the actor never starts");
        }
        address
    }

    /// Starts the actor `factory` makes on the current arbiter, under a supervisor that makes
    /// a new one per `spec` whenever an instance ends.
    pub fn supervise<A, F>(self, spec: RestartSpec, factory: F) -> Supervised<A>
    where
        A: Actor<Context = Context<A>>,
        F: FnMut() -> A + 'static,
    {
        let (address, lanes) = self.channels();
        let (handle, run) = supervision::supervise(address, lanes, factory, spec);
        actix::spawn(run);
        handle
    }

    /// [`ActorBuilder::supervise`] on `arbiter`: the supervisor and every instance run there.
    pub fn supervise_on<A, F>(
        self,
        arbiter: &ArbiterHandle,
        spec: RestartSpec,
        factory: F,
    ) -> Supervised<A>
    where
        A: Actor<Context = Context<A>>,
        F: FnMut() -> A + Send + 'static,
    {
        let (address, lanes) = self.channels();
        let (handle, run) = supervision::supervise(address, lanes, factory, spec);
        if !arbiter.spawn(run) {
            tracing::warn!(actor = %self.name, "arbiter is stopped; the actor never starts");
        }
        handle
    }
}

/// Starts one instance of an actor that drains `lanes`; `on_exit` hears how it ended.
pub(crate) fn start_instance<A: Actor<Context = Context<A>>>(
    actor: A,
    lanes: Lanes<A>,
    on_exit: Option<oneshot::Sender<Exit<A>>>,
) {
    let _ = A::create(move |ctx| {
        ctx.spawn(Driver::new(lanes, on_exit));
        actor
    });
}
