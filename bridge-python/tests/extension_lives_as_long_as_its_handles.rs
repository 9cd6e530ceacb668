//! An extension lives as long as a handle to it does: dropping the last `ExtensionRef` (and
//! every `Caller` made from it) stops its child gracefully, as `stop()` would, within the
//! stop deadline; a handle left anywhere keeps it running.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{probe, venv};
use troupe_bridge_python::extension::{self, ExtensionRef, NoRoutes};
use troupe_bridge_python::process::SandboxConfig;
use troupe_value::Value;

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn start(name: &str, marker: &Path) -> ExtensionRef {
    let venv = actix_rt::task::spawn_blocking(|| venv(&[])).await.unwrap();
    let config = probe(name)
        .var("PROBE_SHUTDOWN_MARKER", marker.to_string_lossy())
        // The marker lies outside the child's temp dir: its sandbox must let it write there.
        .sandbox(SandboxConfig::default().write(marker.parent().unwrap()))
        .stop_timeout(Duration::from_secs(2));
    let ext = extension::start(config, venv, Arc::new(NoRoutes));
    assert!(ext.ready_within(Duration::from_secs(60)).await.is_ok());
    ext
}

/// Waits until process `pid` is gone, at most `within`; returns how long it took.
async fn gone(pid: u32, within: Duration) -> Duration {
    let began = Instant::now();
    while alive(pid) {
        assert!(
            began.elapsed() < within,
            "process {pid} still runs {within:?} after its last handle was dropped"
        );
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    began.elapsed()
}

#[test]
fn dropping_the_last_handle_stops_the_child_gracefully_within_its_deadline() {
    actix::System::new().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("shutdown");
        let ext = start("dropped", &marker).await;
        let pid = ext.pid().unwrap();
        let caller = ext.caller();
        let clone = ext.clone();
        drop(ext);
        drop(clone);
        actix_rt::time::sleep(Duration::from_millis(200)).await;
        assert!(
            alive(pid),
            "a caller made from a handle keeps the extension"
        );
        assert_eq!(
            caller
                .call(troupe_runtime::Call::new(
                    "add",
                    vec![Value::Int(1), Value::Int(2)]
                ))
                .await,
            Ok(Value::Int(3))
        );
        drop(caller);
        // The stop deadline is 2 s; the graceful path takes a few milliseconds.
        let took = gone(pid, Duration::from_secs(3)).await;
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            "prepare_shutdown ran",
            "stopped gracefully, in {took:?}"
        );
    });
}

#[test]
fn dropping_the_last_handle_with_calls_in_flight_stops_a_busy_child_at_the_deadline() {
    actix::System::new().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("shutdown");
        let ext = start("busy-dropped", &marker).await;
        let pid = ext.pid().unwrap();
        // A sync method that runs for a minute: the child cannot run `prepare_shutdown`
        // until it returns, so the stop deadline (2 s) ends it with SIGTERM, then SIGKILL.
        let call = ext
            .try_call(troupe_runtime::Call::new("sleep", vec![Value::Float(60.0)]))
            .unwrap();
        actix_rt::time::sleep(Duration::from_millis(200)).await;
        drop(ext);
        let took = gone(pid, Duration::from_secs(5)).await;
        assert!(
            took >= Duration::from_millis(1500),
            "it had until its deadline: {took:?}"
        );
        assert!(call.await.is_err(), "the call in flight fails");
    });
}
