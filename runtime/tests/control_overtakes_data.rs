//! Integration test of troupe-runtime.
mod common;

use common::{Block, Note, Recorder, settle};
use tokio::sync::oneshot;
use troupe_runtime::{ActorBuilder, Lane};

#[actix::test]
async fn control_messages_are_handled_before_queued_data() {
    let recorder = Recorder::default();
    let seen = recorder.seen.clone();
    let addr = ActorBuilder::new("rec").capacity(64).spawn(recorder);
    let (release, blocked) = oneshot::channel();
    addr.tell(Lane::Data, Block(blocked)).await.unwrap();
    settle().await;
    for i in 0..10 {
        addr.tell(Lane::Data, Note(format!("data{i}")))
            .await
            .unwrap();
    }
    addr.tell(Lane::Control, Note("cancel".into()))
        .await
        .unwrap();
    addr.tell(Lane::Data, Note("data10".into())).await.unwrap();
    release.send(()).unwrap();
    // A reply proves everything before it was handled.
    addr.send(Note("last".into())).await.unwrap();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0], "cancel", "control overtakes: {seen:?}");
    let data: Vec<_> = seen[1..].iter().map(String::as_str).collect();
    let expected: Vec<String> = (0..=10)
        .map(|i| format!("data{i}"))
        .chain(["last".to_owned()])
        .collect();
    assert_eq!(data, expected, "data stays in order per sender");
}
