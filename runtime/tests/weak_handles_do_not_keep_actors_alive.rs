//! A weak handle (`WeakCaller`, `WeakAddress`) reaches an actor while another handle keeps
//! it alive, and does not keep it alive itself: with the last strong handle gone, the actor
//! stops and the weak handle gives nothing back.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use actix::prelude::*;
use troupe_runtime::{ActorBuilder, Call, CallResult};
use troupe_value::Value;

struct Echo(tokio::sync::mpsc::UnboundedSender<&'static str>);

impl Actor for Echo {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        let _ = self.0.send("stopped");
    }
}

impl Handler<Call> for Echo {
    type Result = CallResult;

    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> CallResult {
        call.arg::<Value>(0)
    }
}

#[test]
fn weak_handles_reach_a_live_actor_and_do_not_keep_it() {
    actix::System::new().block_on(async {
        let (events, mut heard) = tokio::sync::mpsc::unbounded_channel();
        let address = ActorBuilder::new("echo").spawn(Echo(events));
        let weak_address = address.downgrade();
        let caller = address.caller();
        let weak = caller.downgrade();
        drop(address);
        let upgraded = weak.upgrade().expect("the caller keeps it alive");
        assert_eq!(
            upgraded.call(Call::new("echo", vec![Value::Int(1)])).await,
            Ok(Value::Int(1))
        );
        assert!(weak_address.upgrade().is_some());
        drop(upgraded);
        drop(caller);
        let stopped = tokio::time::timeout(Duration::from_secs(2), heard.recv()).await;
        assert_eq!(stopped.unwrap(), Some("stopped"));
        assert!(weak.upgrade().is_none());
        assert!(weak_address.upgrade().is_none());
    });
}
