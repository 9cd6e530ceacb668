//! Integration test of troupe-runtime.
use std::time::Duration;

use actix::prelude::*;
use troupe_runtime::{ActorBuilder, Call, CallError, CallResult, Value};

/// A small key-value store answering dynamic calls, as a singleton would.
#[derive(Default)]
struct Store(std::collections::HashMap<String, Value>);

impl Actor for Store {
    type Context = Context<Self>;
}

impl Handler<Call> for Store {
    type Result = ResponseFuture<CallResult>;
    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> Self::Result {
        let result = match call.method() {
            "put" => call.arg::<String>(0).and_then(|k| {
                let v = call.arg::<Value>(1)?;
                Ok(self.0.insert(k, v).unwrap_or_default())
            }),
            "get" => call
                .arg::<String>(0)
                .map(|k| self.0.get(&k).cloned().unwrap_or_default()),
            "slow" => {
                return Box::pin(async {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    Ok(Value::Null)
                });
            }
            _ => Err(call.unknown_method()),
        };
        Box::pin(async move { result })
    }
}

#[actix::test]
async fn a_rust_actor_serves_dynamic_calls() {
    let store = ActorBuilder::new("kv").spawn(Store::default()).caller();
    assert_eq!(
        store
            .call(Call::new("put", vec!["a".into(), 1.into()]))
            .await,
        Ok(Value::Null)
    );
    assert_eq!(
        store.call(Call::new("get", vec!["a".into()])).await,
        Ok(Value::Int(1))
    );
    assert_eq!(
        store.call(Call::new("nope", vec![])).await,
        Err(CallError::UnknownMethod {
            method: "nope".into()
        })
    );
    assert_eq!(
        store.call(Call::new("put", vec![Value::Int(3)])).await,
        Err(CallError::bad_argument("args[0]", "expected str, got int"))
    );
    let started = std::time::Instant::now();
    assert_eq!(
        store
            .call_timeout(Call::new("slow", vec![]), Duration::from_millis(20))
            .await,
        Err(CallError::Timeout(Duration::from_millis(20)))
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The store still answers after a timed-out call: its mailbox was never blocked.
    assert_eq!(
        store.call(Call::new("get", vec!["a".into()])).await,
        Ok(Value::Int(1))
    );
}
