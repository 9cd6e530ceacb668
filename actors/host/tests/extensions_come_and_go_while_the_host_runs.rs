//! Extensions added to and stopped in a running host: real venvs, real child processes.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use troupe_bridge_python::extension::ExtensionConfig;
use troupe_host::extension_host::{AddError, ExtensionHost, Grants};
use troupe_value::{CallError, Value};

fn config(name: &str, module: &str, dir: &Path) -> ExtensionConfig {
    ExtensionConfig::new(name, module)
        .path(dir)
        .dependencies(["numpy>=1.26,<3"])
}

fn plugins() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins")
}

#[test]
fn an_added_extension_runs_next_to_the_others_and_a_stopped_one_is_gone() {
    actix::System::new().block_on(async {
        let host = ExtensionHost::builder().start().await;
        assert!(host.names().is_empty());

        let first = host
            .add(config("first", "nodes", &plugins()), Grants::host_only())
            .await
            .unwrap();
        let second = host
            .add(config("second", "nodes", &plugins()), Grants::host_only())
            .await
            .unwrap();
        assert_eq!(host.names(), ["first", "second"]);
        let doubled: i64 = second
            .call_as("slow_double", vec![Value::Int(21)])
            .await
            .unwrap();
        assert_eq!(doubled, 42);

        // A name that runs cannot be added again.
        let again = host
            .add(config("first", "nodes", &plugins()), Grants::host_only())
            .await;
        assert!(matches!(again, Err(AddError::Duplicate(name)) if name == "first"));

        assert!(host.stop_extension("first").await);
        assert!(!host.stop_extension("first").await);
        assert_eq!(host.names(), ["second"]);
        assert!(host.extension("first").is_none());
        let gone = first
            .caller()
            .call(troupe_runtime::Call::new(
                "slow_double",
                vec![Value::Int(1)],
            ))
            .await;
        assert!(matches!(gone, Err(CallError::ActorStopped)), "{gone:?}");

        // Its name is free again.
        host.add(config("first", "nodes", &plugins()), Grants::host_only())
            .await
            .unwrap();
        assert_eq!(host.names(), ["second", "first"]);
        host.shutdown().await;
    });
}

#[test]
fn an_added_extension_that_does_not_start_is_reported_and_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.py"),
        "import troupe\nraise RuntimeError('cannot load')\n",
    )
    .unwrap();
    actix::System::new().block_on(async {
        let host = ExtensionHost::builder().start().await;
        let added = host
            .add(config("broken", "broken", dir.path()), Grants::host_only())
            .await;
        match added {
            Err(AddError::NotStarted(not_started)) => {
                assert_eq!(not_started.extension, "broken");
                assert!(
                    not_started.traceback.contains("cannot load"),
                    "{not_started:?}"
                );
            }
            other => panic!("expected NotStarted, got {other:?}"),
        }
        assert!(host.names().is_empty());
        host.shutdown().await;
    });
}
