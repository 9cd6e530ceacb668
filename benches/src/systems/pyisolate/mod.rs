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

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, Value};
use troupe_bridge_python::env::{EnvCache, EnvProgress, EnvSpec};

use super::driver::Driver;
use super::{Outcome, SystemError};
use crate::Effort;

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

/// Runs the driver for `scenario` with `params` (the scenario's counts), waiting at most
/// `deadline`, and turns its samples into rows.
pub(crate) fn measure(scenario: &str, params: Value, deadline: Duration) -> Outcome {
    let setup = setup()?;
    let mut request = match params {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    request.insert("version".into(), VERSION.into());
    request.insert(
        "venvs".into(),
        setup
            .dir
            .join("venvs")
            .to_string_lossy()
            .into_owned()
            .into(),
    );
    let driver = Driver {
        system: SYSTEM,
        python: &setup.python,
        bin: Some(&setup.bin),
        dir: &setup.dir,
        module: "troupe_bench_pyisolate",
    };
    driver.measure(scenario, request, deadline)
}

/// [`measure`] for `cold-start` and `restart`: each sample starts a process, so they take
/// few samples.
pub(crate) fn measure_lifecycle(scenario: &str, effort: Effort) -> Outcome {
    let params = serde_json::json!({ "n": effort.pick(3, 15) });
    measure(scenario, params, Duration::from_secs(300))
}
