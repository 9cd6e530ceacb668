//! `nested-chain`: host -> extension -> host -> extension ... to depth 5, one sample per
//! whole chain.
//!
//! pyisolate: the host calls the extension's `down(5)`, which calls a host
//! `ProxiedSingleton`'s `down(4)`, which calls the extension again, down to depth 1; the
//! answer must be 5. The floors have no calls to nest: a depth-5 chain moves 10 one-way
//! messages strictly one after another, the same path as 5 sequential 64-byte round
//! trips, which is what they time per sample.

use std::time::Duration;

use serde_json::json;

use crate::systems::bridged::{Job, Lab};
use crate::systems::floor::{self, Link};
use crate::systems::{CrossProcess, Outcome, Series, TROUPE_BRIDGED, pyisolate};
use crate::{Effort, Measurement};

const DEPTH: usize = 5;
const FRAME: usize = 64;

struct NestedChain;

impl CrossProcess for NestedChain {
    const SCENARIO: &'static str = "nested-chain";

    fn floor<L: Link>(effort: Effort) -> Outcome {
        let n = effort.pick(2_000, 20_000);
        let sampler = floor::sequential::<L>(FRAME, DEPTH, n / 10)?;
        let series = Series::new(L::SYSTEM, FRAME, 1, n, sampler);
        Ok(vec![series.with("depth", DEPTH).with("hops", 2 * DEPTH)])
    }

    /// The slot for troupe's bridged extension host: a Python method that calls a host
    /// method that calls the extension again, to depth 5; one series (payload 0, extras
    /// `depth` and `hops`), a sample per whole chain.
    fn troupe_bridged(effort: Effort) -> Outcome {
        let n = effort.pick(1_000, 10_000);
        let lab = Lab::start()?;
        let job = Job::Nested {
            depth: DEPTH as i64,
        };
        lab.sample(job, n / 10)?;
        let series = Series::new(TROUPE_BRIDGED, 0, 1, n, lab.sampler(job));
        Ok(vec![series.with("depth", DEPTH).with("hops", 2 * DEPTH)])
    }

    fn pyisolate(effort: Effort) -> Outcome {
        let n = effort.pick(100, 1_000);
        let params = json!({ "depth": DEPTH, "n": n, "warmup": n / 10 });
        pyisolate::measure(Self::SCENARIO, params, Duration::from_secs(300))
    }
}

/// Runs the scenario.
pub(super) fn run(effort: Effort) -> Vec<Measurement> {
    NestedChain::run(effort)
}
