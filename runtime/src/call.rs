//! Dynamic calls: a method name and [`Value`] arguments, answered with a value or a
//! [`CallError`]. Any actor can serve them, so Rust actors and bridged Python extensions
//! answer the same message.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use actix::Message;
use tokio::sync::oneshot;
use troupe_value::{CallError, FromValue, Map, Value};

use crate::stream::ItemSink;

/// What a [`Call`] answers.
pub type CallResult = Result<Value, CallError>;

/// A call of `method` with positional and keyword arguments.
///
/// Made through the call path ([`Caller::call`](crate::Caller::call) and the handles built on
/// it), a call also carries its caller's deadline and a signal that fires when the caller
/// stops waiting (it dropped the call's future, or the deadline passed): an actor that runs a
/// call elsewhere (a bridged extension, in its child) takes it with [`Call::take_abandoned`]
/// to cancel that work. Local actors may ignore both.
#[derive(Debug)]
pub struct Call {
    /// Process-unique id, shown in traces.
    pub id: u64,
    /// The method to call (a static name costs no allocation).
    pub method: Cow<'static, str>,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments, in the order given.
    pub kwargs: Map,
    /// When the caller stops waiting, if it set a deadline.
    pub deadline: Option<Instant>,
    abandoned: Option<oneshot::Receiver<()>>,
    /// Where the items of a streaming call go (see [`crate::stream`]).
    items: Option<ItemSink>,
}

impl Clone for Call {
    /// A copy with the same id and deadline; the abandon signal stays with the original.
    fn clone(&self) -> Call {
        Call {
            id: self.id,
            method: self.method.clone(),
            args: self.args.clone(),
            kwargs: self.kwargs.clone(),
            deadline: self.deadline,
            abandoned: None,
            items: None,
        }
    }
}

impl PartialEq for Call {
    fn eq(&self, other: &Call) -> bool {
        self.id == other.id
            && self.method == other.method
            && self.args == other.args
            && self.kwargs == other.kwargs
            && self.deadline == other.deadline
    }
}

/// Resolves when the caller of a [`Call`] stopped waiting for its answer; never resolves for
/// a call made without the call path. See [`Call::take_abandoned`].
#[derive(Debug)]
pub struct Abandoned(Option<oneshot::Receiver<()>>);

impl Abandoned {
    /// Whether the caller has already stopped waiting.
    pub fn is_abandoned(&mut self) -> bool {
        match &mut self.0 {
            Some(rx) => !matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)),
            None => false,
        }
    }
}

impl Future for Abandoned {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Some(rx) => Pin::new(rx).poll(cx).map(|_| ()),
            None => Poll::Pending,
        }
    }
}

/// The caller's side of a call's abandon signal: dropping it (before or after the answer)
/// tells the actor the caller stopped waiting.
#[derive(Debug)]
pub(crate) struct Waiting(#[allow(dead_code)] oneshot::Sender<()>);

impl Call {
    /// Attaches an abandon signal; the caller keeps the returned guard while it waits.
    pub(crate) fn watched(&mut self) -> Waiting {
        let (tx, rx) = oneshot::channel();
        self.abandoned = Some(rx);
        Waiting(tx)
    }

    /// Takes the signal that fires when the caller stops waiting (see [`Abandoned`]).
    pub fn take_abandoned(&mut self) -> Abandoned {
        Abandoned(self.abandoned.take())
    }

    /// Takes the sink of a streaming call ([`Caller::call_stream`](crate::Caller::call_stream)),
    /// if this is one: an actor that streams pushes its items there before it answers.
    pub fn take_items(&mut self) -> Option<ItemSink> {
        self.items.take()
    }

    /// Whether this is a streaming call whose sink is still in it.
    pub fn is_streamed(&self) -> bool {
        self.items.is_some()
    }

    /// Makes this a streaming call with a `window` of items in flight; the caller reads the
    /// returned half.
    pub(crate) fn streamed(&mut self, window: u32) -> crate::stream::Items {
        let (sink, items) = crate::stream::channel(window);
        self.items = Some(sink);
        items
    }

    /// Sets the caller's deadline.
    pub fn with_deadline(mut self, deadline: Instant) -> Call {
        self.deadline = Some(deadline);
        self
    }
}

impl Message for Call {
    type Result = CallResult;
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Call {
    /// A call of `method` with positional `args`.
    pub fn new(method: impl Into<Cow<'static, str>>, args: Vec<Value>) -> Call {
        Call {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            method: method.into(),
            args,
            kwargs: Map::new(),
            deadline: None,
            abandoned: None,
            items: None,
        }
    }

    /// The method's name.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Adds a keyword argument.
    pub fn kwarg(mut self, name: impl Into<String>, value: impl Into<Value>) -> Call {
        self.kwargs.insert(name.into(), value.into());
        self
    }

    /// Positional argument `index` as `T`; a missing or mistyped one is
    /// [`CallError::BadArguments`] with path `args[index]`.
    pub fn arg<T: FromValue>(&self, index: usize) -> Result<T, CallError> {
        let path = || format!("args[{index}]");
        let value = self
            .args
            .get(index)
            .cloned()
            .ok_or_else(|| CallError::bad_argument(path(), "missing"))?;
        T::from_value(value).map_err(|reason| CallError::bad_argument(path(), reason))
    }

    /// Keyword argument `name` as `T`, with path `kwargs["name"]` in errors. A missing one
    /// is `Ok(None)`.
    pub fn kwarg_as<T: FromValue>(&self, name: &str) -> Result<Option<T>, CallError> {
        self.kwargs
            .get(name)
            .cloned()
            .map(T::from_value)
            .transpose()
            .map_err(|reason| CallError::bad_argument(format!("kwargs[{name:?}]"), reason))
    }

    /// [`CallError::UnknownMethod`] for this call's method.
    pub fn unknown_method(&self) -> CallError {
        CallError::UnknownMethod {
            method: self.method.clone().into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_arguments_report_their_path() {
        let call = Call::new("f", vec![Value::Int(1), Value::from("x")]).kwarg("n", 2);
        assert_eq!(call.arg::<i64>(0), Ok(1));
        assert_eq!(call.kwarg_as::<i64>("n"), Ok(Some(2)));
        assert_eq!(
            call.arg::<i64>(1),
            Err(CallError::bad_argument("args[1]", "expected int, got str"))
        );
        assert_eq!(
            call.arg::<i64>(2),
            Err(CallError::bad_argument("args[2]", "missing"))
        );
        assert!(Call::new("g", vec![]).id > call.id);
    }
}
