//! Supervision, deadlines, cancellation, backpressure and restarts of an extension, with a
//! fake child that speaks the protocol in-process (`troupe_bridge_python::testing`): fast and
//! deterministic, beside the end-to-end tests with real venvs.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use troupe_bridge_python::extension::{self, ExtensionConfig, ExtensionRef, NoRoutes};
use troupe_bridge_python::testing::{FakeChild, Reply, Start};
use troupe_runtime::Call;
use troupe_runtime::supervision::{
    Backoff, ExitReason, RestartLimit, RestartPolicy, RestartSpec, SupervisorStatus,
};
use troupe_value::{CallError, ExitCause, HandshakeError, RemoteException, Value};

fn restarts(policy: RestartPolicy, max_restarts: u32) -> RestartSpec {
    RestartSpec {
        policy,
        limit: RestartLimit {
            max_restarts,
            within: Duration::from_secs(60),
        },
        backoff: Backoff::NONE,
    }
}

fn start(fake: &FakeChild, config: ExtensionConfig) -> ExtensionRef {
    let spec = fake.spec(&config.name);
    start_spec(fake, config, spec)
}

fn start_spec(
    fake: &FakeChild,
    config: ExtensionConfig,
    spec: troupe_bridge_python::process::LaunchSpec,
) -> ExtensionRef {
    extension::start_with(
        None,
        config,
        spec,
        Arc::new(fake.clone()),
        Arc::new(NoRoutes),
    )
}

/// Answers `echo` with its first argument, `exit` by exiting with its argument, hangs on
/// `hang`, answers `slow` after 200 ms.
fn script() -> FakeChild {
    FakeChild::new(|call| match call.method.as_str() {
        "echo" => Reply::Now(Ok(call.args.first().cloned().unwrap_or(Value::Null))),
        "exit" => match call.args.first() {
            Some(Value::Int(code)) => Reply::Exit(*code as i32),
            _ => Reply::Exit(0),
        },
        "slow" => Reply::After(Duration::from_millis(200), Ok(Value::from("slow"))),
        "yield" => match call.args.first() {
            Some(Value::Int(n)) => Reply::Yield((0..*n).map(Value::Int).collect()),
            _ => Reply::Yield(Vec::new()),
        },
        _ => Reply::Hang,
    })
}

async fn settled(ext: &ExtensionRef) -> SupervisorStatus {
    tokio::time::timeout(Duration::from_secs(5), ext.watch().finished())
        .await
        .expect("the extension settles")
}

async fn running(ext: &ExtensionRef) {
    assert!(ext.ready_within(Duration::from_secs(5)).await.is_ok());
}

async fn until_instance(ext: &ExtensionRef, instance: u64) {
    let began = Instant::now();
    loop {
        if ext.status() == (SupervisorStatus::Running { instance }) {
            return;
        }
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "never ran instance {instance}: {:?}",
            ext.status()
        );
        actix_rt::time::sleep(Duration::from_millis(2)).await;
    }
}

#[test]
fn a_clean_exit_follows_each_policys_rule() {
    actix::System::new().block_on(async {
        // Transient: exit 0 is a normal end, final; exit 3 is a failure, restarted.
        let fake = script();
        let ext = start(
            &fake,
            ExtensionConfig::new("transient", "m").restart(restarts(RestartPolicy::Transient, 5)),
        );
        running(&ext).await;
        assert!(ext.call("exit", vec![Value::Int(3)]).await.is_err());
        until_instance(&ext, 2).await;
        assert!(ext.call("exit", vec![Value::Int(0)]).await.is_err());
        assert_eq!(
            settled(&ext).await,
            SupervisorStatus::Stopped(ExitReason::Crashed(troupe_value::CrashInfo::new(
                ExitCause::Exited(0)
            )))
        );
        assert_eq!(fake.instances(), 2);
        assert_eq!(
            ext.call("echo", vec![Value::Int(1)]).await,
            Err(CallError::ActorStopped),
            "a normal end leaves calls failing as stopped"
        );

        // Permanent: even exit 0 restarts.
        let fake = script();
        let ext = start(
            &fake,
            ExtensionConfig::new("permanent", "m").restart(restarts(RestartPolicy::Permanent, 5)),
        );
        running(&ext).await;
        assert!(ext.call("exit", vec![Value::Int(0)]).await.is_err());
        until_instance(&ext, 2).await;
        assert_eq!(
            ext.call("echo", vec![Value::Int(7)]).await,
            Ok(Value::Int(7))
        );

        // Temporary: never restarted; a failure stays the calls' error.
        let fake = script();
        let ext = start(
            &fake,
            ExtensionConfig::new("temporary", "m").restart(restarts(RestartPolicy::Temporary, 5)),
        );
        running(&ext).await;
        assert!(ext.call("exit", vec![Value::Int(3)]).await.is_err());
        settled(&ext).await;
        assert!(matches!(
            ext.call("echo", vec![]).await,
            Err(CallError::Crashed(info)) if info.cause == ExitCause::Exited(3)
        ));
        assert_eq!(fake.instances(), 1);
    });
}

