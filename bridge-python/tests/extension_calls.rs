//! Calls through a real extension process in a real venv: values, lifecycle, sync and async
//! methods, exceptions, nesting through the host, singletons, grants, concurrency.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{Kv, TestRouter, host_service, probe, venv};
use troupe_bridge_python::extension::{self, ExtensionRef};
use troupe_protocol::Target;
use troupe_runtime::supervision::{ExitReason, SupervisorStatus};
use troupe_runtime::{ActorBuilder, Call, Registry};
use troupe_value::{CallError, Value};

/// Starts the probe with host, `kv` singleton and the given grants.
async fn start_probe(name: &str, allowed: Vec<Target>) -> ExtensionRef {
    let (host, slot) = host_service();
    let registry = Registry::new();
    registry
        .register_caller("kv", ActorBuilder::new("kv").spawn(Kv::default()).caller())
        .unwrap();
    let router = Arc::new(TestRouter {
        host: Some(host),
        registry,
        allowed,
    });
    let venv = actix_rt::task::spawn_blocking(|| venv(&[])).await.unwrap();
    let ext = extension::start(probe(name), venv, router);
    slot.set(ext.caller()).unwrap();
    let status = ext.ready_within(Duration::from_secs(30)).await;
    assert!(
        matches!(status, Ok(SupervisorStatus::Running { .. })),
        "{status:?}"
    );
    ext
}

fn ints(values: &[i64]) -> Vec<Value> {
    values.iter().map(|v| Value::Int(*v)).collect()
}

#[test]
fn lifecycle_hooks_run_in_order_and_methods_are_sync_or_async() {
    actix::System::new().block_on(async {
        let ext = start_probe("lifecycle", vec![]).await;
        let events: Vec<String> = ext.call_as("lifecycle", vec![]).await.unwrap();
        assert_eq!(
            events,
            [
                "module imported",
                "__init__",
                "before_module_loaded",
                "on_module_loaded:probe",
                "initialize"
            ]
        );
        assert_eq!(ext.call("add", ints(&[2, 3])).await, Ok(Value::Int(5)));
        assert_eq!(
            ext.call("add_async", ints(&[4, 5])).await,
            Ok(Value::Int(9))
        );
        assert!(matches!(
            ext.call("no_such_method", vec![]).await,
            Err(CallError::UnknownMethod { .. })
        ));
        ext.stop().await;
        assert_eq!(ext.status(), SupervisorStatus::Stopped(ExitReason::Stopped));
    });
}

#[test]
fn values_of_every_kind_round_trip_and_unsupported_types_are_named() {
    actix::System::new().block_on(async {
        let ext = start_probe("values", vec![]).await;
        let args = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-7),
            Value::Float(2.5),
            Value::from("text"),
            Value::Bytes(vec![0u8, 1, 255].into()),
            Value::List(vec![Value::Int(1), Value::List(vec![])]),
            Value::map([("k", Value::Int(1))]),
        ];
        let call = Call::new("echo", args.clone()).kwarg("named", "yes");
        let echoed = ext.call_with(call, None).await.unwrap();
        assert_eq!(
            echoed,
            Value::List(vec![
                Value::List(args),
                Value::map([("named", Value::from("yes"))])
            ])
        );
        match ext.call("return_set", vec![]).await {
            Err(CallError::Remote(e)) => {
                assert_eq!(e.type_name, "TypeError");
                assert!(e.message.contains("set"), "{}", e.message);
                assert!(e.message.contains("['a'][1]"), "path named: {}", e.message);
            }
            other => panic!("expected a TypeError, got {other:?}"),
        }
        ext.stop().await;
    });
}

#[test]
fn python_exceptions_arrive_with_type_message_and_traceback() {
    actix::System::new().block_on(async {
        let ext = start_probe("errors", vec![]).await;
        match ext.call("fail", vec![Value::from("bad input")]).await {
            Err(CallError::Remote(e)) => {
                assert_eq!(e.type_name, "ValueError");
                assert_eq!(e.message, "bad input");
                assert!(e.traceback.contains("in deeper"), "{}", e.traceback);
                assert!(e.traceback.contains("probe.py"), "{}", e.traceback);
            }
            other => panic!("expected a ValueError, got {other:?}"),
        }
        match ext.call("fail_async", vec![]).await {
            Err(CallError::Remote(e)) => assert_eq!(e.type_name, "KeyError"),
            other => panic!("expected a KeyError, got {other:?}"),
        }
        // The extension is still healthy afterwards.
        assert_eq!(ext.call("add", ints(&[1, 1])).await, Ok(Value::Int(2)));
        ext.stop().await;
    });
}

#[test]
fn nesting_host_extension_host_to_depth_fifty_sync_and_async() {
    actix::System::new().block_on(async {
        let ext = start_probe("nesting", vec![Target::Host]).await;
        assert_eq!(ext.call("recurse", ints(&[50])).await, Ok(Value::Int(50)));
        assert_eq!(
            ext.call("recurse_async", ints(&[50])).await,
            Ok(Value::Int(50))
        );
        // Blocking host calls from a thread the extension starts itself.
        assert_eq!(
            ext.call("call_from_thread", ints(&[20, 22])).await,
            Ok(Value::Int(42))
        );
        ext.stop().await;
    });
}

#[test]
fn singletons_answer_granted_calls_and_refuse_the_rest() {
    actix::System::new().block_on(async {
        let ext = start_probe("grants", vec![Target::Singleton("kv".into())]).await;
        let stored = ext
            .call(
                "kv_roundtrip",
                vec![Value::from("colour"), Value::from("teal")],
            )
            .await;
        assert_eq!(stored, Ok(Value::from("teal")));
        assert_eq!(
            ext.call("call_forbidden", vec![]).await,
            Ok(Value::from("PermissionDeniedError"))
        );
        // Not granted the host either.
        match ext.call("recurse", ints(&[1])).await {
            Err(CallError::Remote(e)) => assert_eq!(e.type_name, "troupe.PermissionDeniedError"),
            other => panic!("expected PermissionDeniedError, got {other:?}"),
        }
        ext.stop().await;
    });
}

#[test]
fn a_thousand_concurrent_calls_from_many_tasks_are_all_answered() {
    actix::System::new().block_on(async {
        let ext = start_probe("concurrent", vec![]).await;
        let tasks: Vec<_> = (0..1000i64)
            .map(|i| {
                let ext = ext.clone();
                let method = if i % 2 == 0 { "add" } else { "add_async" };
                actix_rt::spawn(async move { (i, ext.call(method, ints(&[i, 1000])).await) })
            })
            .collect();
        for task in tasks {
            let (i, result) = task.await.unwrap();
            assert_eq!(result, Ok(Value::Int(i + 1000)), "call {i}");
        }
        ext.stop().await;
    });
}
