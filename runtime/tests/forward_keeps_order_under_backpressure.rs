//! `forward_all` passes several messages per handler in order, also when the next actor's
//! mailbox is full and the forwarder has to wait.

mod common;

use actix::prelude::*;
use common::{Block, Note, Recorder, settle};
use tokio::sync::oneshot;
use troupe_runtime::{ActorBuilder, Address, Lane};

/// Splits each batch into its items and forwards them all.
struct Splitter {
    next: Address<Recorder>,
}

impl Actor for Splitter {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Batch(Vec<String>);

impl Handler<Batch> for Splitter {
    type Result = ();
    fn handle(&mut self, Batch(items): Batch, ctx: &mut Context<Self>) {
        self.next
            .forward_all(items.into_iter().map(Note), ctx)
            .expect("recorder alive");
    }
}

#[actix::test]
async fn forwarded_items_arrive_in_order_when_the_next_mailbox_is_full() {
    let recorder = Recorder::default();
    let seen = recorder.seen.clone();
    let next = ActorBuilder::new("rec").capacity(2).spawn(recorder);
    let (release, blocked) = oneshot::channel();
    next.tell(Lane::Data, Block(blocked)).await.unwrap();
    settle().await;

    let splitter = ActorBuilder::new("split")
        .capacity(8)
        .spawn(Splitter { next: next.clone() });
    for b in 0..3 {
        let batch = (0..5).map(|i| format!("{b}.{i}")).collect();
        splitter.tell(Lane::Data, Batch(batch)).await.unwrap();
    }
    settle().await;
    assert!(
        seen.lock().unwrap().is_empty(),
        "the recorder is still blocked"
    );
    release.send(()).unwrap();
    // A reply through the splitter's queue proves every batch was forwarded.
    splitter.send(Batch(vec!["end".into()])).await.unwrap();
    next.send(Note("last".into())).await.unwrap();

    let seen = seen.lock().unwrap().clone();
    let expected: Vec<String> = (0..3)
        .flat_map(|b| (0..5).map(move |i| format!("{b}.{i}")))
        .chain(["end".to_owned(), "last".to_owned()])
        .collect();
    assert_eq!(seen, expected);
}
