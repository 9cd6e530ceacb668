//! Integration test of troupe-runtime.
mod common;

use std::time::Duration;

use common::{Block, Note, Recorder, settle};
use tokio::sync::oneshot;
use troupe_runtime::{ActorBuilder, Lane, MailboxError, TrySendError};

#[actix::test]
async fn a_full_mailbox_refuses_try_send_and_makes_send_wait() {
    let recorder = Recorder::default();
    let seen = recorder.seen.clone();
    let addr = ActorBuilder::new("rec").capacity(4).spawn(recorder);
    let (release, blocked) = oneshot::channel();
    addr.tell(Lane::Data, Block(blocked)).await.unwrap();
    settle().await; // the actor takes Block and waits

    // Many senders (clones) together can queue exactly the capacity, no more.
    let clones: Vec<_> = (0..8).map(|_| addr.clone()).collect();
    let mut accepted = 0;
    let mut refused = Vec::new();
    for (i, a) in clones.iter().enumerate() {
        match a.try_tell(Lane::Data, Note(format!("m{i}"))) {
            Ok(_) => accepted += 1,
            Err(TrySendError::Full(note)) => refused.push(note.0),
            Err(TrySendError::Closed(_)) => panic!("closed"),
        }
    }
    assert_eq!(accepted, 4);
    assert_eq!(
        refused,
        ["m4", "m5", "m6", "m7"],
        "refused messages come back"
    );

    // `send` waits for room instead of queueing past the bound.
    let waiting = {
        let addr = addr.clone();
        actix::spawn(async move { addr.send(Note("late".into())).await })
    };
    settle().await;
    assert!(
        !waiting.is_finished(),
        "send must wait while the mailbox is full"
    );

    release.send(()).unwrap();
    waiting.await.unwrap().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, ["m0", "m1", "m2", "m3", "late"]);
}

#[actix::test]
async fn sends_to_a_stopped_actor_fail_with_a_typed_error() {
    let addr = ActorBuilder::new("gone").spawn(Recorder::default());
    let (release, blocked) = oneshot::channel::<()>();
    drop(release);
    addr.send(Block(blocked)).await.unwrap();
    struct Stop;
    impl actix::Message for Stop {
        type Result = ();
    }
    impl actix::Handler<Stop> for Recorder {
        type Result = ();
        fn handle(&mut self, _: Stop, ctx: &mut actix::Context<Self>) {
            actix::ActorContext::stop(ctx);
        }
    }
    addr.send(Stop).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(addr.is_closed());
    assert_eq!(addr.send(Note("x".into())).await, Err(MailboxError::Closed));
    match addr.try_send(Lane::Data, Note("y".into())) {
        Err(TrySendError::Closed(note)) => assert_eq!(note.0, "y"),
        other => panic!("expected Closed, got {:?}", other.map(|_| ())),
    }
}
