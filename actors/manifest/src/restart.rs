//! `restart = { policy, max_restarts, within_s, backoff_initial_ms, backoff_max_ms }`, for
//! extensions and pipeline nodes alike.

use std::time::Duration;

use troupe_runtime::supervision::{Backoff, RestartLimit, RestartPolicy, RestartSpec};

use crate::document::{Document, KeyPath};
use crate::error::{ManifestError, ManifestErrorKind};
use crate::raw::{RawRestart, RawRestartPolicy};

/// The longest restart window a manifest may set (a day).
const MAX_WITHIN_S: f64 = 86_400.0;

/// The restart spec `raw` describes, keys left out taking [`RestartSpec::default`]'s values.
pub(crate) fn restart_spec(
    raw: &RawRestart,
    path: &KeyPath,
    document: &Document,
) -> Result<RestartSpec, ManifestError> {
    let invalid = |key: &str, reason: String| {
        document.error(&path.key(key), ManifestErrorKind::Invalid { reason })
    };
    let defaults = RestartSpec::default();
    let policy = match raw.policy {
        None => defaults.policy,
        Some(RawRestartPolicy::Permanent) => RestartPolicy::Permanent,
        Some(RawRestartPolicy::Transient) => RestartPolicy::Transient,
        Some(RawRestartPolicy::Temporary) => RestartPolicy::Temporary,
    };
    let within = match raw.within_s {
        None => defaults.limit.within,
        Some(s) if s > 0.0 && s <= MAX_WITHIN_S => Duration::from_secs_f64(s),
        Some(s) => {
            return Err(invalid(
                "within_s",
                format!("must be more than 0 and at most {MAX_WITHIN_S}, got {s}"),
            ));
        }
    };
    let initial = raw
        .backoff_initial_ms
        .map_or(defaults.backoff.initial, Duration::from_millis);
    let max = raw
        .backoff_max_ms
        .map_or(defaults.backoff.max.max(initial), Duration::from_millis);
    if max < initial {
        return Err(invalid(
            "backoff_max_ms",
            format!(
                "must be at least backoff_initial_ms ({} ms), got {} ms",
                initial.as_millis(),
                max.as_millis()
            ),
        ));
    }
    Ok(RestartSpec {
        policy,
        limit: RestartLimit {
            max_restarts: raw.max_restarts.unwrap_or(defaults.limit.max_restarts),
            within,
        },
        backoff: Backoff {
            initial,
            max,
            ..defaults.backoff
        },
    })
}
