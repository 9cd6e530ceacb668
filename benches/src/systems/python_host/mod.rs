//! `troupe-python-host`: the same calls as `troupe-bridged`, made from a Python program
//! through the `troupe` package (`troupe.Host`), by an embedded driver
//! (`troupe_bench_python_host.py`) calling the extension `troupe-bridged` measures.
//!
//! The interpreter is `$TROUPE_PYTHON`, which must have the package installed (a release
//! build: `scripts/bench-python-host` builds one and runs the bench with it); without it
//! the system is skipped with a note saying so.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};
use troupe_bridge_python::env::EnvCache;

use super::driver::Driver;
use super::{Outcome, SystemError};

/// The system's name in rows.
pub(crate) const SYSTEM: &str = "troupe-python-host";

/// The interpreter's variable.
const PYTHON_ENV: &str = "TROUPE_PYTHON";

const DRIVER: &str = include_str!("troupe_bench_python_host.py");
const EXTENSION: &str = include_str!("../bridged/troupe_bench_ext.py");

/// Runs the driver for `scenario` with `params` (the scenario's counts), waiting at most
/// `deadline`, and turns its samples into rows.
pub(crate) fn measure(scenario: &str, params: Value, deadline: Duration) -> Outcome {
    let python = std::env::var_os(PYTHON_ENV).map(PathBuf::from).ok_or_else(|| {
        SystemError::Unsupported(format!(
            "set {PYTHON_ENV} to a Python with the troupe package installed (scripts/bench-python-host does)"
        ))
    })?;
    let dir = EnvCache::from_env()?.root().join("bench").join(SYSTEM);
    fs::create_dir_all(&dir).map_err(SystemError::io("creating the driver's directory"))?;
    for (file, text) in [
        ("troupe_bench_python_host.py", DRIVER),
        ("troupe_bench_ext.py", EXTENSION),
    ] {
        if fs::read_to_string(dir.join(file)).is_ok_and(|old| old == text) {
            continue;
        }
        fs::write(dir.join(file), text).map_err(SystemError::io("writing the driver"))?;
    }
    let request = match params {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let driver = Driver {
        system: SYSTEM,
        python: &python,
        bin: None,
        dir: &dir,
        module: "troupe_bench_python_host",
    };
    driver.measure(scenario, request, deadline)
}
