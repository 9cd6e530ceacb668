//! Failure paths with real processes: deadlines, cancellation, crashes of every kind,
//! restarts, the restart limit, the memory limit, children that never connect, and a
//! graceful stop.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{probe, venv};
use troupe_bridge_python::extension::{self, ExtensionConfig, ExtensionRef, NoRoutes};
use troupe_bridge_python::process::{LaunchError, LaunchSpec, LinkLimits, SandboxConfig, launch};
use troupe_runtime::Call;
use troupe_runtime::supervision::{
    Backoff, ExitReason, RestartLimit, RestartPolicy, RestartSpec, SupervisorStatus,
};
use troupe_value::{CallError, ExitCause, Value};

fn quick_restarts(max_restarts: u32) -> RestartSpec {
    RestartSpec {
        policy: RestartPolicy::Permanent,
        limit: RestartLimit {
            max_restarts,
            within: Duration::from_secs(60),
        },
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            ..Backoff::default()
        },
    }
}

async fn start(config: ExtensionConfig) -> ExtensionRef {
    let venv = actix_rt::task::spawn_blocking(|| venv(&[])).await.unwrap();
    let ext = extension::start(config, venv, Arc::new(NoRoutes));
    let status = ext.ready_within(Duration::from_secs(30)).await;
    assert!(status.is_ok(), "{status:?}");
    ext
}

async fn running_pid(ext: &ExtensionRef) -> i64 {
    ext.call_as::<i64>("pid", vec![]).await.expect("pid")
}

