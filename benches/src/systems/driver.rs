//! Python drivers: a system measured by a Python program of its own (pyisolate through its
//! API, troupe's Python host through `troupe.Host`). The harness runs the driver module
//! with a JSON request (the scenario, its counts, where to write); the driver writes raw
//! samples to a JSON file, and the rows are made here with the same statistics as every
//! other row.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Outcome, Series, SystemError};
use crate::notes;

/// Lines of the driver's output quoted when it fails.
const TAIL_LINES: usize = 20;

/// One row as the driver writes it.
#[derive(Debug, Deserialize)]
struct DriverRow {
    payload_bytes: u64,
    in_flight: u64,
    samples_ns: Vec<u64>,
    #[serde(default)]
    extra: Map<String, Value>,
}

/// The driver's results file: `{"rows": [...], "notes": [...]}`.
#[derive(Debug, Deserialize)]
struct DriverOutput {
    rows: Vec<DriverRow>,
    #[serde(default)]
    notes: Vec<String>,
}

/// A driver ready to run.
pub(crate) struct Driver<'a> {
    /// The system its rows are of.
    pub(crate) system: &'static str,
    /// The interpreter that runs it.
    pub(crate) python: &'a Path,
    /// A directory put first on `PATH` (a venv's scripts), if any.
    pub(crate) bin: Option<&'a Path>,
    /// Where the driver module lies and its logs and results go.
    pub(crate) dir: &'a Path,
    /// The module, with a `main()` reading the request from `argv[1]`.
    pub(crate) module: &'static str,
}

impl Driver<'_> {
    /// Runs the driver for `scenario` with `request` (the scenario's counts; `scenario`
    /// and `results` are added), waiting at most `deadline`, and turns its samples into
    /// rows.
    pub(crate) fn measure(
        &self,
        scenario: &str,
        mut request: Map<String, Value>,
        deadline: Duration,
    ) -> Outcome {
        let results = self.dir.join(format!("{scenario}.json"));
        let log = self.dir.join(format!("{scenario}.log"));
        let _ = fs::remove_file(&results);
        request.insert("scenario".into(), scenario.into());
        request.insert(
            "results".into(),
            results.to_string_lossy().into_owned().into(),
        );
        self.run(&Value::Object(request).to_string(), &log, deadline)?;
        let text = fs::read_to_string(&results).map_err(|e| SystemError::Results {
            path: results.clone(),
            detail: e.to_string(),
        })?;
        let output: DriverOutput =
            serde_json::from_str(&text).map_err(|e| SystemError::Results {
                path: results.clone(),
                detail: e.to_string(),
            })?;
        for note in output.notes {
            notes::note(format!("note {scenario}/{}: {note}", self.system));
        }
        Ok(output
            .rows
            .into_iter()
            .map(|r| {
                Series::measured(
                    self.system,
                    r.payload_bytes,
                    r.in_flight,
                    r.samples_ns,
                    r.extra,
                )
            })
            .collect())
    }

    fn run(&self, request: &str, log: &Path, deadline: Duration) -> Result<(), SystemError> {
        let out = File::create(log).map_err(SystemError::io("creating the driver's log"))?;
        let err = out
            .try_clone()
            .map_err(SystemError::io("creating the driver's log"))?;
        let mut command = Command::new(self.python);
        if let Some(bin) = self.bin {
            let path = match std::env::var_os("PATH") {
                Some(path) => {
                    let dirs = std::iter::once(bin.to_owned()).chain(std::env::split_paths(&path));
                    std::env::join_paths(dirs).unwrap_or(path)
                }
                None => bin.as_os_str().to_owned(),
            };
            command.env("PATH", path).env_remove("VIRTUAL_ENV");
        }
        let mut child = command
            .args([
                "-c",
                &format!("import {} as d; d.main()", self.module),
                request,
            ])
            .current_dir(self.dir)
            .env("PYTHONPATH", self.dir)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| SystemError::Spawn {
                what: self.python.display().to_string(),
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
}
