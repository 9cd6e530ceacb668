//! One served extension's waiting calls: a bounded queue per calling peer, taken from in
//! turn, so that a peer that floods an extension fills its own queue (and is refused past
//! it) while the others' calls keep their turns.
//!
//! A peer is known by the session id its queries carry as their attachment (as claimed: a
//! peer that claims many ids gets as many queues, still bounded by [`Limits::peers`]);
//! queries without one share one queue.

use std::collections::VecDeque;
use std::sync::Mutex;

use indexmap::IndexMap;
use tokio::sync::Notify;
use zenoh::query::Query;

use super::Limits;

/// The longest peer id read from an attachment; a longer one counts as none.
const MAX_PEER_ID: usize = 64;

/// The peer a query says it comes from (empty: none said).
pub(super) fn peer_of(query: &Query) -> Vec<u8> {
    match query.attachment() {
        Some(id) if id.len() <= MAX_PEER_ID => id.to_bytes().into_owned(),
        _ => Vec::new(),
    }
}

/// The queues of one extension (of queries; of anything in tests).
pub(super) struct Intake<T = Query> {
    queues: Mutex<Queues<T>>,
    /// Rung when a call is queued (one taker: the extension's drain).
    queued: Notify,
    limits: Limits,
}

struct Queues<T> {
    /// Peers with calls waiting, in the order they came; emptied queues leave.
    by_peer: IndexMap<Vec<u8>, VecDeque<T>>,
    /// The peer whose turn is next.
    turn: usize,
}

impl<T> Intake<T> {
    pub(super) fn new(limits: Limits) -> Intake<T> {
        Intake {
            queues: Mutex::new(Queues {
                by_peer: IndexMap::new(),
                turn: 0,
            }),
            queued: Notify::new(),
            limits,
        }
    }

    /// Queues `call` behind `peer`'s others; gives it back when that peer's queue is full,
    /// or when as many other peers have calls waiting as the limits allow (busy). Never
    /// waits: it runs in zenoh's callback.
    pub(super) fn offer(&self, peer: Vec<u8>, call: T) -> Result<(), T> {
        let mut queues = self.lock();
        let known = queues.by_peer.contains_key(&peer);
        if !known && queues.by_peer.len() >= self.limits.peers.max(1) {
            return Err(call);
        }
        let queue = queues.by_peer.entry(peer).or_default();
        if queue.len() >= self.limits.queue.max(1) {
            return Err(call);
        }
        queue.push_back(call);
        drop(queues);
        self.queued.notify_one();
        Ok(())
    }

    /// The next call: the oldest of the peer whose turn it is, peers taking turns.
    pub(super) async fn take(&self) -> T {
        loop {
            if let Some(query) = self.next() {
                return query;
            }
            self.queued.notified().await;
        }
    }

    fn next(&self) -> Option<T> {
        let mut queues = self.lock();
        let peers = queues.by_peer.len();
        if peers == 0 {
            return None;
        }
        let turn = queues.turn % peers;
        let (_, queue) = queues.by_peer.get_index_mut(turn)?;
        let query = queue.pop_front();
        if queue.is_empty() {
            // The next peer moves into this index: its turn is next.
            queues.by_peer.shift_remove_index(turn);
            queues.turn = turn;
        } else {
            queues.turn = turn + 1;
        }
        query
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues<T>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(queue: usize, peers: usize) -> Limits {
        Limits {
            queue,
            peers,
            ..Limits::default()
        }
    }

    fn drain(intake: &Intake<(char, u32)>) -> Vec<(char, u32)> {
        std::iter::from_fn(|| intake.next()).collect()
    }

    #[test]
    fn peers_take_turns_whatever_one_of_them_queued() {
        let intake = Intake::new(limits(100, 8));
        for i in 0..5 {
            intake.offer(b"flood".to_vec(), ('f', i)).expect("room");
        }
        intake.offer(b"a".to_vec(), ('a', 0)).expect("room");
        intake.offer(b"b".to_vec(), ('b', 0)).expect("room");
        intake.offer(b"a".to_vec(), ('a', 1)).expect("room");
        assert_eq!(
            drain(&intake),
            [
                ('f', 0),
                ('a', 0),
                ('b', 0),
                ('f', 1),
                ('a', 1),
                ('f', 2),
                ('f', 3),
                ('f', 4)
            ]
        );
    }

    #[test]
    fn a_full_peer_is_refused_while_the_others_are_not() {
        let intake = Intake::new(limits(2, 2));
        intake.offer(b"flood".to_vec(), ('f', 0)).expect("room");
        intake.offer(b"flood".to_vec(), ('f', 1)).expect("room");
        assert_eq!(intake.offer(b"flood".to_vec(), ('f', 2)), Err(('f', 2)));
        intake
            .offer(b"a".to_vec(), ('a', 0))
            .expect("its own queue");
        // Two peers wait: a third is refused until one of them is served out.
        assert_eq!(intake.offer(b"c".to_vec(), ('c', 0)), Err(('c', 0)));
        assert_eq!(drain(&intake).len(), 3);
        intake.offer(b"c".to_vec(), ('c', 0)).expect("room again");
    }

    #[tokio::test]
    async fn a_taker_waits_for_the_next_call() {
        let intake = std::sync::Arc::new(Intake::new(limits(4, 4)));
        let taker = tokio::spawn({
            let intake = intake.clone();
            async move { intake.take().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        intake.offer(Vec::new(), ('x', 7)).expect("room");
        assert_eq!(taker.await.expect("joined"), ('x', 7));
    }
}
