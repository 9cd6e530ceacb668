//! What extensions need still works in a sandbox: numpy (BLAS threads), pool arrays of 64
//! KiB, 64 MiB and 256 MiB both ways, a subprocess, writing to `$TMPDIR` (private, removed when the
//! child ends), a crash and a restart. Under `default`, and under `strict` where bubblewrap
//! works (a clear skip message elsewhere).

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{plugins, venv};
use troupe_bridge_python::extension::{self, ExtensionConfig, ExtensionRef, NoRoutes};
use troupe_bridge_python::process::sandbox::{Bubblewrap, support as sandbox_support};
use troupe_bridge_python::process::{SandboxConfig, SandboxLevel};
use troupe_shm::pool::Pool;
use troupe_value::{Array, Buffer, CallError, DType, ExitCause, Value};

async fn start(level: SandboxLevel) -> ExtensionRef {
    let venv = actix_rt::task::spawn_blocking(|| venv(&["numpy>=2,<3"]))
        .await
        .unwrap();
    let config = ExtensionConfig::new(format!("needs-{level:?}"), "needs")
        .path(plugins())
        .var("OPENBLAS_NUM_THREADS", "4")
        .sandbox(SandboxConfig::level(level));
    let ext = extension::start(config, venv, Arc::new(NoRoutes));
    let status = ext.ready_within(Duration::from_secs(60)).await;
    assert!(status.is_ok(), "{level:?}: {status:?}");
    ext
}

async fn call(ext: &ExtensionRef, method: &str, args: Vec<Value>) -> Value {
    match ext.call(method, args).await {
        Ok(value) => value,
        Err(e) => panic!("{method}: {e}"),
    }
}

/// A `u8` array of `len` bytes (`i % 251`) in the host's pool.
fn pooled(len: usize) -> Array {
    let data = Pool::global()
        .alloc_with(len, |bytes| {
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (i % 251) as u8;
            }
        })
        .unwrap();
    Array::new(DType::U8, vec![len], Buffer::from(data)).unwrap()
}

fn checksum(len: usize) -> i64 {
    (0..len).map(|i| (i % 251) as i64).sum()
}

async fn keeps_what_extensions_need(level: SandboxLevel) {
    let ext = start(level).await;

    // numpy with BLAS threads: trace(a a^T) = sum of squares of i / n^2.
    let n = 256usize;
    let expected: f64 = (0..n * n)
        .map(|i| (i as f64 / (n * n) as f64).powi(2))
        .sum();
    let Value::Float(trace) = call(&ext, "matmul", vec![Value::Int(n as i64)]).await else {
        panic!("matmul answers a float")
    };
    assert!(
        (trace - expected).abs() < 1e-6 * expected,
        "{trace} vs {expected}"
    );

    // Pool arrays both ways, small and large.
    for len in [64 << 10, 64 << 20, 256 << 20] {
        let sent = pooled(len);
        let key = sent.data().pool_key();
        let Value::Array(back) = call(&ext, "echo", vec![Value::Array(sent)]).await else {
            panic!("echo answers an array")
        };
        assert_eq!(
            back.data().pool_key(),
            key,
            "{len} bytes came back as the same slot"
        );
        let Value::Array(made) = call(&ext, "fresh", vec![Value::Int(len as i64)]).await else {
            panic!("fresh answers an array")
        };
        assert!(
            made.data().pool_key().is_some(),
            "{len} bytes arrived in the pool"
        );
        let sum: i64 = made.data().as_slice().iter().map(|&b| i64::from(b)).sum();
        assert_eq!(sum, checksum(len));
        let summed = call(&ext, "checksum", vec![Value::Array(made)]).await;
        assert_eq!(summed, Value::Int(checksum(len)));
    }

    assert_eq!(
        call(&ext, "echo_subprocess", vec![]).await,
        Value::Str("x\n".into())
    );

    let Value::Str(tmp) = call(&ext, "write_tmp", vec![]).await else {
        panic!("write_tmp answers its dir")
    };
    let tmp = PathBuf::from(tmp);
    assert!(
        tmp.join("scratch.txt").is_file(),
        "the child wrote to its private temp dir {}",
        tmp.display()
    );
    assert!(tmp.starts_with(std::env::temp_dir()));

    // A crash, then the restarted child answers; the crashed one's temp dir is gone.
    match ext.call("crash", vec![]).await {
        Err(CallError::Crashed(info)) => assert_eq!(info.cause, ExitCause::Exited(3)),
        other => panic!("crash: {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = loop {
        match ext.call("pid", vec![]).await {
            Ok(Value::Int(pid)) => break pid,
            other if Instant::now() > deadline => panic!("no restart: {other:?}"),
            _ => actix_rt::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert!(pid > 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tmp.exists() && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!tmp.exists(), "the crashed child's temp dir is removed");
    let Value::Str(new_tmp) = call(&ext, "write_tmp", vec![]).await else {
        panic!("write_tmp answers its dir")
    };
    assert_ne!(
        PathBuf::from(new_tmp),
        tmp,
        "each child has its own temp dir"
    );
    ext.stop().await;
}

#[actix_rt::test]
async fn the_default_sandbox_keeps_what_extensions_need() {
    keeps_what_extensions_need(SandboxLevel::Default).await;
}

#[actix_rt::test]
async fn the_strict_sandbox_keeps_what_extensions_need() {
    match sandbox_support::bubblewrap() {
        Bubblewrap::Works(_) => keeps_what_extensions_need(SandboxLevel::Strict).await,
        other => eprintln!(
            "SKIPPED: strict needs a working bubblewrap, and this machine has {other:?} \
             (install the bubblewrap package)"
        ),
    }
}
