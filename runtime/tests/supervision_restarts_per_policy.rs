//! Integration test of troupe-runtime.
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix::prelude::*;
use troupe_runtime::supervision::{
    Backoff, EventKind, ExitReason, RestartLimit, RestartPolicy, RestartSpec, SupervisorStatus,
};
use troupe_runtime::{ActorBuilder, Call, CallError, CallResult, Value};

/// Answers `incarnation`, panics on `panic`, stops on `stop`, and panics inside a spawned
/// future on `panic_later`.
struct Fragile {
    incarnation: u32,
}

impl Actor for Fragile {
    type Context = Context<Self>;
}

impl Handler<Call> for Fragile {
    type Result = CallResult;
    fn handle(&mut self, call: Call, ctx: &mut Context<Self>) -> CallResult {
        match call.method() {
            "incarnation" => Ok(Value::Int(self.incarnation.into())),
            "panic" => panic!("boom {}", self.incarnation),
            "panic_later" => {
                ctx.spawn(actix::fut::wrap_future(async { panic!("late boom") }));
                Ok(Value::Null)
            }
            "stop" => {
                ctx.stop();
                Ok(Value::Null)
            }
            _ => Err(call.unknown_method()),
        }
    }
}

fn factory() -> (Arc<AtomicU32>, impl FnMut() -> Fragile) {
    let made = Arc::new(AtomicU32::new(0));
    let counter = made.clone();
    (made, move || Fragile {
        incarnation: counter.fetch_add(1, Ordering::SeqCst) + 1,
    })
}

fn spec(policy: RestartPolicy, max_restarts: u32) -> RestartSpec {
    RestartSpec {
        policy,
        limit: RestartLimit {
            max_restarts,
            within: Duration::from_secs(30),
        },
        backoff: Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
            multiplier: 2.0,
            jitter: 0.2,
        },
    }
}

async fn incarnation(addr: &troupe_runtime::Address<Fragile>) -> CallResult {
    addr.call(Call::new("incarnation", vec![])).await
}

#[actix::test]
async fn a_panicking_actor_is_restarted_and_queued_calls_reach_the_new_instance() {
    let (made, make) = factory();
    let mut sup = ActorBuilder::new("fragile").supervise(spec(RestartPolicy::Permanent, 5), make);
    let mut events = sup.events();
    let addr = sup.address().clone();
    assert_eq!(incarnation(&addr).await, Ok(Value::Int(1)));

    // The panicking call fails; the call queued behind it is answered by instance 2.
    let (panicked, next) = tokio::join!(addr.call(Call::new("panic", vec![])), incarnation(&addr));
    assert_eq!(panicked, Err(CallError::ActorStopped));
    assert_eq!(next, Ok(Value::Int(2)));
    assert_eq!(made.load(Ordering::SeqCst), 2);

    // A panic inside a future the actor spawned is caught too.
    addr.call(Call::new("panic_later", vec![])).await.unwrap();
    assert_eq!(incarnation(&addr).await, Ok(Value::Int(3)));

    let mut kinds = Vec::new();
    while let Ok(event) = events.try_recv() {
        kinds.push(event.kind);
    }
    assert!(matches!(kinds[0], EventKind::Started { instance: 1 }));
    assert!(kinds.contains(&EventKind::Exited {
        reason: ExitReason::Panicked("boom 1".into())
    }));
    assert!(kinds.iter().any(|k| matches!(k, EventKind::Exited { reason: ExitReason::Panicked(m) } if m.contains("spawned"))));
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, EventKind::Restarting { attempt: 2, .. }))
    );
    assert!(matches!(
        sup.status(),
        SupervisorStatus::Running { instance: 3 }
    ));
}

#[actix::test]
async fn the_restart_limit_is_enforced_and_the_supervisor_gives_up_saying_why() {
    let (made, make) = factory();
    let sup = ActorBuilder::new("fragile").supervise(spec(RestartPolicy::Permanent, 2), make);
    let addr = sup.address().clone();
    for _ in 0..3 {
        assert_eq!(
            addr.call(Call::new("panic", vec![])).await,
            Err(CallError::ActorStopped)
        );
    }
    let SupervisorStatus::GaveUp(why) = sup.finished().await else {
        panic!("expected to give up, got {:?}", sup.status());
    };
    assert_eq!(why.restarts, 2);
    assert_eq!(why.last_exit, ExitReason::Panicked("boom 3".into()));
    assert_eq!(
        made.load(Ordering::SeqCst),
        3,
        "no instance after giving up"
    );
    assert_eq!(incarnation(&addr).await, Err(CallError::ActorStopped));
    assert!(addr.is_closed());
}

#[actix::test]
async fn transient_actors_restart_after_panics_but_not_after_stopping() {
    let (made, make) = factory();
    let sup = ActorBuilder::new("fragile").supervise(spec(RestartPolicy::Transient, 5), make);
    let addr = sup.address().clone();
    let _ = addr.call(Call::new("panic", vec![])).await;
    assert_eq!(incarnation(&addr).await, Ok(Value::Int(2)));
    addr.call(Call::new("stop", vec![])).await.unwrap();
    assert_eq!(
        sup.finished().await,
        SupervisorStatus::Stopped(ExitReason::Stopped)
    );
    assert_eq!(made.load(Ordering::SeqCst), 2);
}

#[actix::test]
async fn temporary_actors_are_never_restarted() {
    let (made, make) = factory();
    let sup = ActorBuilder::new("fragile").supervise(spec(RestartPolicy::Temporary, 5), make);
    let _ = sup.address().call(Call::new("panic", vec![])).await;
    assert!(matches!(
        sup.finished().await,
        SupervisorStatus::Stopped(ExitReason::Panicked(_))
    ));
    assert_eq!(made.load(Ordering::SeqCst), 1);
}

#[actix::test]
async fn permanent_actors_restart_after_a_normal_stop_and_end_when_unreferenced() {
    let (made, make) = factory();
    let sup = ActorBuilder::new("fragile").supervise(spec(RestartPolicy::Permanent, 5), make);
    let addr = sup.address().clone();
    addr.call(Call::new("stop", vec![])).await.unwrap();
    assert_eq!(incarnation(&addr).await, Ok(Value::Int(2)));
    let mut events = sup.subscribe();
    drop(addr);
    drop(sup);
    let mut last_exit = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Ok(event)) if event.kind == EventKind::Stopped => break,
            Ok(Ok(event)) => last_exit = Some(event.kind),
            other => panic!("supervisor did not stop: {other:?}"),
        }
    }
    assert_eq!(
        last_exit,
        Some(EventKind::Exited {
            reason: ExitReason::MailboxClosed
        })
    );
    assert_eq!(made.load(Ordering::SeqCst), 2);
}

#[actix::test]
async fn supervised_actors_run_on_other_arbiters() {
    let arbiter = Arbiter::new();
    let (_made, make) = factory();
    let sup = ActorBuilder::new("remote").supervise_on(
        &arbiter.handle(),
        spec(RestartPolicy::Permanent, 5),
        make,
    );
    let addr = sup.address().clone();
    assert_eq!(incarnation(&addr).await, Ok(Value::Int(1)));
    let _ = addr.call(Call::new("panic", vec![])).await;
    assert_eq!(incarnation(&addr).await, Ok(Value::Int(2)));
    arbiter.stop();
}
