//! Streaming calls to a local actor: items in order as they are produced, the producer held
//! to the caller's window, the answer of an actor that does not stream as one item, errors,
//! and a dropped stream abandoning the call.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix::prelude::*;
use troupe_runtime::{ActorBuilder, Call, CallError, CallResult, Value};

/// Streams `count(n)`: 0..n, each as soon as the window has room, counting what it produced.
struct Counter {
    produced: Arc<AtomicU32>,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl Handler<Call> for Counter {
    type Result = ResponseFuture<CallResult>;

    fn handle(&mut self, mut call: Call, _: &mut Context<Self>) -> Self::Result {
        let produced = self.produced.clone();
        match call.method() {
            "count" => {
                let n = call.arg::<i64>(0).unwrap();
                let sink = call.take_items().expect("a streaming call");
                Box::pin(async move {
                    for i in 0..n {
                        if !sink.send(Value::Int(i)).await {
                            return Err(CallError::Cancelled);
                        }
                        produced.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Value::Null)
                })
            }
            "overrun" => {
                let sink = call.take_items().expect("a streaming call");
                let pushed: Vec<bool> = (0..=sink.window())
                    .map(|i| sink.push(Value::Int(i64::from(i))).is_ok())
                    .collect();
                let last_refused = pushed.last() == Some(&false);
                let all_before = pushed[..pushed.len() - 1].iter().all(|ok| *ok);
                Box::pin(async move { Ok(Value::Bool(last_refused && all_before)) })
            }
            "plain" => Box::pin(async { Ok(Value::from("one answer")) }),
            "nothing" => Box::pin(async { Ok(Value::Null) }),
            "fail" => Box::pin(async { Err(CallError::bad_argument("args[0]", "no")) }),
            "forever" => Box::pin(async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(Value::Null)
            }),
            _ => {
                let err = call.unknown_method();
                Box::pin(async move { Err(err) })
            }
        }
    }
}

fn counter() -> (troupe_runtime::Caller, Arc<AtomicU32>) {
    let produced = Arc::new(AtomicU32::new(0));
    let caller = ActorBuilder::new("counter")
        .spawn(Counter {
            produced: produced.clone(),
        })
        .caller();
    (caller, produced)
}

#[actix::test]
async fn items_arrive_in_order_and_the_producer_waits_for_the_caller() {
    let (counter, produced) = counter();
    let window = 4;
    let mut stream = counter.call_stream(
        Call::new("count", vec![Value::Int(100)]),
        Some(Duration::from_secs(10)),
        window,
    );
    let mut got = Vec::new();
    while let Some(item) = stream.next().await {
        let item = item.unwrap();
        // However slow the caller, the producer is never more than the window ahead.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let ahead = produced.load(Ordering::SeqCst) - got.len() as u32 - 1;
        assert!(ahead <= window, "the producer got {ahead} items ahead");
        got.push(item);
    }
    assert_eq!(got, (0..100).map(Value::Int).collect::<Vec<_>>());
}

#[actix::test]
async fn pushing_past_the_window_is_refused() {
    let (counter, _) = counter();
    let mut stream = counter.call_stream(Call::new("overrun", vec![]), None, 3);
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item.unwrap());
    }
    // The three that fit, then the answer: the fourth push was refused.
    assert_eq!(
        items,
        vec![
            Value::Int(0),
            Value::Int(1),
            Value::Int(2),
            Value::Bool(true)
        ]
    );
}

#[actix::test]
async fn an_actor_that_does_not_stream_answers_with_one_item_or_none() {
    let (counter, _) = counter();
    let mut plain = counter.call_stream(Call::new("plain", vec![]), None, 4);
    assert_eq!(plain.next().await, Some(Ok(Value::from("one answer"))));
    assert_eq!(plain.next().await, None);
    let mut nothing = counter.call_stream(Call::new("nothing", vec![]), None, 4);
    assert_eq!(nothing.next().await, None);
    let mut fail = counter.call_stream(Call::new("fail", vec![]), None, 4);
    assert!(matches!(
        fail.next().await,
        Some(Err(CallError::BadArguments { .. }))
    ));
    assert_eq!(fail.next().await, None);
}

#[actix::test]
async fn the_deadline_covers_the_whole_stream() {
    let (counter, _) = counter();
    let timeout = Duration::from_millis(100);
    let mut stream = counter.call_stream(Call::new("forever", vec![]), Some(timeout), 4);
    assert_eq!(stream.next().await, Some(Err(CallError::Timeout(timeout))));
    assert_eq!(stream.next().await, None);
}

#[actix::test]
async fn the_deadline_ends_a_stream_whose_producer_goes_on() {
    let (counter, produced) = counter();
    let timeout = Duration::from_millis(100);
    let mut stream = counter.call_stream(
        Call::new("count", vec![Value::Int(1_000_000)]),
        Some(timeout),
        4,
    );
    let began = std::time::Instant::now();
    let mut items = 0;
    let last = loop {
        match stream.next().await {
            Some(Ok(_)) => {
                items += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            other => break other,
        }
    };
    assert_eq!(
        last,
        Some(Err(CallError::Timeout(timeout))),
        "after {items} items"
    );
    assert_eq!(stream.next().await, None);
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopped_at = produced.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        produced.load(Ordering::SeqCst),
        stopped_at,
        "the producer stopped"
    );
}

#[actix::test]
async fn a_dropped_stream_stops_the_producer() {
    let (counter, produced) = counter();
    let mut stream = counter.call_stream(Call::new("count", vec![Value::Int(1000)]), None, 2);
    assert_eq!(stream.next().await, Some(Ok(Value::Int(0))));
    drop(stream);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after_drop = produced.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(produced.load(Ordering::SeqCst), after_drop);
    assert!(after_drop <= 4, "it stopped at once: {after_drop} produced");
}