#[test]
fn deadlines_and_dropped_calls_cancel_the_coroutine_in_the_child() {
    actix::System::new().block_on(async {
        let ext = start(probe("deadline")).await;
        let call = Call::new("sleep_async", vec![Value::Float(30.0)]);
        let result = ext.call_with(call, Some(Duration::from_millis(200))).await;
        assert_eq!(result, Err(CallError::Timeout(Duration::from_millis(200))));

        // A caller that gives up by dropping the future cancels the call too.
        let dropped = tokio::time::timeout(
            Duration::from_millis(200),
            ext.call("sleep_async", vec![Value::Float(30.0)]),
        )
        .await;
        assert!(dropped.is_err());

        let mut cancelled = 0;
        for _ in 0..100 {
            cancelled = ext.call_as::<i64>("cancelled_count", vec![]).await.unwrap();
            if cancelled == 2 {
                break;
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(cancelled, 2, "both coroutines were cancelled in the child");
        ext.stop().await;
    });
}

#[test]
fn a_hung_call_past_its_deadline_restarts_the_child_and_later_calls_go_to_the_new_one() {
    actix::System::new().block_on(async {
        let grace = Duration::from_millis(300);
        let config = probe("hung")
            .restart(quick_restarts(10))
            .cancel_grace(Some(grace));
        let ext = start(config).await;
        let first_pid = running_pid(&ext).await;
        let mut events = ext.subscribe();

        // A `def` method that never ends: the cancel cannot stop it.
        let hung = Call::new("sleep", vec![Value::Float(600.0)]);
        let deadline = Duration::from_millis(200);
        assert_eq!(
            ext.call_with(hung, Some(deadline)).await,
            Err(CallError::Timeout(deadline))
        );
        // The next calls are not queued behind the hung one: they wait for the grace, the
        // kill and the new instance, and are answered there.
        let began = Instant::now();
        for i in 0..5 {
            assert_eq!(
                ext.call("add", vec![Value::Int(i), Value::Int(1)]).await,
                Ok(Value::Int(i + 1))
            );
        }
        assert!(began.elapsed() < Duration::from_secs(20));
        assert_ne!(running_pid(&ext).await, first_pid, "a new process answers");

        let mut cause = None;
        while let Ok(event) = events.try_recv() {
            if let troupe_runtime::supervision::EventKind::Exited {
                reason: ExitReason::Crashed(info),
            } = event.kind
            {
                cause = Some(info.cause);
            }
        }
        assert_eq!(cause, Some(ExitCause::CancelIgnored(grace)));

        // An `async def` method that is cancelled ends at once: no restart.
        let pid = running_pid(&ext).await;
        let call = Call::new("sleep_async", vec![Value::Float(600.0)]);
        assert_eq!(
            ext.call_with(call, Some(deadline)).await,
            Err(CallError::Timeout(deadline))
        );
        actix_rt::time::sleep(grace * 2).await;
        assert_eq!(running_pid(&ext).await, pid, "the same process answers");
        ext.stop().await;
    });
}

#[test]
fn a_crash_fails_pending_calls_at_once_and_the_extension_restarts() {
    actix::System::new().block_on(async {
        let ext = start(probe("crashy").restart(quick_restarts(10))).await;
        let first_pid = running_pid(&ext).await;
        let mut events = ext.subscribe();

        // A slow call in flight, then a crash: the slow call fails long before its 20 s.
        // (`def` methods run one at a time, so the slow one is `async def`.)
        let slow = {
            let ext = ext.clone();
            actix_rt::spawn(async move { ext.call("sleep_async", vec![Value::Float(20.0)]).await })
        };
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        let began = Instant::now();
        let crashed = ext.call("exit_now", vec![Value::Int(3)]).await;
        let slow = slow.await.unwrap();
        assert!(began.elapsed() < Duration::from_secs(10));
        for result in [crashed, slow] {
            match result {
                Err(CallError::Crashed(info)) => assert_eq!(info.cause, ExitCause::Exited(3)),
                other => panic!("expected Crashed with exit code 3, got {other:?}"),
            }
        }

        // Calls made now wait for the new instance and succeed.
        assert_eq!(
            ext.call("add", vec![Value::Int(1), Value::Int(2)]).await,
            Ok(Value::Int(3))
        );
        let second_pid = running_pid(&ext).await;
        assert_ne!(first_pid, second_pid);
        let lifecycle: Vec<String> = ext.call_as("lifecycle", vec![]).await.unwrap();
        assert!(
            lifecycle.contains(&"initialize".to_owned()),
            "hooks ran again: {lifecycle:?}"
        );
        let mut saw_restart = false;
        while let Ok(event) = events.try_recv() {
            saw_restart |= matches!(
                event.kind,
                troupe_runtime::supervision::EventKind::Restarting { .. }
            );
        }
        assert!(saw_restart);

        // kill -9 and a segfault are reported with their signals.
        let pid = libc::pid_t::try_from(second_pid).unwrap();
        let slow = {
            let ext = ext.clone();
            actix_rt::spawn(async move { ext.call("sleep", vec![Value::Float(20.0)]).await })
        };
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        // SAFETY: signalling the child we spawned.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        match slow.await.unwrap() {
            Err(CallError::Crashed(info)) => {
                assert_eq!(info.cause, ExitCause::Signaled(libc::SIGKILL))
            }
            other => panic!("expected Crashed by SIGKILL, got {other:?}"),
        }
        match ext.call("segfault", vec![]).await {
            Err(CallError::Crashed(info)) => {
                assert_eq!(info.cause, ExitCause::Signaled(libc::SIGSEGV))
            }
            other => panic!("expected Crashed by SIGSEGV, got {other:?}"),
        }
        assert_eq!(
            ext.call("add", vec![Value::Int(2), Value::Int(2)]).await,
            Ok(Value::Int(4))
        );
        ext.stop().await;
    });
}

#[test]
fn a_start_that_hangs_is_reported_at_the_start_deadline() {
    actix::System::new().block_on(async {
        let venv = actix_rt::task::spawn_blocking(|| venv(&[])).await.unwrap();
        let config = ExtensionConfig::new("hangs", "slow_import")
            .path(support::plugins())
            .start_timeout(Duration::from_millis(1500))
            .restart(quick_restarts(0));
        let began = Instant::now();
        let ext = extension::start(config, venv, Arc::new(NoRoutes));
        let status = ext.ready().await;
        let SupervisorStatus::GaveUp(give_up) = status else {
            panic!("expected GaveUp, got {status:?}");
        };
        let ExitReason::Crashed(last) = &give_up.last_exit else {
            panic!("expected a crash, got {:?}", give_up.last_exit);
        };
        assert_eq!(
            last.cause,
            ExitCause::StartTimeout(Duration::from_millis(1500))
        );
        assert!(
            began.elapsed() < Duration::from_secs(15),
            "{:?}",
            began.elapsed()
        );
        assert!(last.to_string().contains("start"), "{last}");
    });
}

#[test]
fn past_the_restart_limit_the_extension_fails_with_the_reason() {
    actix::System::new().block_on(async {
        let ext = start(probe("crashing").restart(quick_restarts(2))).await;
        // Three crashes: two restarts, then the limit.
        for _ in 0..3 {
            let crashed = ext.call("exit_now", vec![Value::Int(3)]).await;
            assert!(matches!(crashed, Err(CallError::Crashed(_))), "{crashed:?}");
        }
        let status = ext.watch().finished().await;
        let SupervisorStatus::GaveUp(give_up) = status else {
            panic!("expected GaveUp, got {status:?}");
        };
        assert_eq!(give_up.restarts, 2);
        let ExitReason::Crashed(last) = &give_up.last_exit else {
            panic!("expected a crash, got {:?}", give_up.last_exit);
        };
        assert_eq!(last.cause, ExitCause::Exited(3));
        match ext.call("anything", vec![]).await {
            Err(CallError::Crashed(info)) => {
                assert_eq!(info.gave_up_after, Some(2));
                assert!(info.to_string().contains("gave up"), "{info}");
            }
            other => panic!("expected Crashed after giving up, got {other:?}"),
        }
    });
}

#[test]
fn a_module_that_does_not_import_fails_once_with_its_exception() {
    actix::System::new().block_on(async {
        let venv = actix_rt::task::spawn_blocking(|| venv(&[])).await.unwrap();
        let config = ExtensionConfig::new("broken", "no_such_module_here")
            .path(support::plugins())
            .restart(quick_restarts(2));
        let ext = extension::start(config, venv, Arc::new(NoRoutes));
        let status = ext.ready().await;
        let SupervisorStatus::Stopped(ExitReason::Crashed(last)) = &status else {
            panic!("expected a final failed start, got {status:?}");
        };
        let ExitCause::StartFailed(exception) = &last.cause else {
            panic!("expected a failed start, got {last:?}");
        };
        assert_eq!(exception.type_name, "ModuleNotFoundError");
        assert!(exception.traceback.contains("no_such_module_here"));
        match ext.call("anything", vec![]).await {
            Err(CallError::Crashed(info)) => {
                assert!(matches!(info.cause, ExitCause::StartFailed(_)), "{info}");
                assert_eq!(info.gave_up_after, None, "not retried");
            }
            other => panic!("expected the failed start, got {other:?}"),
        }
    });
}

#[test]
fn the_memory_limit_kills_and_restarts_the_child() {
    actix::System::new().block_on(async {
        let ext = start(
            probe("hungry")
                .memory_limit_mb(200)
                .restart(quick_restarts(5)),
        )
        .await;
        match ext.call("allocate", vec![Value::Int(600)]).await {
            Err(CallError::Crashed(info)) => {
                let ExitCause::MemoryLimit {
                    rss_bytes,
                    limit_bytes,
                } = info.cause
                else {
                    panic!("expected the memory limit, got {info:?}");
                };
                assert_eq!(limit_bytes, 200 << 20);
                assert!(rss_bytes > limit_bytes);
                assert!(info.to_string().contains("memory limit exceeded"), "{info}");
            }
            other => panic!("expected a memory-limit crash, got {other:?}"),
        }
        assert_eq!(
            ext.call("add", vec![Value::Int(1), Value::Int(1)]).await,
            Ok(Value::Int(2))
        );
        ext.stop().await;
    });
}

#[test]
fn graceful_stop_runs_prepare_shutdown() {
    actix::System::new().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("shutdown");
        // The marker lies outside the child's temp dir: its sandbox must let it write there.
        let config = probe("graceful")
            .var("PROBE_SHUTDOWN_MARKER", marker.to_string_lossy())
            .sandbox(SandboxConfig::default().write(dir.path()));
        let ext = start(config).await;
        ext.stop().await;
        assert_eq!(ext.status(), SupervisorStatus::Stopped(ExitReason::Stopped));
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            "prepare_shutdown ran"
        );
        assert_eq!(
            ext.call("add", vec![Value::Int(1), Value::Int(1)]).await,
            Err(CallError::ActorStopped)
        );
    });
}