#[test]
fn every_call_in_flight_fails_at_once_on_a_crash_and_waiting_ones_go_to_the_next_child() {
    actix::System::new().block_on(async {
        let fake = script();
        let ext = start(
            &fake,
            ExtensionConfig::new("crashy", "m")
                .restart(restarts(RestartPolicy::Permanent, 5))
                .max_in_flight(2),
        );
        running(&ext).await;
        // Two hang in the child; the third waits for room in the window.
        let calls: Vec<_> = (0..3)
            .map(|_| {
                let caller = ext.caller();
                actix_rt::spawn(async move { caller.call(Call::new("hang", vec![])).await })
            })
            .collect();
        let began = Instant::now();
        while ext.call_counts().in_flight < 2 {
            actix_rt::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(ext.call_counts().waiting, 1);
        fake.kill_current(libc::SIGKILL);
        let mut results = Vec::new();
        let mut still_pending = Vec::new();
        for call in calls {
            match tokio::time::timeout(Duration::from_secs(2), call).await {
                Ok(result) => results.push(result.unwrap()),
                Err(_) => still_pending.push(()),
            }
        }
        assert!(
            results.iter().all(|r| matches!(r, Err(CallError::Crashed(info)) if info.cause == ExitCause::Signaled(libc::SIGKILL))),
            "{results:?}"
        );
        assert_eq!((results.len(), still_pending.len()), (2, 1));
        assert!(began.elapsed() < Duration::from_secs(3));
        // The waiting call went to the second child, where it hangs: it is still pending
        // there, recorded as a call of instance 2.
        assert!(fake.record().calls.iter().any(|(instance, _, method)| *instance == 2 && method == "hang"));
    });
}

#[test]
fn at_most_max_in_flight_calls_are_in_the_child_and_the_rest_wait_in_order() {
    actix::System::new().block_on(async {
        let fake = script();
        let ext = start(&fake, ExtensionConfig::new("window", "m").max_in_flight(3));
        running(&ext).await;
        let calls: Vec<_> = (0..20)
            .map(|_| {
                let caller = ext.caller();
                actix_rt::spawn(async move { caller.call(Call::new("slow", vec![])).await })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap(), Ok(Value::from("slow")));
        }
        let record = fake.record();
        assert_eq!(record.max_outstanding, 3, "{record:?}");
        let ids: Vec<u64> = record.calls.iter().map(|(_, id, _)| *id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted, "calls reach the child in the order made");
    });
}

#[test]
fn past_its_capacity_an_extension_takes_no_more_calls_and_callers_wait() {
    actix::System::new().block_on(async {
        let fake = script();
        let ext = start(
            &fake,
            ExtensionConfig::new("full", "m")
                .max_in_flight(1)
                .capacity(2),
        );
        running(&ext).await;
        // Eight callers, each 200 ms in the child: one in the child, two waiting in the
        // extension, two in its mailbox, and three waiting for room in it.
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let caller = ext.caller();
                actix_rt::spawn(async move { caller.call(Call::new("slow", vec![])).await })
            })
            .collect();
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        let counts = ext.call_counts();
        assert_eq!((counts.in_flight, counts.waiting), (1, 2));
        assert!(
            matches!(
                ext.try_call(Call::new("echo", vec![])),
                Err(CallError::MailboxFull)
            ),
            "the mailbox filled up: refused without waiting"
        );
        // Backpressure loses nothing: every caller gets its answer, one at a time.
        let began = Instant::now();
        for call in calls {
            assert_eq!(call.await.unwrap(), Ok(Value::from("slow")));
        }
        assert!(began.elapsed() >= Duration::from_millis(1300));
    });
}

