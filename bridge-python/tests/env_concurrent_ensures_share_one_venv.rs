//! Threads and processes that ensure the same spec at once end up with one intact venv,
//! built once.

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;

use troupe_bridge_python::env::{EnvCache, EnvProgress, EnvSpec, Venv};

/// Set in the copies of this test binary that play the second and third host.
const CHILD_ROOT: &str = "TROUPE_ENV_TEST_CHILD_ROOT";
const PROCESS_TEST: &str = "processes_ensuring_one_spec_share_one_venv";

fn spec() -> EnvSpec {
    EnvSpec::new(["six==1.16.0", "packaging==24.1"])
}

/// Ensures `spec`, telling whether this call built the venv and whether it waited.
fn ensure(cache: &EnvCache, spec: &EnvSpec) -> (Venv, bool, bool) {
    let (built, waited) = (RefCell::new(false), RefCell::new(false));
    let venv = cache
        .ensure(spec, &|e| match e {
            EnvProgress::Done { .. } => *built.borrow_mut() = true,
            EnvProgress::Waiting { .. } => *waited.borrow_mut() = true,
            _ => {}
        })
        .expect("venv");
    (venv, built.into_inner(), waited.into_inner())
}

fn assert_intact(venv: &Venv) {
    let out = Command::new(&venv.python)
        .args([
            "-c",
            "import six, packaging; print(six.__version__, packaging.__version__)",
        ])
        .output()
        .expect("python");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.16.0 24.1");
}

#[test]
fn threads_ensuring_one_spec_share_one_venv() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let shared = EnvCache::new(tmp.path());
    let separate = EnvCache::new(tmp.path());
    let spec = spec();
    let results: Vec<(Venv, bool, bool)> = thread::scope(|s| {
        let handles = [&shared, &shared, &separate].map(|cache| {
            let spec = &spec;
            s.spawn(move || ensure(cache, spec))
        });
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let builds = results.iter().filter(|(_, built, _)| *built).count();
    assert_eq!(builds, 1, "exactly one thread builds");
    assert!(results.iter().all(|(venv, _, _)| *venv == results[0].0));
    let waited = results.iter().filter(|(_, _, waited)| *waited).count();
    eprintln!("threads: 1 built, {waited} waited for it");
    assert_intact(&results[0].0);
    let listed = shared.list().expect("list");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].complete);
}

#[test]
fn processes_ensuring_one_spec_share_one_venv() {
    if let Some(root) = std::env::var_os(CHILD_ROOT) {
        let (venv, built, waited) = ensure(&EnvCache::new(root), &spec());
        println!("CHILD {built} {waited} {}", venv.root.display());
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", PROCESS_TEST, "--nocapture", "--test-threads=1"])
                .env(CHILD_ROOT, tmp.path())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn a second host")
        })
        .collect();
    let reports: Vec<(bool, bool, PathBuf)> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().expect("child");
            assert!(out.status.success(), "child failed: {:?}", out.status);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let line = stdout
                .lines()
                .find_map(|l| l.split_once("CHILD ").map(|(_, report)| report))
                .unwrap_or_else(|| panic!("no report in {stdout}"))
                .to_owned();
            let mut parts = line.splitn(3, ' ');
            let mut flag = || parts.next() == Some("true");
            let (built, waited) = (flag(), flag());
            (
                built,
                waited,
                PathBuf::from(parts.next().unwrap_or_default()),
            )
        })
        .collect();
    assert_eq!(
        reports.iter().filter(|(built, _, _)| *built).count(),
        1,
        "exactly one process builds: {reports:?}"
    );
    assert_eq!(reports[0].2, reports[1].2);
    let waited = reports.iter().filter(|(_, waited, _)| *waited).count();
    eprintln!("processes: 1 built, {waited} waited for it");

    let (venv, built, _) = ensure(&EnvCache::new(tmp.path()), &spec());
    assert!(!built);
    assert_eq!(venv.root, reports[0].2);
    assert_intact(&venv);
}
