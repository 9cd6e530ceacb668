//! Whole-system test through the `troupe` facade: a key-value singleton on one arbiter,
//! supervised workers on another, found by name, calling the singleton while they crash and
//! restart; 1,000 concurrent calls all answered.

use std::time::Duration;

use actix::prelude::*;
use troupe::supervision::{Backoff, RestartLimit, RestartPolicy, RestartSpec};
use troupe::{ActorBuilder, Call, CallError, CallResult, Caller, Registry, Value};

#[derive(Default)]
struct Store(std::collections::HashMap<String, i64>);

impl Actor for Store {
    type Context = Context<Self>;
}

impl Handler<Call> for Store {
    type Result = CallResult;
    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> CallResult {
        let key: String = call.arg(0)?;
        match call.method() {
            "incr" => {
                let n = self.0.entry(key).or_default();
                *n += call.arg::<i64>(1)?;
                Ok(Value::Int(*n))
            }
            "get" => Ok(Value::Int(self.0.get(&key).copied().unwrap_or(0))),
            _ => Err(call.unknown_method()),
        }
    }
}

struct Worker {
    store: Caller,
}

impl Actor for Worker {
    type Context = Context<Self>;
}

impl Handler<Call> for Worker {
    type Result = ResponseActFuture<Self, CallResult>;
    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        Box::pin(actix::fut::wrap_future(async move {
            match call.method() {
                "add" => {
                    store
                        .call(Call::new(
                            "incr",
                            vec!["total".into(), call.arg::<i64>(0)?.into()],
                        ))
                        .await
                }
                // A panic inside a ResponseActFuture is an actor failure: it restarts.
                "crash" => panic!("worker crashed on purpose"),
                _ => Err(call.unknown_method()),
            }
        }))
    }
}

#[actix::test]
async fn workers_restart_and_keep_calling_the_singleton() {
    let registry = Registry::new();
    let singletons = Arbiter::new();
    let store = ActorBuilder::new("store").spawn_on(&singletons.handle(), Store::default());
    registry.register_callable("store", store).unwrap();

    let store_caller = registry.caller("store").unwrap();
    let workers = Arbiter::new();
    let spec = RestartSpec {
        policy: RestartPolicy::Permanent,
        limit: RestartLimit {
            max_restarts: 10,
            within: Duration::from_secs(60),
        },
        backoff: Backoff::NONE,
    };
    let worker =
        ActorBuilder::new("worker")
            .capacity(64)
            .supervise_on(&workers.handle(), spec, move || Worker {
                store: store_caller.clone(),
            });
    registry
        .register_caller("worker", worker.address().caller())
        .unwrap();
    let worker = registry.caller("worker").unwrap();

    // 1,000 concurrent calls from many tasks, with crashes mixed in.
    let mut tasks = Vec::new();
    for task in 0..50 {
        let worker = worker.clone();
        tasks.push(actix::spawn(async move {
            let (mut ok, mut stopped) = (0, 0);
            for i in 0..20 {
                if task % 10 == 0 && i == 10 {
                    let crashed = worker.call(Call::new("crash", vec![])).await;
                    assert_eq!(crashed, Err(CallError::ActorStopped));
                }
                match worker.call(Call::new("add", vec![Value::Int(1)])).await {
                    Ok(Value::Int(_)) => ok += 1,
                    // In flight in an instance that crashed: no reply, effect unknown.
                    Err(CallError::ActorStopped) => stopped += 1,
                    other => panic!("unexpected reply {other:?}"),
                }
            }
            (ok, stopped)
        }));
    }
    let (mut answered, mut lost) = (0, 0);
    for t in tasks {
        let (ok, stopped) = t.await.unwrap();
        answered += ok;
        lost += stopped;
    }
    assert_eq!(
        answered + lost,
        1000,
        "every call gets an answer or a typed error"
    );
    let Ok(Value::Int(total)) = registry
        .caller("store")
        .unwrap()
        .call(Call::new("get", vec!["total".into()]))
        .await
    else {
        panic!("store answers");
    };
    // Every answered add reached the store once; a lost one may or may not have.
    assert!(
        (answered..=answered + lost).contains(&total),
        "total {total}, answered {answered}, lost {lost}"
    );
    assert!(
        answered > 500,
        "most calls succeed across five crashes: {answered}"
    );
    singletons.stop();
    workers.stop();
}