#[test]
fn deadlines_and_dropped_callers_cancel_the_call_in_the_child() {
    actix::System::new().block_on(async {
        let fake = script();
        // Never killed for a cancelled call: this is about cancels reaching the child.
        let ext = start(
            &fake,
            ExtensionConfig::new("cancels", "m").cancel_grace(None),
        );
        running(&ext).await;
        // `slow` answers `Cancelled` when cancelled (an `async def` method): the next call
        // does not wait for it.
        let call = Call::new("slow", vec![]);
        let timed = call.id;
        assert_eq!(
            ext.call_with(call, Some(Duration::from_millis(50))).await,
            Err(CallError::Timeout(Duration::from_millis(50)))
        );
        let call = Call::new("hang", vec![]);
        let dropped = call.id;
        let _ = tokio::time::timeout(Duration::from_millis(50), ext.call_with(call, None)).await;
        let began = Instant::now();
        loop {
            let cancels: Vec<u64> = fake.record().cancels.iter().map(|(_, id)| *id).collect();
            if cancels.contains(&timed) && cancels.contains(&dropped) {
                break;
            }
            assert!(
                began.elapsed() < Duration::from_secs(2),
                "cancels reach the child: {cancels:?}"
            );
            actix_rt::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(ext.call_counts().in_flight, 0);
        // The extension's own default deadline applies to calls without one.
        let fake = script();
        let ext = start(
            &fake,
            ExtensionConfig::new("default-deadline", "m").call_timeout(Duration::from_millis(30)),
        );
        running(&ext).await;
        assert_eq!(
            ext.call("hang", vec![]).await,
            Err(CallError::Timeout(Duration::from_millis(30)))
        );
    });
}

#[test]
fn failed_starts_count_as_crashes_with_typed_causes_up_to_giving_up() {
    actix::System::new().block_on(async {
        let exception = RemoteException {
            type_name: "ModuleNotFoundError".into(),
            message: "no module named x".into(),
            traceback: String::new(),
        };
        // (A start-up exception of the first instance would be final: see the next test.)
        let fake = script().starting([
            Start::ExitBeforeHello(7),
            Start::Fail(exception.clone()),
            Start::WrongProtocol(1),
            Start::Silent,
            Start::Hang,
        ]);
        let mut spec = fake.spec("starts");
        spec.connect_timeout = Duration::from_millis(100);
        let ext = start_spec(
            &fake,
            ExtensionConfig::new("starts", "m")
                .restart(restarts(RestartPolicy::Permanent, 4))
                .start_timeout(Duration::from_millis(100)),
            spec,
        );
        let mut events = ext.subscribe();
        let SupervisorStatus::GaveUp(give_up) = settled(&ext).await else {
            panic!("expected to give up: {:?}", ext.status());
        };
        assert_eq!(give_up.restarts, 4);
        let mut causes = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let troupe_runtime::supervision::EventKind::Exited {
                reason: ExitReason::Crashed(info),
            } = event.kind
            {
                causes.push(info.cause);
            }
        }
        assert_eq!(
            causes,
            [
                ExitCause::Exited(7),
                ExitCause::StartFailed(exception),
                ExitCause::Handshake(HandshakeError::Version {
                    host: troupe_protocol::PROTOCOL_VERSION,
                    child: 1
                }),
                ExitCause::ConnectTimeout(Duration::from_millis(100)),
                ExitCause::StartTimeout(Duration::from_millis(100)),
            ]
        );
        assert!(matches!(
            ext.call("echo", vec![]).await,
            Err(CallError::Crashed(info)) if info.gave_up_after == Some(4)
        ));
    });
}

#[test]
fn a_start_up_exception_of_the_first_instance_is_final() {
    actix::System::new().block_on(async {
        let exception = RemoteException {
            type_name: "RuntimeError".into(),
            message: "cannot load the model".into(),
            traceback: String::new(),
        };
        let fake = script().starting([Start::Fail(exception.clone())]);
        let ext = start(
            &fake,
            ExtensionConfig::new("broken", "m").restart(restarts(RestartPolicy::Permanent, 4)),
        );
        let status = settled(&ext).await;
        assert!(
            matches!(&status, SupervisorStatus::Stopped(ExitReason::Crashed(info))
                if info.cause == ExitCause::StartFailed(exception.clone())),
            "{status:?}"
        );
        assert_eq!(fake.instances(), 1, "not retried");
        assert!(matches!(
            ext.call("echo", vec![]).await,
            Err(CallError::Crashed(info)) if info.cause == ExitCause::StartFailed(exception)
        ));
    });
}

#[test]
fn stop_asks_the_child_to_shut_down_and_waits_for_it() {
    actix::System::new().block_on(async {
        let fake = script();
        let ext = start(&fake, ExtensionConfig::new("stops", "m"));
        running(&ext).await;
        ext.stop().await;
        assert_eq!(fake.record().shutdowns, 1);
        assert_eq!(ext.status(), SupervisorStatus::Stopped(ExitReason::Stopped));
        assert_eq!(ext.call("echo", vec![]).await, Err(CallError::ActorStopped));
    });
}

