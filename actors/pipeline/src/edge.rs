//! Edges: how a node's outputs reach the next node, per [`EdgePolicy`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use actix::{Actor, AsyncContext, Context};
use troupe_runtime::{Address, Lane, TrySendError};

use crate::builder::EdgePolicy;
use crate::messages::{Data, Drain, MAX_ITEMS_PER_MESSAGE, Packet};
use crate::node_actor::NodeActor;

/// The buffer a [`EdgePolicy::DropOldest`] edge owns. The upstream node pushes into it
/// (dropping the oldest item when full) and wakes the downstream node with a [`Drain`]
/// message; the downstream node empties it on that wake-up and after every data message it
/// handles (so a wake-up refused by a full mailbox is never needed).
#[derive(Debug)]
pub(crate) struct Ring {
    state: Mutex<RingState>,
}

#[derive(Debug)]
struct RingState {
    queue: VecDeque<Packet>,
    capacity: usize,
    wake_pending: bool,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Ring {
        Ring {
            state: Mutex::new(RingState {
                queue: VecDeque::with_capacity(capacity),
                capacity: capacity.max(1),
                wake_pending: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RingState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes everything queued; the next push sends a new wake-up.
    pub(crate) fn take(&self) -> VecDeque<Packet> {
        let mut state = self.lock();
        state.wake_pending = false;
        std::mem::take(&mut state.queue)
    }
}

/// One edge out of a node, held by the upstream actor.
pub(crate) struct OutEdge {
    /// The edge's index in its pipeline.
    edge: usize,
    to: Address<NodeActor>,
    port: usize,
    policy: EdgePolicy,
    drops: Arc<Drops>,
    ring: Option<Arc<Ring>>,
}

/// Items an edge's drop policy dropped: in this run, and in the process's metrics.
#[derive(Debug)]
pub(crate) struct Drops {
    run: AtomicU64,
    metric: troupe_runtime::metrics::Counter,
}

impl Drops {
    pub(crate) fn new(metric: troupe_runtime::metrics::Counter) -> Drops {
        Drops {
            run: AtomicU64::new(0),
            metric,
        }
    }

    fn add(&self) {
        self.run.fetch_add(1, Ordering::Relaxed);
        self.metric.inc();
    }

    /// Dropped in this run so far.
    pub(crate) fn count(&self) -> u64 {
        self.run.load(Ordering::Relaxed)
    }
}

impl OutEdge {
    pub(crate) fn new(
        edge: usize,
        to: Address<NodeActor>,
        port: usize,
        policy: EdgePolicy,
        drops: Arc<Drops>,
        ring: Option<Arc<Ring>>,
    ) -> OutEdge {
        OutEdge {
            edge,
            to,
            port,
            policy,
            drops,
            ring,
        }
    }

    /// Sends `packet` down the edge from inside the upstream actor's handler; what must
    /// wait for room goes to `batches`.
    pub(crate) fn send(&self, packet: Packet, batches: &mut EdgeBatches) {
        match (&self.ring, self.policy) {
            (Some(ring), _) => self.push_ring(ring, packet),
            (None, EdgePolicy::DropNewest) if matches!(packet, Packet::Item(_)) => {
                let data = Data {
                    port: self.port,
                    packets: vec![packet],
                };
                match self.to.try_tell(Lane::Data, data) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        self.drops.add();
                    }
                    Err(TrySendError::Closed(_)) => {
                        tracing::debug!(to = self.to.name(), "downstream node stopped");
                    }
                }
            }
            _ => batches.push(self.edge, &self.to, self.port, packet),
        }
    }

    fn push_ring(&self, ring: &Ring, packet: Packet) {
        let mut state = ring.lock();
        if matches!(packet, Packet::Item(_))
            && state.queue.len() >= state.capacity
            && matches!(state.queue.front(), Some(Packet::Item(_)))
        {
            state.queue.pop_front();
            self.drops.add();
        }
        state.queue.push_back(packet);
        if !state.wake_pending && self.to.try_tell(Lane::Data, Drain).is_ok() {
            state.wake_pending = true;
        }
    }
}

/// What one handler emits, gathered per edge into [`Data`] messages, and the messages that
/// wait for room, kept in order.
///
/// What a handler emits on an edge goes downstream as one [`Data`] message (of
/// [`MAX_ITEMS_PER_MESSAGE`] packets at most) when the handler ends, which spares a mailbox
/// round per item.
///
/// [`Address::forward`] starts one `ctx.wait` per message, and actix polls waiting futures
/// last-in first-out, so several forwards from one handler could overtake each other. Edge
/// batches instead send everything that must wait from a single waiting future, in order:
/// once one message waits, every later one queues behind it. The actor handles nothing else
/// until they are delivered, so backpressure travels upstream.
#[derive(Default)]
pub(crate) struct EdgeBatches {
    /// Packets emitted in this handler, per edge, in the order the edges were first used.
    pending: Vec<Batch>,
    waiting: Vec<(Address<NodeActor>, Data)>,
}

struct Batch {
    edge: usize,
    to: Address<NodeActor>,
    port: usize,
    packets: Vec<Packet>,
}

impl EdgeBatches {
    /// Adds `packet` to the batch of edge `edge`; a full batch goes at once.
    fn push(&mut self, edge: usize, to: &Address<NodeActor>, port: usize, packet: Packet) {
        let at = match self.pending.iter().position(|b| b.edge == edge) {
            Some(at) => at,
            None => {
                self.pending.push(Batch {
                    edge,
                    to: to.clone(),
                    port,
                    packets: Vec::with_capacity(4),
                });
                self.pending.len() - 1
            }
        };
        let batch = &mut self.pending[at];
        batch.packets.push(packet);
        if batch.packets.len() >= MAX_ITEMS_PER_MESSAGE {
            let packets = std::mem::take(&mut batch.packets);
            let to = batch.to.clone();
            self.forward(&to, Data { port, packets });
        }
    }

    /// Sends every pending batch (or queues it behind what waits), in order.
    fn send_pending(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        for batch in pending.drain(..) {
            if !batch.packets.is_empty() {
                let data = Data {
                    port: batch.port,
                    packets: batch.packets,
                };
                self.forward(&batch.to, data);
            }
        }
        // Keep the allocation for the next handler.
        self.pending = pending;
    }

    fn forward(&mut self, to: &Address<NodeActor>, msg: Data) {
        let msg = if self.waiting.is_empty() {
            match to.try_tell(Lane::Data, msg) {
                Ok(()) => return,
                Err(TrySendError::Closed(_)) => {
                    tracing::debug!(to = to.name(), "downstream node stopped");
                    return;
                }
                Err(TrySendError::Full(msg)) => msg,
            }
        } else {
            msg
        };
        self.waiting.push((to.clone(), msg));
    }

    /// Whether messages wait for room.
    pub(crate) fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Called at the end of every handler: sends the batches, and makes the actor wait until
    /// everything queued has been taken by its downstream mailboxes.
    pub(crate) fn flush<B>(&mut self, ctx: &mut Context<B>)
    where
        B: Actor<Context = Context<B>>,
    {
        self.send_pending();
        if !self.waiting.is_empty() {
            ctx.wait(actix::fut::wrap_future(self.delivery()));
        }
    }

    /// Takes everything queued, as a future that delivers it in order. A handler that must
    /// wait for something else too chains it after this in one `ctx.wait`, so that nothing
    /// sent later overtakes what is queued here.
    pub(crate) fn delivery(&mut self) -> impl Future<Output = ()> + 'static {
        self.send_pending();
        let waiting = std::mem::take(&mut self.waiting);
        async move {
            for (to, msg) in waiting {
                if to.tell(Lane::Data, msg).await.is_err() {
                    tracing::debug!(to = to.name(), "downstream node stopped while full");
                }
            }
        }
    }
}
