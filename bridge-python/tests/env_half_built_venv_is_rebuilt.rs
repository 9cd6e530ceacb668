//! A venv directory without its completion marker (a build that crashed) is rebuilt.

use std::cell::RefCell;
use std::fs;
use std::process::Command;

use troupe_bridge_python::env::{EnvCache, EnvProgress, EnvSpec};

fn steps(cache: &EnvCache, spec: &EnvSpec) -> Vec<EnvProgress> {
    let events = RefCell::new(Vec::new());
    cache
        .ensure(spec, &|e| {
            // Fetching uv happens once per cache and only where uv is missing.
            if !matches!(
                e,
                EnvProgress::Line(_) | EnvProgress::BootstrappingUv { .. }
            ) {
                events.borrow_mut().push(e);
            }
        })
        .expect("venv");
    events.into_inner()
}

#[test]
fn a_venv_without_its_marker_is_rebuilt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = EnvCache::new(tmp.path());
    let spec = EnvSpec::new(["six==1.16.0"]);
    let dir = cache
        .venvs_dir()
        .join(cache.key(&spec).expect("key").as_str());

    // A crash before the venv even existed properly.
    fs::create_dir_all(dir.join("lib")).expect("mkdir");
    fs::write(dir.join("leftover"), "crashed").expect("write");
    let first = steps(&cache, &spec);
    assert!(
        matches!(
            first.as_slice(),
            [
                EnvProgress::RemovingIncomplete { path },
                EnvProgress::Creating { .. },
                EnvProgress::Installing { count: 1 },
                EnvProgress::Done { .. },
            ] if *path == dir
        ),
        "{first:?}"
    );
    assert!(!dir.join("leftover").exists());

    // A crash after installing, before the marker was written.
    fs::remove_file(dir.join(".troupe-complete")).expect("remove marker");
    let second = steps(&cache, &spec);
    assert!(
        matches!(second.first(), Some(EnvProgress::RemovingIncomplete { .. }))
            && matches!(second.last(), Some(EnvProgress::Done { .. })),
        "{second:?}"
    );
    let out = Command::new(dir.join("bin/python"))
        .args(["-c", "import six; print(six.__version__)"])
        .output()
        .expect("python");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.16.0");
    assert!(matches!(
        steps(&cache, &spec).as_slice(),
        [EnvProgress::Reused { .. }]
    ));
}
