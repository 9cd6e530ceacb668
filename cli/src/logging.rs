//! What `troupe` prints of what happens: warnings, extensions' output (each line tagged with
//! its extension) and, with `-v`, troupe's own events, on stderr. `TROUPE_LOG` (or
//! `RUST_LOG`) takes a filter in `tracing`'s syntax and overrides the flags, e.g.
//! `TROUPE_LOG=troupe::extension=off` hides extensions' output.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The variables read for a filter, first found wins.
const FILTER_VARS: [&str; 2] = ["TROUPE_LOG", "RUST_LOG"];

/// Sets up the process's subscriber for `-v` given `verbose` times, or `--quiet`.
pub(crate) fn init(verbose: u8, quiet: bool) {
    let filter = FILTER_VARS
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter(verbose, quiet)));
    // A second init (tests in one process) keeps the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .compact()
        .try_init();
}

/// The filter the flags ask for.
fn default_filter(verbose: u8, quiet: bool) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        // zenoh's own warnings (gossip off, a reply after its query timed out) are noise
        // here: troupe reports what they cause as typed errors. `-v` shows them.
        (false, 0) => "warn,troupe::extension=info,zenoh=error,zenoh_transport=error",
        (false, 1) => "info",
        (false, _) => "info,troupe=debug,troupe_bridge_python=debug,troupe_pipeline=debug",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_choose_the_filter_and_every_one_parses() {
        for (verbose, quiet) in [(0, false), (1, false), (2, false), (0, true)] {
            let spec = default_filter(verbose, quiet);
            assert!(EnvFilter::try_new(spec).is_ok(), "{spec}");
        }
        assert_eq!(
            default_filter(0, false),
            "warn,troupe::extension=info,zenoh=error,zenoh_transport=error"
        );
        assert_eq!(default_filter(3, true), "error");
    }
}
