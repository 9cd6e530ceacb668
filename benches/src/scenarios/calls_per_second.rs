//! `calls-per-second`: how many no-op calls a caller gets answered per second from another
//! process, with 1 and with 100 calls in flight.
//!
//! Each run makes a fixed number of calls; its time per call is one sample, and the row's
//! `calls_per_s` comes from the median run. The floors echo 64-byte frames (sent ahead up
//! to the window, one more per reply); pyisolate's driver runs as many coroutines as calls
//! in flight, each awaiting no-op calls in turn.

use std::time::Duration;

use serde_json::json;

use crate::systems::bridged::{Job, Lab};
use crate::systems::floor::{self, Link};
use crate::systems::{
    CrossProcess, Outcome, Series, TROUPE_BRIDGED, pyisolate, python_host, with_rate,
};
use crate::{Effort, Measurement};

const IN_FLIGHT: [usize; 2] = [1, 100];
const FRAME: usize = 64;

struct CallsPerSecond;

impl CrossProcess for CallsPerSecond {
    const SCENARIO: &'static str = "calls-per-second";

    fn floor<L: Link>(effort: Effort) -> Outcome {
        let (calls, runs) = effort.pick((5_000, 5), (50_000, 11));
        IN_FLIGHT
            .iter()
            .map(|&in_flight| {
                let sampler = floor::pipelined::<L>(FRAME, in_flight, calls)?;
                let series = Series::new(L::SYSTEM, FRAME, in_flight, runs, sampler);
                Ok(series.with("calls_per_run", calls))
            })
            .collect()
    }

    /// The slot for troupe's bridged extension host: a no-op Python method called with 1
    /// and 100 calls in flight; one series per `in_flight` as the floors' (payload 0 for
    /// a no-op), each sample the nanoseconds per call of one run.
    fn troupe_bridged(effort: Effort) -> Outcome {
        let (calls, runs) = effort.pick((5_000, 5), (50_000, 11));
        let lab = Lab::start()?;
        IN_FLIGHT
            .iter()
            .map(|&in_flight| {
                let job = Job::Flight { in_flight, calls };
                lab.sample(job, 1)?;
                let series = Series::new(TROUPE_BRIDGED, 0, in_flight, runs, lab.sampler(job));
                Ok(series.with("calls_per_run", calls))
            })
            .collect()
    }

    fn pyisolate(effort: Effort) -> Outcome {
        let (calls, runs) = effort.pick((1_000, 3), (4_000, 7));
        let params = json!({ "calls": calls, "runs": runs, "in_flights": IN_FLIGHT });
        pyisolate::measure(Self::SCENARIO, params, Duration::from_secs(300))
    }

    /// Awaited calls (`ext.aio.noop()`) from coroutines on one asyncio loop of a Python
    /// program, as many in flight as the other systems.
    fn troupe_python_host(effort: Effort) -> Option<Outcome> {
        let (calls, runs) = effort.pick((5_000, 5), (50_000, 11));
        let params = json!({ "calls": calls, "runs": runs, "in_flights": IN_FLIGHT });
        Some(python_host::measure(
            Self::SCENARIO,
            params,
            Duration::from_secs(300),
        ))
    }

    fn finish(row: Measurement) -> Measurement {
        with_rate(row)
    }
}

/// Runs the scenario.
pub(super) fn run(effort: Effort) -> Vec<Measurement> {
    CallsPerSecond::run(effort)
}
