//! Integration test of troupe-runtime.
mod common;

use std::time::Duration;

use actix::prelude::*;
use common::Recorder;
use troupe_runtime::{ActorBuilder, Call, CallResult, Registry, RegistryError, Value};

struct Echo;
impl Actor for Echo {
    type Context = Context<Self>;
}
impl Handler<Call> for Echo {
    type Result = CallResult;
    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> CallResult {
        call.arg::<Value>(0)
    }
}

#[actix::test]
async fn lookups_register_and_fail_with_typed_errors() {
    let registry = Registry::new();
    let echo = ActorBuilder::new("echo").spawn(Echo);
    let rec = ActorBuilder::new("rec").spawn(Recorder::default());
    registry.register_callable("echo", echo.clone()).unwrap();
    registry.register("rec", rec.clone()).unwrap();

    assert_eq!(
        registry.register("echo", rec.clone()),
        Err(RegistryError::Duplicate("echo".into()))
    );
    assert_eq!(
        registry.lookup::<Echo>("missing").unwrap_err(),
        RegistryError::NotFound("missing".into())
    );
    assert!(matches!(
        registry.lookup::<Echo>("rec"),
        Err(RegistryError::WrongType { .. })
    ));
    assert_eq!(
        registry.caller("rec").unwrap_err(),
        RegistryError::NotCallable("rec".into())
    );

    let caller = registry.caller("echo").unwrap();
    assert_eq!(
        caller.call(Call::new("x", vec![Value::Int(7)])).await,
        Ok(Value::Int(7))
    );
    assert!(registry.lookup::<Recorder>("rec").is_ok());
    assert_eq!(registry.names(), ["echo", "rec"]);

    // A stopped actor no longer counts, and its name can be taken again.
    drop((echo, caller));
    registry.unregister("echo");
    assert_eq!(
        registry.caller("echo").unwrap_err(),
        RegistryError::NotFound("echo".into())
    );
    let again = ActorBuilder::new("echo2").spawn(Echo);
    registry.register_callable("echo", again).unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[actix::test]
async fn a_dead_actor_frees_its_name() {
    let registry = Registry::new();
    let echo = ActorBuilder::new("echo").spawn(Echo);
    registry.register_caller("echo", echo.caller()).unwrap();
    drop(echo);
    // The registry holds only a caller; once the actor is gone it drains and closes.
    let caller = registry.caller("echo").unwrap();
    assert_eq!(
        caller.call(Call::new("x", vec![Value::Int(1)])).await,
        Ok(Value::Int(1))
    );
    drop(caller);
    assert!(
        registry.names().contains(&"echo".to_owned()),
        "the registry's own caller keeps it alive"
    );
}
