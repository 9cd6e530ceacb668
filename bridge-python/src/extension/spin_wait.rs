//! Waiting for a child's answer without letting the arbiter's thread fall asleep at once.
//!
//! A call's answer is handed over by the reader thread. If the arbiter's thread has gone to
//! sleep in the kernel meanwhile, waking it costs more than the rest of the round trip on a
//! small virtual machine (see [`DEFAULT_SPIN`](troupe_protocol::DEFAULT_SPIN)). So a
//! caller's wait polls for the same short time the receivers poll, keeping the thread awake,
//! and then waits like any future. While it polls it also takes the child's frames itself
//! ([`Session::take_frames`]): the answer then needs no hand-over from the reader thread, and
//! the reader steps aside instead of polling too (see [`super::session`]).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::session::Session;

/// How often (at most) a polling arbiter thread gives its core to another thread.
const YIELD_EVERY: Duration = Duration::from_micros(2);

/// `inner`, asking to be polled again at once while it is pending, for up to
/// [`spin`](troupe_protocol::spin) each time it is the newest pending wait of its
/// thread.
///
/// Only the newest wait of a thread polls: when a call waits on calls it caused (a nested
/// chain), or many calls are in flight, one polling wait keeps the thread awake, and the
/// others would only take turns from the work that answers them. When the newest ends, the
/// one before it polls again (for a fresh spell): in a nested chain that is the call whose
/// answer comes next.
pub(crate) struct SpinWait<F> {
    inner: F,
    /// Where the answer comes from, to take it directly.
    session: Option<Arc<Session>>,
    /// Whether this wait is counted among the connection's takers.
    taking: bool,
    /// This wait's number among the thread's waits, once polled.
    number: Option<u64>,
    /// Until when it polls, while it stays the newest.
    until: Option<Instant>,
}

