//! `pyisolate`: pyisolate 0.10.2 from PyPI, the Python system troupe is compared with,
//! measured through its documented API by an embedded driver
//! (`troupe_bench_pyisolate.py`).
//!
//! Once per run the harness makes a venv holding pyisolate with troupe's own venv cache
//! ([`EnvCache::from_env`]: `$TROUPE_CACHE_DIR`, else the XDG cache) and writes the driver
//! and its extension package to `<cache>/bench/pyisolate/`; pyisolate's own extension
//! venvs go to `<cache>/bench/pyisolate/venvs/`. Each scenario runs the driver once; it
//! writes raw samples to a JSON file, and the rows are made here with the same statistics
//! as every other row. When the venv cannot be built (no network) the set-up error is
//! reported once and every pyisolate measurement of the run is skipped.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};
use troupe_bridge_python::env::{EnvCache, EnvProgress, EnvSpec};

use super::{Outcome, Series, SystemError};
use crate::{Effort, notes};

/// The system's name in rows.
pub(crate) const SYSTEM: &str = "pyisolate";

/// The version measured.
const VERSION: &str = "0.10.2";

/// The driver module, written next to the extension package.
const DRIVER: &str = include_str!("troupe_bench_pyisolate.py");
const DRIVER_FILE: &str = "troupe_bench_pyisolate.py";

/// The extension package pyisolate loads (`module_path`): its class lives in the driver,
/// which the child can import; this file only has to exist.
const EXTENSION_INIT: &str = "\"\"\"troupe bench: pyisolate's extension package.\"\"\"\n";

/// Lines of the driver's output quoted when it fails.
const TAIL_LINES: usize = 20;

/// A ready pyisolate installation.
#[derive(Debug)]
struct Setup {
    /// The venv's interpreter.
    python: PathBuf,
    /// The venv's scripts directory (holds the `uv` pyisolate calls).
    bin: PathBuf,
    /// Where the driver, its logs and results live.
    dir: PathBuf,
}

static SETUP: OnceLock<Result<Setup, String>> = OnceLock::new();

/// The installation, made on first use; a failure is returned in full the first time,
/// then as [`SystemError::Earlier`].
fn setup() -> Result<&'static Setup, SystemError> {
    let mut first = None;
    let ready = SETUP.get_or_init(|| {
        prepare().map_err(|error| {
            let text = error.to_string();
            first = Some(error);
            text
        })
    });
    match ready {
        Ok(setup) => Ok(setup),
        Err(text) => Err(first.unwrap_or_else(|| {
            SystemError::Earlier(text.lines().next().unwrap_or_default().to_owned())
        })),
    }
}

fn show_progress(step: EnvProgress) {
    if let Some(line) = step.summary() {
        eprintln!("    pyisolate: {line}");
    }
}

fn prepare() -> Result<Setup, SystemError> {
    let cache = EnvCache::from_env()?;
    // numpy for `array-handoff`; the child sees the host venv's site-packages.
    let spec = EnvSpec::new([format!("pyisolate=={VERSION}"), "numpy>=1.26,<3".to_owned()])
        .with_label("pyisolate (bench)");
    let venv = cache.ensure(&spec, &show_progress)?;
    let dir = cache.root().join("bench").join(SYSTEM);
    let package = dir.join("noop_ext");
    fs::create_dir_all(&package).map_err(SystemError::io("creating the driver's directory"))?;
    write_if_changed(&dir.join(DRIVER_FILE), DRIVER)?;
    write_if_changed(&package.join("__init__.py"), EXTENSION_INIT)?;
    let bin = venv
        .python
        .parent()
        .map_or_else(|| venv.root.join("bin"), Path::to_path_buf);
    Ok(Setup {
        python: venv.python,
        bin,
        dir,
    })
}

fn write_if_changed(path: &Path, text: &str) -> Result<(), SystemError> {
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    fs::write(path, text).map_err(SystemError::io("writing the driver"))
}

/// One row as the driver writes it.
#[derive(Debug, Deserialize)]
struct DriverRow {
    payload_bytes: u64,
    in_flight: u64,
    samples_ns: Vec<u64>,
    #[serde(default)]
    extra: Map<String, Value>,
}

/// The driver's results file.
#[derive(Debug, Deserialize)]
struct DriverOutput {
    rows: Vec<DriverRow>,
    #[serde(default)]
    notes: Vec<String>,
}

/// Runs the driver for `scenario` with `params` (the scenario's counts), waiting at most
/// `deadline`, and turns its samples into rows.
pub(crate) fn measure(scenario: &str, params: Value, deadline: Duration) -> Outcome {
    let setup = setup()?;
    let results = setup.dir.join(format!("{scenario}.json"));
    let log = setup.dir.join(format!("{scenario}.log"));
    let _ = fs::remove_file(&results);
    let mut request = match params {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    request.insert("scenario".into(), scenario.into());
    request.insert("version".into(), VERSION.into());
    request.insert(
        "results".into(),
        results.to_string_lossy().into_owned().into(),
    );
    request.insert(
        "venvs".into(),
        setup
            .dir
            .join("venvs")
            .to_string_lossy()
            .into_owned()
            .into(),
    );
    run_driver(setup, &Value::Object(request).to_string(), &log, deadline)?;

    let text = fs::read_to_string(&results).map_err(|e| SystemError::Results {
        path: results.clone(),
        detail: e.to_string(),
    })?;
    let output: DriverOutput = serde_json::from_str(&text).map_err(|e| SystemError::Results {
        path: results.clone(),
        detail: e.to_string(),
    })?;
    for note in output.notes {
        notes::note(format!("note {scenario}/{SYSTEM}: {note}"));
    }
    Ok(output
        .rows
        .into_iter()
        .map(|r| Series::measured(SYSTEM, r.payload_bytes, r.in_flight, r.samples_ns, r.extra))
        .collect())
}

/// [`measure`] for `cold-start` and `restart`: each sample starts a process, so they take
/// few samples.
pub(crate) fn measure_lifecycle(scenario: &str, effort: Effort) -> Outcome {
    let params = serde_json::json!({ "n": effort.pick(3, 15) });
    measure(scenario, params, Duration::from_secs(300))
}

fn run_driver(
    setup: &Setup,
    request: &str,
    log: &Path,
    deadline: Duration,
) -> Result<(), SystemError> {
    let out = File::create(log).map_err(SystemError::io("creating the driver's log"))?;
    let err = out
        .try_clone()
        .map_err(SystemError::io("creating the driver's log"))?;
    let path = match std::env::var_os("PATH") {
        Some(path) => {
            let dirs = std::iter::once(setup.bin.clone()).chain(std::env::split_paths(&path));
            std::env::join_paths(dirs).unwrap_or(path)
        }
        None => setup.bin.clone().into_os_string(),
    };
    let mut child = Command::new(&setup.python)
        .args([
            "-c",
            "import troupe_bench_pyisolate as d; d.main()",
            request,
        ])
        .current_dir(&setup.dir)
        .env("PYTHONPATH", &setup.dir)
        .env("PATH", path)
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("VIRTUAL_ENV")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| SystemError::Spawn {
            what: setup.python.display().to_string(),
            source,
        })?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(SystemError::io("watching the driver"))?
        {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SystemError::Deadline(deadline));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if status.success() {
        return Ok(());
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    Err(SystemError::Driver {
        status,
        log: log.to_owned(),
        tail,
    })
}
