//! troupe's benchmark harness: one binary, reachable as `troupe bench` and `cargo bench`.
//!
//! Each scenario measures troupe beside its baselines in the same run (these machines are
//! noisy: compare ratios within one run, not across runs). Rows go to a table on stdout and,
//! with `--json FILE`, to a JSON array of objects with the fields `scenario`, `system`,
//! `payload_bytes`, `in_flight`, `n`, `median_ns`, `p99_ns` plus scenario-specific extras.

#![warn(missing_docs, unreachable_pub)]

mod measure;
mod notes;
pub mod scenarios;
mod systems;
mod table;

use std::path::PathBuf;
use std::time::Instant;

pub use measure::{Measurement, percentile, ratio};
use thiserror::Error;

/// Command-line options of the harness.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BenchArgs {
    /// Fewer samples: the whole run finishes in under a minute.
    #[arg(long)]
    pub quick: bool,
    /// Also write the rows as a JSON array to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Run only these scenarios (default: all). Names: see `--list`.
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    pub list: bool,
}

/// Why the harness failed.
#[derive(Debug, Error)]
pub enum BenchError {
    /// A scenario name that does not exist.
    #[error("unknown scenario {0:?}; known: {known}", known = scenarios::NAMES.join(", "))]
    UnknownScenario(String),
    /// Writing the JSON file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A scenario could not run (its setup failed).
    #[error("scenario {scenario} failed: {reason}")]
    Scenario {
        /// Which.
        scenario: &'static str,
        /// Why.
        reason: String,
    },
}

/// How many samples a scenario takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// `--quick`.
    Quick,
    /// The default.
    Full,
}

impl Effort {
    /// `quick` in quick mode, `full` otherwise.
    pub fn pick<T>(self, quick: T, full: T) -> T {
        match self {
            Effort::Quick => quick,
            Effort::Full => full,
        }
    }
}

/// If this process is a child the harness spawned (a floor's echo process: the harness
/// re-executes its own binary with `TROUPE_BENCH_CHILD` set), runs the child and exits;
/// otherwise returns at once. Every entry point that can run the harness calls this first
/// thing, before parsing arguments. [`run`] calls it too, as a fallback.
pub fn child_main_if_requested() {
    systems::child_main_if_requested();
}

/// Runs the selected scenarios, prints the table and the notes (systems skipped and why),
/// writes the JSON; returns the rows.
pub fn run(args: &BenchArgs) -> Result<Vec<Measurement>, BenchError> {
    child_main_if_requested();
    if args.list {
        for name in scenarios::NAMES {
            println!("{name}");
        }
        return Ok(Vec::new());
    }
    for name in &args.scenarios {
        if !scenarios::NAMES.contains(&name.as_str()) {
            return Err(BenchError::UnknownScenario(name.clone()));
        }
    }
    let effort = if args.quick {
        Effort::Quick
    } else {
        Effort::Full
    };
    let started = Instant::now();
    let mut rows = Vec::new();
    for name in scenarios::NAMES {
        if args.scenarios.is_empty() || args.scenarios.iter().any(|s| s == name) {
            eprintln!("running {name} ...");
            rows.extend(scenarios::run(name, effort)?);
        }
    }
    print!("{}", table::render(&rows));
    let notes = notes::take();
    if !notes.is_empty() {
        println!("notes:");
        for line in notes {
            println!("  {line}");
        }
    }
    println!(
        "({} rows in {:.1} s)",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&rows).expect("rows serialize");
        std::fs::write(path, json + "\n").map_err(|source| BenchError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(rows)
}
