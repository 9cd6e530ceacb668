//! Row-less lines the harness prints after the table: systems skipped and why, and what a
//! system cannot do. They go to stderr as they happen too, so a long run shows them early.

use std::sync::{Mutex, PoisonError};

static NOTES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records `line` for the end of the run and shows it now.
pub(crate) fn note(line: String) {
    eprintln!("  {line}");
    NOTES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(line);
}

/// Records that `system` produced no rows in `scenario`, and why.
pub(crate) fn skip(scenario: &str, system: &str, why: &dyn std::fmt::Display) {
    note(format!("skip {scenario}/{system}: {why}"));
}

/// The notes recorded so far, emptying the list.
pub(crate) fn take() -> Vec<String> {
    std::mem::take(&mut *NOTES.lock().unwrap_or_else(PoisonError::into_inner))
}
