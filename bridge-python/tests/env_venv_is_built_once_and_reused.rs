//! A venv is built once per distinct spec, then handed out again without running anything.

use std::cell::RefCell;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use troupe_bridge_python::env::{EnvCache, EnvProgress, EnvSpec, InstallerKind};

fn python_says(python: &Path, code: &str) -> Option<String> {
    let out = Command::new(python).args(["-c", code]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `ensure`, returning the venv and the progress events other than output lines.
fn ensure(
    cache: &EnvCache,
    spec: &EnvSpec,
) -> (troupe_bridge_python::Venv, Vec<EnvProgress>, usize) {
    let events = RefCell::new(Vec::new());
    let venv = cache
        .ensure(spec, &|e| events.borrow_mut().push(e))
        .expect("venv");
    let events = events.into_inner();
    let lines = events
        .iter()
        .filter(|e| matches!(e, EnvProgress::Line(_)))
        .count();
    // Fetching uv happens once per cache and only where uv is missing.
    let steps = events
        .into_iter()
        .filter(|e| {
            !matches!(
                e,
                EnvProgress::Line(_) | EnvProgress::BootstrappingUv { .. }
            )
        })
        .collect();
    (venv, steps, lines)
}

#[test]
fn a_venv_is_built_once_then_reused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = EnvCache::new(tmp.path());
    let spec = EnvSpec::new(["six==1.16.0"]);

    let started = Instant::now();
    let (venv, steps, lines) = ensure(&cache, &spec);
    let first = started.elapsed();
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
    assert!(lines > 0, "the installer's output reaches the callback");
    assert_eq!(venv.root, cache.venvs_dir().join(venv.key.as_str()));
    assert!(venv.root.join(".troupe-complete").is_file());
    assert_eq!(
        python_says(&venv.python, "import six; print(six.__version__)").as_deref(),
        Some("1.16.0")
    );

    // The same cache, then another one on the same root (another host process).
    for cache in [&cache, &EnvCache::new(tmp.path())] {
        let started = Instant::now();
        let (again, steps, lines) = ensure(cache, &spec);
        let reuse = started.elapsed();
        assert_eq!(again, venv);
        assert_eq!(
            steps,
            [EnvProgress::Reused {
                key: venv.key.clone()
            }]
        );
        assert_eq!(lines, 0, "no installer ran");
        eprintln!("first build with uv {first:?}, reuse {reuse:?}");
    }
}

#[test]
fn spelling_shares_a_venv_and_contents_do_not() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = EnvCache::new(tmp.path());
    let key = |deps: &[&str], system_site_packages: bool| {
        let spec =
            EnvSpec::new(deps.iter().copied()).with_system_site_packages(system_site_packages);
        cache.key(&spec).expect("key")
    };
    let base = key(&["six==1.16.0", "packaging"], false);
    assert_eq!(
        base,
        key(&["  Packaging", "six == 1.16.0", "Six==1.16.0 "], false)
    );
    assert_ne!(base, key(&["six==1.16.0"], false));
    assert_ne!(base, key(&["six==1.16.0", "packaging"], true));

    let (new_six, _, _) = ensure(&cache, &EnvSpec::new(["six==1.16.0"]));
    let (old_six, _, _) = ensure(&cache, &EnvSpec::new(["six==1.15.0"]));
    assert_ne!(new_six.root, old_six.root);
    let version = |python: &Path| python_says(python, "import six; print(six.__version__)");
    assert_eq!(version(&new_six.python).as_deref(), Some("1.16.0"));
    assert_eq!(version(&old_six.python).as_deref(), Some("1.15.0"));
}

#[test]
fn system_site_packages_without_dependencies_installs_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = EnvCache::new(tmp.path());

    let (open, steps, _) = ensure(&cache, &EnvSpec::default().with_system_site_packages(true));
    assert!(
        matches!(
            steps.as_slice(),
            [EnvProgress::Creating { .. }, EnvProgress::Done { .. }]
        ),
        "{steps:?}"
    );
    let (closed, _, _) = ensure(&cache, &EnvSpec::default());
    assert_ne!(open.root, closed.root);
    // pip lives in the base interpreter's site-packages, never in a uv-made venv.
    assert!(python_says(&open.python, "import pip").is_some());
    assert!(python_says(&closed.python, "import pip").is_none());
}
