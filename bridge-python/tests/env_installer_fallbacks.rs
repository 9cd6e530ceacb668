//! Without a `uv` to find, troupe installs its own once; without even that, pip builds.

use std::cell::RefCell;
use std::process::Command;
use std::time::Instant;

use troupe_bridge_python::env::{
    EnvCache, EnvProgress, EnvSpec, InstallerChoice, InstallerKind, Venv,
};

fn ensure(cache: &EnvCache, spec: &EnvSpec) -> (Venv, Vec<EnvProgress>) {
    let events = RefCell::new(Vec::new());
    let venv = cache
        .ensure(spec, &|e| {
            if !matches!(e, EnvProgress::Line(_)) {
                events.borrow_mut().push(e);
            }
        })
        .expect("venv");
    (venv, events.into_inner())
}

fn six_version(venv: &Venv) -> String {
    let out = Command::new(&venv.python)
        .args(["-c", "import six; print(six.__version__)"])
        .output()
        .expect("python");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_bootstrapped_uv_is_installed_once_and_builds_venvs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = EnvCache::new(tmp.path()).with_installer(InstallerChoice::Bootstrap);
    let started = Instant::now();
    let (venv, steps) = ensure(&cache, &EnvSpec::new(["six==1.16.0"]));
    eprintln!("bootstrap uv + first build {:?}", started.elapsed());
    assert!(
        matches!(
            steps.as_slice(),
            [
                EnvProgress::BootstrappingUv { .. },
                EnvProgress::Creating {
                    installer: InstallerKind::Uv,
                    ..
                },
                EnvProgress::Installing { count: 1 },
                EnvProgress::Done { .. },
            ]
        ),
        "{steps:?}"
    );
    assert!(tmp.path().join("tools/uv-venv/bin/uv").is_file());
    assert_eq!(six_version(&venv), "1.16.0");

    // Another host on the same cache finds troupe's uv ready.
    let other = EnvCache::new(tmp.path()).with_installer(InstallerChoice::Bootstrap);
    let started = Instant::now();
    let (_, steps) = ensure(&other, &EnvSpec::new(["six==1.15.0"]));
    eprintln!("build with the bootstrapped uv {:?}", started.elapsed());
    assert!(
        matches!(
            steps.as_slice(),
            [
                EnvProgress::Creating {
                    installer: InstallerKind::Uv,
                    ..
                },
                EnvProgress::Installing { count: 1 },
                EnvProgress::Done { .. },
            ]
        ),
        "{steps:?}"
    );
}

#[test]
fn pip_builds_venvs_too() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = EnvCache::new(tmp.path()).with_installer(InstallerChoice::Pip);
    let started = Instant::now();
    let (venv, steps) = ensure(&cache, &EnvSpec::new(["six==1.16.0"]));
    eprintln!("first build with pip {:?}", started.elapsed());
    assert!(
        matches!(
            steps.first(),
            Some(EnvProgress::Creating {
                installer: InstallerKind::Pip,
                ..
            })
        ),
        "{steps:?}"
    );
    assert_eq!(six_version(&venv), "1.16.0");
    let listed = cache.list().expect("list");
    assert!(
        listed[0].packages.iter().any(|p| p == "six==1.16.0"),
        "{:?}",
        listed[0].packages
    );
}
