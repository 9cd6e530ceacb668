//! Waiting for a child's answer without letting the arbiter's thread fall asleep at once.
//!
//! A call's answer is handed over by the reader thread. If the arbiter's thread has gone to
//! sleep in the kernel meanwhile, waking it costs more than the rest of the round trip on a
//! small virtual machine (see [`DEFAULT_SPIN`](troupe_wire::protocol::DEFAULT_SPIN)). So a
//! caller's wait polls for the same short time the receivers poll, keeping the thread awake,
//! and then waits like any future.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How often (at most) a polling arbiter thread gives its core to another thread.
const YIELD_EVERY: Duration = Duration::from_micros(2);

/// `inner`, asking to be polled again at once while it is pending during its first
/// [`spin`](troupe_wire::protocol::spin) after the first poll, unless a later wait on the
/// same thread began meanwhile.
///
/// Only the newest wait of a thread polls: when a call waits on calls it caused (a nested
/// chain), or many calls are in flight, one polling wait keeps the thread awake, and the
/// others would only take turns from the work that answers them.
pub(crate) struct SpinWait<F> {
    inner: F,
    /// When polling stops, and this wait's number among the thread's waits.
    polling: Option<(Instant, u64)>,
}

thread_local! {
    /// The number of the newest wait that began on this thread.
    static NEWEST: Cell<u64> = const { Cell::new(0) };
    /// When this thread last gave its core away.
    static YIELDED: Cell<Option<Instant>> = const { Cell::new(None) };
}

impl<F> SpinWait<F> {
    pub(crate) fn new(inner: F) -> Self {
        SpinWait {
            inner,
            polling: None,
        }
    }
}

impl<F: Future + Unpin> Future for SpinWait<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if let Poll::Ready(out) = Pin::new(&mut self.inner).poll(cx) {
            return Poll::Ready(out);
        }
        let now = Instant::now();
        let (until, number) = *self.polling.get_or_insert_with(|| {
            let number = NEWEST.with(|newest| {
                newest.set(newest.get() + 1);
                newest.get()
            });
            (now + troupe_wire::protocol::spin(), number)
        });
        if now < until && NEWEST.with(Cell::get) == number {
            share_core(now);
            cx.waker().wake_by_ref();
        }
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
        assert_eq!(SpinWait::new(rx).await, Ok(1));

        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        std::thread::spawn(move || {
            // Past the polling time: the wait must have fallen back to the waker.
            std::thread::sleep(troupe_wire::protocol::spin() * 4);
            let _ = tx.send(2);
        });
        assert_eq!(SpinWait::new(rx).await, Ok(2));
    }
}