fn script(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-python");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn spec(python: std::path::PathBuf, connect_timeout: Duration) -> LaunchSpec {
    LaunchSpec {
        name: "fake".into(),
        venv: python.parent().unwrap().to_owned(),
        python,
        env: vec![],
        cwd: None,
        sys_path: vec![],
        memory_limit: None,
        sandbox: Default::default(),
        connect_timeout,
        limits: LinkLimits::default(),
    }
}

#[test]
fn a_child_that_dies_before_connecting_is_reported_with_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let python = script(dir.path(), "echo 'cannot import troupe' >&2\nexit 7");
    let began = Instant::now();
    let err = launch(&spec(python, Duration::from_secs(30))).unwrap_err();
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "not the connect deadline"
    );
    match err {
        LaunchError::ExitedEarly(info) => {
            assert_eq!(info.cause, ExitCause::Exited(7));
            assert!(
                info.stderr_tail.contains("cannot import troupe"),
                "{info:?}"
            );
        }
        other => panic!("expected ExitedEarly, got {other:?}"),
    }
}

#[test]
fn a_child_that_never_connects_is_killed_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let python = script(dir.path(), "echo 'stuck' >&2\nexec sleep 60");
    match launch(&spec(python, Duration::from_millis(500))).unwrap_err() {
        LaunchError::ConnectTimeout { after, stderr_tail } => {
            assert_eq!(after, Duration::from_millis(500));
            assert!(stderr_tail.contains("stuck"), "{stderr_tail}");
        }
        other => panic!("expected ConnectTimeout, got {other:?}"),
    }
}
