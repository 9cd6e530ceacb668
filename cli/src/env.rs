//! `troupe env list` / `troupe env clean`: the venv cache of Python extensions.

use std::time::{Duration, SystemTime};

use troupe_bridge_python::env::{CachedEnv, EnvCache};

use crate::error::CliError;

/// The `troupe env` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum EnvCommand {
    /// List the cached venvs: key, state, size, interpreter, last use, dependencies.
    List,
    /// Delete cached venvs: by default those left incomplete by a crashed build.
    Clean(CleanArgs),
}

/// What `troupe env clean` deletes.
#[derive(Debug, clap::Args)]
pub(crate) struct CleanArgs {
    /// Delete every venv (running extensions using one break).
    #[arg(long, conflicts_with = "unused_days")]
    all: bool,
    /// Also delete complete venvs not used for this many days.
    #[arg(long = "unused-for", value_name = "DAYS")]
    unused_days: Option<u64>,
}

/// Runs an `env` subcommand on the cache at its default root.
pub(crate) fn env(command: &EnvCommand) -> Result<(), CliError> {
    let cache = EnvCache::from_env()?;
    match command {
        EnvCommand::List => {
            let envs = cache.list()?;
            println!("cache: {}", cache.root().display());
            if envs.is_empty() {
                println!("no venvs");
            }
            for env in &envs {
                println!("{}", describe(env));
            }
        }
        EnvCommand::Clean(args) => {
            let now = SystemTime::now();
            let unused_for = args.unused_days.map(|d| Duration::from_secs(d * 86_400));
            let removed = cache.clean(|env| {
                args.all
                    || !env.complete
                    || unused_for.is_some_and(|limit| age(env.last_used, now) > Some(limit))
            })?;
            let bytes: u64 = removed.iter().map(|env| env.size_bytes).sum();
            for env in &removed {
                println!("removed {}", env.key);
            }
            println!("{} venvs removed, {} freed", removed.len(), size(bytes));
        }
    }
    Ok(())
}

fn describe(env: &CachedEnv) -> String {
    let state = if env.complete { "ready" } else { "incomplete" };
    let used = match age(env.last_used, SystemTime::now()) {
        Some(age) => format!("used {} ago", duration(age)),
        None => "never used".to_owned(),
    };
    format!(
        "{}  {state:<10}  {:>9}  python {:<8}  {used:<16}  {}",
        env.key,
        size(env.size_bytes),
        env.python_version.as_deref().unwrap_or("-"),
        if env.dependencies.is_empty() {
            "(no dependencies)".to_owned()
        } else {
            env.dependencies.join(" ")
        }
    )
}

fn age(when: Option<SystemTime>, now: SystemTime) -> Option<Duration> {
    when.and_then(|t| now.duration_since(t).ok())
}

fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m", s / 60),
        3_600..86_400 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

fn size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    format!("{:.1} MiB", bytes as f64 / MIB)
}
