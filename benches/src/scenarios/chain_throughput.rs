//! `chain-throughput`: messages per second through a chain of three actors.
//!
//! A producer pushes N messages into the first actor; each actor forwards to the next and the
//! last counts them and reports when all have arrived. `troupe-local` forwards with
//! [`Address::forward`] (bounded mailboxes, backpressure end to end); `actix-raw` forwards
//! with actix's `do_send` (its mailbox lets that grow without bound). Each run's time per
//! message is one sample; the row's `items_per_s` is from the median run.

use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;
use troupe_runtime::{ActorBuilder, Address, Lane};

use crate::{Effort, Measurement};

const SCENARIO: &str = "chain-throughput";
const PAYLOAD_BYTES: u64 = 8;

#[derive(Message)]
#[rtype(result = "()")]
struct Item(u64);

enum Next<A: Actor> {
    Troupe(Address<A>),
    Raw(Addr<A>),
}

/// A chain link: forwards to `next`, or counts when it is the last.
struct Link {
    next: Option<Next<Link>>,
    expect: u64,
    seen: u64,
    done: Option<oneshot::Sender<()>>,
}

impl Actor for Link {
    type Context = Context<Self>;
}

impl Handler<Item> for Link {
    type Result = ();
    fn handle(&mut self, item: Item, ctx: &mut Context<Self>) {
        match &self.next {
            Some(Next::Troupe(next)) => {
                let _ = next.forward(item, ctx);
            }
            Some(Next::Raw(next)) => next.do_send(item),
            None => {
                assert_eq!(item.0, self.seen, "messages arrive in order");
                self.seen += 1;
                if self.seen == self.expect
                    && let Some(done) = self.done.take()
                {
                    let _ = done.send(());
                }
            }
        }
    }
}

fn link(next: Option<Next<Link>>, expect: u64, done: Option<oneshot::Sender<()>>) -> Link {
    Link {
        next,
        expect,
        seen: 0,
        done,
    }
}

async fn troupe_run(n: u64) -> u64 {
    let (done_tx, done_rx) = oneshot::channel();
    let builder = ActorBuilder::new("link").capacity(1024);
    let c = builder.clone().spawn(link(None, n, Some(done_tx)));
    let b = builder.clone().spawn(link(Some(Next::Troupe(c)), 0, None));
    let a = builder.spawn(link(Some(Next::Troupe(b)), 0, None));
    let start = Instant::now();
    for i in 0..n {
        a.tell(Lane::Data, Item(i)).await.expect("chain alive");
    }
    done_rx.await.expect("chain completes");
    start.elapsed().as_nanos() as u64
}

async fn raw_run(n: u64) -> u64 {
    let (done_tx, done_rx) = oneshot::channel();
    let c = link(None, n, Some(done_tx)).start();
    let b = link(Some(Next::Raw(c)), 0, None).start();
    let a = link(Some(Next::Raw(b)), 0, None).start();
    let start = Instant::now();
    for i in 0..n {
        a.send(Item(i)).await.expect("chain alive");
    }
    done_rx.await.expect("chain completes");
    start.elapsed().as_nanos() as u64
}

/// Runs the scenario.
pub(super) fn run(effort: Effort) -> Vec<Measurement> {
    let n: u64 = effort.pick(100_000, 1_000_000);
    let runs = effort.pick(5, 11);
    let system = System::new();
    let (mut troupe, mut raw) = system.block_on(async {
        let (mut troupe, mut raw) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            troupe.push(troupe_run(n).await / n);
            raw.push(raw_run(n).await / n);
        }
        (troupe, raw)
    });
    let row = |system: &str, samples: &mut Vec<u64>| {
        let m = Measurement::from_samples(SCENARIO, system, PAYLOAD_BYTES, 1, samples);
        let per_s = 1e9 / m.median_ns.max(1) as f64;
        m.with("items_per_s", per_s.round())
            .with("chain_len", 3)
            .with("messages_per_run", n)
    };
    vec![row("troupe-local", &mut troupe), row("actix-raw", &mut raw)]
}
