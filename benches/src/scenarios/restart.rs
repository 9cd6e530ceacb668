//! `restart`: from an extension's crash to the first call answered by its replacement.
//!
//! Each sample starts when the caller sends the call that crashes the child (it exits at
//! once) and ends when a call to the new process is answered. The floors notice the death
//! through the transport, reap the child, spawn a new one and time a 64-byte round trip.
//! pyisolate does not restart a crashed extension: its driver catches the failed call,
//! calls `stop()` and lets the next call start a new process (the `restart` extra says so).

use crate::systems::bridged::{Job, Lab};
use crate::systems::floor::{self, Link};
use crate::systems::{CrossProcess, Outcome, Series, TROUPE_BRIDGED, pyisolate};
use crate::{Effort, Measurement};

const FRAME: usize = 64;

struct Restart;

impl CrossProcess for Restart {
    const SCENARIO: &'static str = "restart";

    fn floor<L: Link>(effort: Effort) -> Outcome {
        let sampler = floor::restarts::<L>(FRAME)?;
        let series = Series::new(L::SYSTEM, FRAME, 1, effort.pick(10, 50), sampler);
        Ok(vec![
            series.with("restart", "by the harness: respawn on EOF"),
        ])
    }

    /// The slot for troupe's bridged extension host: a method that kills its process,
    /// then the supervisor's restart, timed to the first answered no-op call; one series
    /// (payload 0), a sample per crash.
    fn troupe_bridged(effort: Effort) -> Outcome {
        let lab = Lab::start()?;
        lab.sample(Job::Restart, 1)?;
        let series = Series::new(
            TROUPE_BRIDGED,
            0,
            1,
            effort.pick(10, 50),
            lab.sampler(Job::Restart),
        );
        Ok(vec![
            series.with("restart", "by the supervisor, no backoff"),
        ])
    }

    fn pyisolate(effort: Effort) -> Outcome {
        pyisolate::measure_lifecycle(Self::SCENARIO, effort)
    }
}

/// Runs the scenario.
pub(super) fn run(effort: Effort) -> Vec<Measurement> {
    Restart::run(effort)
}
