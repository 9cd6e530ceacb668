//! Streaming calls: a call whose answer comes as items, each as soon as it is produced, then
//! a final value.
//!
//! The caller makes one with [`Caller::call_stream`](crate::Caller::call_stream): the call
//! carries an [`ItemSink`] for the actor and the caller reads a [`CallStream`]. Items flow
//! under a credit window: at most `window` are produced and not yet taken by the caller,
//! so a slow consumer slows the producer down (a bridged extension's generator waits for
//! credit before each `yield`). An actor that does not stream ignores the sink: its answer
//! arrives as the stream's one item.
//!
//! Deadlines and cancellation are the call path's: the deadline covers the whole stream,
//! and dropping the [`CallStream`] abandons the call.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use thiserror::Error;
use tokio::sync::{Notify, mpsc};
use troupe_value::{CallError, Value};

use crate::CallResult;

/// What hears of taken items: the producer's side grants that much more credit.
type OnTaken = Box<dyn Fn(u32) + Send + Sync>;

/// State the two ends share.
struct Shared {
    window: u32,
    /// Pushed and not taken yet.
    queued: AtomicU32,
    on_taken: Mutex<Option<OnTaken>>,
    /// Woken each time the caller takes an item (for [`ItemSink::send`]).
    taken: Notify,
}

/// The producer pushed more items than the caller's window allows: it ignored its credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("more than {window} items pushed without credit")]
pub struct OverWindow {
    /// The window.
    pub window: u32,
}

/// The actor's end of a streaming call: where its items go. Take it with
/// [`Call::take_items`](crate::Call::take_items).
pub struct ItemSink {
    items: mpsc::UnboundedSender<Value>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ItemSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemSink")
            .field("window", &self.shared.window)
            .field("queued", &self.shared.queued.load(Ordering::Relaxed))
            .finish()
    }
}

impl ItemSink {
    /// How many items may be produced before the caller takes any.
    pub fn window(&self) -> u32 {
        self.shared.window
    }

    /// Hands `item` to the caller. Never waits: a producer that respects its credit never
    /// sees [`OverWindow`]; one that does not gets it, and the item is dropped. An item for
    /// a caller that stopped reading is dropped too.
    pub fn push(&self, item: Value) -> Result<(), OverWindow> {
        if !self.reserve() {
            return Err(OverWindow {
                window: self.shared.window,
            });
        }
        let _ = self.items.send(item);
        Ok(())
    }

    /// Takes a place in the window, if one is free.
    fn reserve(&self) -> bool {
        let window = self.shared.window;
        self.shared
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued < window).then_some(queued + 1)
            })
            .is_ok()
    }

    /// Hands `item` to the caller, waiting while `window` items wait for it (for a producer
    /// in this process). Returns `false`, dropping the item, once the caller is gone.
    pub async fn send(&self, item: Value) -> bool {
        loop {
            // Registered before the check, so a take in between is not missed.
            let taken = self.shared.taken.notified();
            if self.items.is_closed() {
                return false;
            }
            if self.reserve() {
                let _ = self.items.send(item);
                return true;
            }
            taken.await;
        }
    }

    /// Calls `granted(n)` each time the caller has taken `n` more items (in batches of
    /// about half the window): how a producer elsewhere hears it may produce `n` more.
    pub fn on_taken(&self, granted: impl Fn(u32) + Send + Sync + 'static) {
        *self
            .shared
            .on_taken
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Box::new(granted));
    }
}

/// A new sink and the receiving half the caller reads, for `window` items in flight.
pub(crate) fn channel(window: u32) -> (ItemSink, Items) {
    let shared = Arc::new(Shared {
        window: window.max(1),
        queued: AtomicU32::new(0),
        on_taken: Mutex::new(None),
        taken: Notify::new(),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = ItemSink {
        items: tx,
        shared: shared.clone(),
    };
    let items = Items {
        items: rx,
        shared,
        taken: 0,
    };
    (sink, items)
}

/// The caller's receiving half.
pub(crate) struct Items {
    items: mpsc::UnboundedReceiver<Value>,
    shared: Arc<Shared>,
    /// Taken since credit was last granted.
    taken: u32,
}

impl Drop for Items {
    /// The caller stopped reading: a producer waiting for room in [`ItemSink::send`] hears
    /// it now, not at its next item.
    fn drop(&mut self) {
        self.items.close();
        self.shared.taken.notify_waiters();
        self.shared.taken.notify_one();
    }
}

impl Items {
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Value>> {
        let polled = self.items.poll_recv(cx);
        if let Poll::Ready(Some(_)) = &polled {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            self.shared.taken.notify_one();
            self.taken += 1;
            if self.taken >= self.shared.window.div_ceil(2) {
                let taken = std::mem::take(&mut self.taken);
                let on_taken = self
                    .shared
                    .on_taken
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if let Some(granted) = on_taken.as_ref() {
                    granted(taken);
                }
            }
        }
        polled
    }
}

/// The caller's end of a streaming call: its items in order, then its final value unless
/// that is `Null`, or its error. Dropping it abandons the call.
pub struct CallStream {
    items: Items,
    answer: Pin<Box<dyn Future<Output = CallResult> + Send>>,
    /// The final answer, once it came (items may still wait in front of it).
    last: Option<CallResult>,
    done: bool,
}

impl std::fmt::Debug for CallStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallStream")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl CallStream {
    pub(crate) fn new(
        items: Items,
        answer: impl Future<Output = CallResult> + Send + 'static,
    ) -> CallStream {
        CallStream {
            items,
            answer: Box::pin(answer),
            last: None,
            done: false,
        }
    }

    /// The next item; `None` once the stream is over. An error ends it.
    pub async fn next(&mut self) -> Option<Result<Value, CallError>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next item (see [`CallStream::next`]).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Value, CallError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        // The answer future carries the call (and its deadline): it must run all along.
        if self.last.is_none()
            && let Poll::Ready(result) = self.answer.as_mut().poll(cx)
        {
            if result.is_err() {
                // A failure (the deadline, most often) ends the stream: the items already
                // here come out, then the error; a producer that goes on pushes no more.
                self.items.items.close();
            }
            self.last = Some(result);
        }
        match self.items.poll_item(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(Ok(item))),
            // Every item came before the answer; the sink is gone: what is left is the answer.
            Poll::Ready(None) => match self.last.take() {
                Some(last) => {
                    self.done = true;
                    match last {
                        Ok(Value::Null) => Poll::Ready(None),
                        last => Poll::Ready(Some(last)),
                    }
                }
                None => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }
}