thread_local! {
    /// This thread's pending waits, oldest first.
    static PENDING: RefCell<Vec<ThreadWait>> = const { RefCell::new(Vec::new()) };
    /// The last number given out on this thread.
    static LAST: Cell<u64> = const { Cell::new(0) };
    /// When this thread last gave its core away.
    static YIELDED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// A pending wait of this thread.
struct ThreadWait {
    number: u64,
    /// Set when a later wait began: polling again after that is a fresh spell.
    stepped_aside: bool,
    /// How to wake it once it stopped polling (woken when it is the newest again).
    waker: Option<Waker>,
}

impl<F> SpinWait<F> {
    pub(crate) fn new(inner: F, session: Option<Arc<Session>>) -> Self {
        SpinWait {
            inner,
            session,
            taking: false,
            number: None,
            until: None,
        }
    }

    /// This wait's number, given (and its wait counted as pending) on first use.
    fn number(&mut self) -> u64 {
        *self.number.get_or_insert_with(|| {
            let number = LAST.with(|last| {
                last.set(last.get() + 1);
                last.get()
            });
            PENDING.with_borrow_mut(|pending| {
                if let Some(last) = pending.last_mut() {
                    last.stepped_aside = true;
                }
                pending.push(ThreadWait {
                    number,
                    stepped_aside: false,
                    waker: None,
                });
            });
            number
        })
    }

    /// Stops counting this wait among the connection's takers; `answered` says whether its
    /// answer came (otherwise the reader thread must take it, and is woken to).
    fn stop_taking(&mut self, answered: bool) {
        if std::mem::take(&mut self.taking)
            && let Some(session) = &self.session
        {
            session.link().end_taking(!answered);
        }
    }

    /// The wait is over: it neither polls nor counts as pending any more. When it was the
    /// newest, the one before it (if it stepped aside) is woken to poll again.
    fn finish(&mut self, answered: bool) {
        self.stop_taking(answered);
        if let Some(number) = self.number.take() {
            // Thread-locals may be gone when a runtime is torn down.
            let next = PENDING.try_with(|pending| {
                let mut pending = pending.borrow_mut();
                let at = pending.iter().rposition(|p| p.number == number)?;
                pending.remove(at);
                if at != pending.len() {
                    return None;
                }
                pending.last_mut().and_then(|p| p.waker.take())
            });
            if let Ok(Some(waker)) = next {
                waker.wake();
            }
        }
    }
}

impl<F> Drop for SpinWait<F> {
    fn drop(&mut self) {
        self.finish(false);
    }
}

impl<F: Future + Unpin> Future for SpinWait<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if let Poll::Ready(out) = Pin::new(&mut self.inner).poll(cx) {
            self.finish(true);
            return Poll::Ready(out);
        }
        let number = self.number();
        let now = Instant::now();
        let newest = PENDING.with_borrow_mut(|pending| match pending.last_mut() {
            Some(last) if last.number == number => {
                if std::mem::take(&mut last.stepped_aside) {
                    self.until = None;
                }
                true
            }
            _ => false,
        });
        let until = *self
            .until
            .get_or_insert_with(|| now + troupe_protocol::spin());
        if !newest || now >= until {
            // Stop polling; be woken when the newest wait ends (or by the answer).
            self.stop_taking(false);
            PENDING.with_borrow_mut(|pending| {
                if let Some(me) = pending.iter_mut().rfind(|p| p.number == number) {
                    me.waker = Some(cx.waker().clone());
                }
            });
            return Poll::Pending;
        }
        let this = &mut *self;
        if let Some(session) = &this.session {
            if !this.taking {
                this.taking = true;
                session.link().begin_taking();
            }
            session.take_frames();
            if let Poll::Ready(out) = Pin::new(&mut this.inner).poll(cx) {
                this.finish(true);
                return Poll::Ready(out);
            }
        }
        share_core(now);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Yields the thread's core if it has not done so for [`YIELD_EVERY`]: the reader and the
/// child may need it, and many calls polling at once must not each make a system call.
fn share_core(now: Instant) {
    YIELDED.with(|last| {
        if last
            .get()
            .is_none_or(|at| now.duration_since(at) >= YIELD_EVERY)
        {
            std::thread::yield_now();
            last.set(Some(Instant::now()));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gives_the_inner_answer_whether_it_comes_early_or_late() {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        tx.send(1).expect("send");
        assert_eq!(SpinWait::new(rx, None).await, Ok(1));

        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        std::thread::spawn(move || {
            // Past the polling time: the wait must have fallen back to the waker.
            std::thread::sleep(troupe_protocol::spin() * 4);
            let _ = tx.send(2);
        });
        assert_eq!(SpinWait::new(rx, None).await, Ok(2));
        assert!(
            PENDING.with_borrow(Vec::is_empty),
            "finished waits are forgotten"
        );
    }

    #[tokio::test]
    async fn only_the_newest_pending_wait_polls_and_the_one_before_resumes() {
        let (outer_tx, outer_rx) = tokio::sync::oneshot::channel::<u32>();
        let (inner_tx, inner_rx) = tokio::sync::oneshot::channel::<u32>();
        let mut outer = SpinWait::new(outer_rx, None);
        let mut inner = SpinWait::new(inner_rx, None);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let waiting = |number: u64| {
            PENDING.with_borrow(|pending| {
                pending
                    .iter()
                    .find(|p| p.number == number)
                    .is_some_and(|p| p.waker.is_some())
            })
        };
        assert!(Pin::new(&mut outer).poll(&mut cx).is_pending());
        let outer_number = outer.number.expect("numbered");
        assert!(!waiting(outer_number), "the only wait polls");
        assert!(Pin::new(&mut inner).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut outer).poll(&mut cx).is_pending());
        assert!(waiting(outer_number), "an older wait steps aside");
        inner_tx.send(2).expect("send");
        assert_eq!(Pin::new(&mut inner).poll(&mut cx), Poll::Ready(Ok(2)));
        assert!(!waiting(outer_number), "its waker was taken to wake it");
        assert!(Pin::new(&mut outer).poll(&mut cx).is_pending());
        assert!(!waiting(outer_number), "the one before polls again");
        outer_tx.send(1).expect("send");
        assert_eq!(Pin::new(&mut outer).poll(&mut cx), Poll::Ready(Ok(1)));
        assert!(PENDING.with_borrow(Vec::is_empty));
    }
}