/// A child whose reply names a slot of the host's pool it was never lent (a confused deputy:
/// "give me back your memory") is killed with a typed protocol error; the host's slot is
/// untouched, and the next instance serves calls. (A real child, in its own process, hands
/// back what it was lent: see `extension_pool_arrays_cross_without_copies`.)
#[test]
fn a_child_naming_host_memory_it_was_never_lent_is_killed() {
    use troupe_shm::pool::Pool;
    use troupe_value::Buffer;

    let secret = Buffer::from(Pool::global().copy_from_slice(&[42u8; 1 << 17]).unwrap());
    let forged = secret.clone();
    let fake = FakeChild::new(move |call| match call.method.as_str() {
        "forge" => Reply::value(Value::Bytes(forged.clone())),
        "echo" => Reply::Now(Ok(call.args.first().cloned().unwrap_or(Value::Null))),
        _ => Reply::Hang,
    });
    actix::System::new().block_on(async {
        let ext = start(
            &fake,
            ExtensionConfig::new("deputy", "unused").restart(restarts(RestartPolicy::Permanent, 3)),
        );
        running(&ext).await;
        let Err(CallError::Crashed(info)) = ext.call("forge", vec![]).await else {
            panic!("the forged reply is refused");
        };
        assert!(
            matches!(&info.cause, ExitCause::Protocol(why) if why.contains("not lent")),
            "{info:?}"
        );
        assert!(secret.as_slice().iter().all(|&b| b == 42), "untouched");
        until_instance(&ext, 2).await;
        assert_eq!(
            ext.call("echo", vec![Value::Int(1)]).await,
            Ok(Value::Int(1))
        );
        ext.stop().await;
    });
}

#[test]
fn a_cancelled_call_still_running_after_the_grace_restarts_the_child() {
    actix::System::new().block_on(async {
        let fake = script();
        let grace = Duration::from_millis(100);
        let config = ExtensionConfig::new("grace", "fake")
            .restart(restarts(RestartPolicy::Permanent, 5))
            .cancel_grace(Some(grace));
        let ext = start(&fake, config);
        running(&ext).await;
        let deadline = Duration::from_millis(50);
        // A call the child answers `Cancelled` when told: no restart.
        let slow = ext
            .call_with(Call::new("slow", vec![]), Some(deadline))
            .await;
        assert_eq!(slow, Err(CallError::Timeout(deadline)));
        tokio::time::sleep(grace * 2).await;
        assert_eq!(ext.status(), SupervisorStatus::Running { instance: 1 });
        // A call that ignores its cancel: the child is killed after the grace, and the call
        // made meanwhile waits and goes to the next instance.
        let hung = ext
            .call_with(Call::new("hang", vec![]), Some(deadline))
            .await;
        assert_eq!(hung, Err(CallError::Timeout(deadline)));
        let began = Instant::now();
        let next = ext.call("echo", vec![Value::Int(7)]).await;
        assert_eq!(next, Ok(Value::Int(7)));
        assert!(began.elapsed() >= grace / 2, "it waited for the restart");
        assert_eq!(ext.status(), SupervisorStatus::Running { instance: 2 });
        assert_eq!(fake.instances(), 2);
        ext.stop().await;
    });
}

#[test]
fn a_child_yielding_past_its_window_is_killed() {
    actix::System::new().block_on(async {
        let fake = script();
        let config =
            ExtensionConfig::new("flood", "fake").restart(restarts(RestartPolicy::Permanent, 5));
        let ext = start(&fake, config);
        running(&ext).await;
        // Within the window: every item, then the end.
        let mut stream = ext.call_stream(Call::new("yield", vec![Value::Int(4)]), None, 4);
        let mut items = Vec::new();
        while let Some(item) = stream.next().await {
            items.push(item.unwrap());
        }
        assert_eq!(items, (0..4).map(Value::Int).collect::<Vec<_>>());
        // Ten items on a window of four: the child broke the protocol.
        let mut stream = ext.call_stream(Call::new("yield", vec![Value::Int(10)]), None, 4);
        let mut last = None;
        while let Some(item) = stream.next().await {
            last = Some(item);
        }
        match last {
            Some(Err(CallError::Crashed(info))) => {
                assert!(matches!(info.cause, ExitCause::Protocol(_)), "{info:?}")
            }
            other => panic!("expected a protocol crash, got {other:?}"),
        }
        ext.stop().await;
    });
}
