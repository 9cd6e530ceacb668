//! A supervised key-value store and a crash-prone worker, composed by name.
//!
//! `cargo run --release --example supervised_store`
//!
//! The store is a singleton any actor can call dynamically. The worker computes word counts
//! and keeps them in the store; it panics on an input it cannot handle, and its supervisor
//! restarts it (with backoff) until the restart limit is hit, then gives up and says why.
//! Callers keep the same address across restarts.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use troupe::supervision::{Backoff, EventKind, RestartLimit, RestartPolicy, RestartSpec};
use troupe::{ActorBuilder, Call, CallError, CallResult, Caller, Registry, Value};

/// A small key-value store answering `put`, `get` and `incr`.
#[derive(Default)]
struct Store(HashMap<String, Value>);

impl Actor for Store {
    type Context = Context<Self>;
}

impl Handler<Call> for Store {
    type Result = CallResult;
    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> CallResult {
        let key: String = call.arg(0)?;
        match call.method() {
            "put" => Ok(self.0.insert(key, call.arg(1)?).unwrap_or_default()),
            "get" => Ok(self.0.get(&key).cloned().unwrap_or_default()),
            "incr" => {
                let by: i64 = call.arg(1)?;
                let entry = self.0.entry(key).or_insert(Value::Int(0));
                let n = entry.as_int().unwrap_or(0) + by;
                *entry = Value::Int(n);
                Ok(Value::Int(n))
            }
            _ => Err(call.unknown_method()),
        }
    }
}

/// Counts words of a text, records the total in the store; panics on "poison".
struct Worker {
    store: Caller,
    instance: u32,
}

impl Actor for Worker {
    type Context = Context<Self>;
}

impl Handler<Call> for Worker {
    type Result = ResponseFuture<CallResult>;
    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> Self::Result {
        let text: Result<String, CallError> = call.arg(0);
        // A panic here, in the handler, is an actor failure: the supervisor restarts it.
        // (A panic inside the returned future would fail only this call: actix runs a
        // `ResponseFuture` as a task of its own, outside the actor.)
        if let Ok("poison") = text.as_deref() {
            panic!("worker {} cannot digest poison", self.instance);
        }
        let store = self.store.clone();
        let instance = self.instance;
        Box::pin(async move {
            let text = text?;
            let words = text.split_whitespace().count() as i64;
            let total = store
                .call(Call::new("incr", vec!["words".into(), words.into()]))
                .await?;
            Ok(Value::map([
                ("words", Value::Int(words)),
                ("total", total),
                ("instance", Value::Int(instance.into())),
            ]))
        })
    }
}

#[actix::main]
async fn main() {
    troupe::telemetry::init().ok();
    let registry = Registry::new();

    let store = ActorBuilder::new("store")
        .capacity(256)
        .spawn(Store::default());
    registry
        .register_callable("store", store)
        .expect("fresh name");

    let store_caller = registry.caller("store").expect("registered");
    let mut instance = 0;
    let spec = RestartSpec {
        policy: RestartPolicy::Permanent,
        limit: RestartLimit {
            max_restarts: 2,
            within: Duration::from_secs(10),
        },
        backoff: Backoff {
            initial: Duration::from_millis(20),
            ..Backoff::default()
        },
    };
    let mut worker = ActorBuilder::new("worker")
        .capacity(64)
        .supervise(spec, move || {
            instance += 1;
            Worker {
                store: store_caller.clone(),
                instance,
            }
        });
    let mut events = worker.events();
    registry
        .register_callable("worker", worker.address().clone())
        .expect("fresh name");
    let worker_caller = registry.caller("worker").expect("registered");

    let inputs = [
        "the quick brown fox",
        "poison",
        "jumps over",
        "poison",
        "the lazy dog",
        "poison",
        "never seen",
    ];
    for text in inputs {
        let reply = worker_caller
            .call(Call::new("count", vec![text.into()]))
            .await;
        match reply {
            Ok(v) => println!(
                "count({text:?}) -> {} words, running total {} (worker instance {})",
                v.get("words").and_then(Value::as_int).unwrap_or_default(),
                v.get("total").and_then(Value::as_int).unwrap_or_default(),
                v.get("instance")
                    .and_then(Value::as_int)
                    .unwrap_or_default(),
            ),
            Err(e) => println!("count({text:?}) -> error: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }

    println!("\nsupervision events:");
    while let Ok(event) = events.try_recv() {
        let line = match event.kind {
            EventKind::Started { instance } => format!("started instance {instance}"),
            EventKind::Exited { reason } => format!("exited: {reason}"),
            EventKind::Restarting { attempt, delay } => {
                format!("restarting (attempt {attempt}) after {delay:?}")
            }
            EventKind::Stopped => "stopped".to_owned(),
            EventKind::GaveUp(why) => format!("escalated: {why}"),
        };
        println!("  [{}] {line}", event.actor);
    }
    let words = registry
        .caller("store")
        .expect("store alive")
        .call(Call::new("get", vec!["words".into()]))
        .await;
    println!(
        "\nstore: words = {:?}; worker status: {:?}",
        words.ok(),
        worker.status()
    );
    println!("registry now: {:?}", registry.names());
}
