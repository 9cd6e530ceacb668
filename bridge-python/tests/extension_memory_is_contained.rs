//! A hostile extension against the shared memory it was lent: it cannot write it (by a
//! writable mapping, a write, a fresh read-write open, or numpy flags), shrink it (no
//! `SIGBUS` for the host), or find any region by name; writing it by address crashes only
//! the writer, and the host's array is intact. This holds without the sandbox (it is the
//! memory's own protection), and with it.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{plugins, venv};
use troupe_bridge_python::extension::{self, ExtensionConfig, ExtensionRef, NoRoutes};
use troupe_bridge_python::process::SandboxLevel;
use troupe_shm::pool::Pool;
use troupe_value::{Array, Buffer, CallError, DType, ExitCause, Value};

const LEN: usize = 1 << 20;

/// A host array of `LEN` bytes of 7s, in the host's pool.
fn lent() -> Array {
    let data = Pool::global().alloc_with(LEN, |b| b.fill(7)).unwrap();
    Array::new(DType::U8, vec![LEN], Buffer::from(data)).unwrap()
}

fn outcome<'a>(map: &'a Value, key: &str) -> &'a Value {
    match map {
        Value::Map(map) => map
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {map:?}")),
        other => panic!("{other:?}"),
    }
}

/// Every entry of list `key` in `map` is `expected`.
fn all_are(map: &Value, key: &str, expected: &str) {
    let Value::List(items) = outcome(map, key) else {
        panic!("{key}: {:?}", outcome(map, key))
    };
    assert!(!items.is_empty(), "{key}: tried on no memory file");
    for item in items {
        assert_eq!(item, &Value::from(expected), "{key}: {items:?}");
    }
}

async fn start(sandbox: SandboxLevel) -> ExtensionRef {
    let venv = actix_rt::task::spawn_blocking(|| venv(&["numpy>=2,<3"]))
        .await
        .unwrap();
    let config = ExtensionConfig::new("hostile-memory", "hostile_memory")
        .path(plugins())
        .sandbox(sandbox);
    let ext = extension::start(config, venv, Arc::new(NoRoutes));
    let status = ext.ready_within(Duration::from_secs(60)).await;
    assert!(status.is_ok(), "{status:?}");
    ext
}

#[test]
fn unsandboxed_a_hostile_extension_cannot_write_shrink_or_find_lent_memory() {
    actix::System::new().block_on(attack(SandboxLevel::Off));
}

#[test]
fn sandboxed_a_hostile_extension_cannot_write_shrink_or_find_lent_memory() {
    actix::System::new().block_on(attack(SandboxLevel::Default));
}

async fn attack(sandbox: SandboxLevel) {
    {
        let ext = start(sandbox).await;
        let array = lent();
        let got = ext
            .call("attack", vec![Value::Array(array.clone())])
            .await
            .unwrap();
        assert!(
            matches!(outcome(&got, "memory_files"), Value::Int(n) if *n >= 1),
            "the lent region arrived as a descriptor: {got:?}"
        );
        assert_eq!(outcome(&got, "writeable"), &Value::Bool(false));
        assert_eq!(outcome(&got, "make_writeable"), &Value::from("ValueError"));
        all_are(&got, "map_writable", "PermissionError");
        all_are(&got, "truncate", "PermissionError");
        all_are(&got, "write", "PermissionError");
        all_are(&got, "write_reopened", "PermissionError");
        // (Names other programs left in /dev/shm are none of troupe's business.)
        let ours = [std::process::id(), ext.pid().unwrap()];
        let names = match outcome(&got, "shm_names") {
            Value::List(names) => names.clone(),
            // Sandboxed, /dev/shm cannot even be listed.
            Value::Str(denied) if sandbox != SandboxLevel::Off => {
                assert_eq!(denied, "PermissionError");
                Vec::new()
            }
            other => panic!("{other:?}"),
        };
        assert!(
            !names.iter().any(|name| ours.iter().any(|pid| name
                .as_str()
                .is_some_and(|n| n.starts_with(&format!("troupe-{pid}-"))))),
            "no region of the host or the child has a name: {names:?}"
        );
        assert!(array.data().as_slice().iter().all(|&b| b == 7), "intact");

        // Writing it by address faults in the child, not in the host.
        let crashed = ext
            .call("scribble", vec![Value::Array(array.clone())])
            .await;
        let Err(CallError::Crashed(info)) = crashed else {
            panic!("the scribbler crashes: {crashed:?}")
        };
        assert!(
            matches!(info.cause, ExitCause::Signaled(sig) if sig == libc::SIGSEGV || sig == libc::SIGBUS),
            "{info:?}"
        );
        assert!(array.data().as_slice().iter().all(|&b| b == 7), "intact");
        ext.stop().await;
    }
}
