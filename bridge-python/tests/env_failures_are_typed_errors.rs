//! Failures come back as typed errors that concern one spec only; the cache stays usable.

use std::fs;

use troupe_bridge_python::env::{self, EnvCache, EnvError, EnvSpec, InstallerKind};

#[test]
fn an_unknown_package_reports_the_resolver_message() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = EnvCache::new(tmp.path());
    let broken = EnvSpec::new(["this-package-does-not-exist-troupe==9.9"]).with_label("broken-ext");
    match cache.ensure(&broken, &env::quiet) {
        Err(EnvError::Install {
            spec,
            installer,
            status,
            message,
        }) => {
            assert!(spec.contains("broken-ext"), "{spec}");
            assert_eq!(installer, InstallerKind::Uv);
            assert!(!status.success());
            assert!(
                message.contains("this-package-does-not-exist-troupe"),
                "{message}"
            );
        }
        other => panic!("expected an install error, got {other:?}"),
    }
    assert!(
        cache.list().expect("list").is_empty(),
        "nothing half-built left"
    );

    // The next extension still gets its venv.
    let fine = cache.ensure(&EnvSpec::new(["six==1.16.0"]), &env::quiet);
    assert!(fine.is_ok(), "{fine:?}");
}

#[test]
fn a_missing_interpreter_is_an_interpreter_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = EnvSpec::new(["six"]).with_python("/nonexistent/bin/python3");
    let result = EnvCache::new(tmp.path()).ensure(&spec, &env::quiet);
    assert!(
        matches!(result, Err(EnvError::Interpreter { .. })),
        "{result:?}"
    );
}

#[test]
fn an_unwritable_cache_dir_is_an_io_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A regular file where a directory should be: fails even for root.
    fs::write(tmp.path().join("file"), "").expect("write");
    let cache = EnvCache::new(tmp.path().join("file/cache"));
    let result = cache.ensure(&EnvSpec::new(["six"]), &env::quiet);
    assert!(matches!(result, Err(EnvError::Io { .. })), "{result:?}");
}

#[test]
fn installer_options_are_not_requirements() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = EnvSpec::new(["six", "--index-url=http://example.invalid/simple"]);
    let result = EnvCache::new(tmp.path()).ensure(&spec, &env::quiet);
    assert!(
        matches!(result, Err(EnvError::Requirement { .. })),
        "{result:?}"
    );
}
