//! `cold-start`: from spawning an extension's process to its first answered call, with
//! every venv already built.
//!
//! The floors spawn the harness's own binary as a child, accept its connection (on a
//! thread with a deadline) and time one 64-byte round trip. pyisolate's driver creates an
//! `ExtensionManager`, loads the extension (its venv exists: one untimed start comes
//! first) and awaits one no-op call, then stops it.

use troupe_bridge_python::process::SandboxLevel;

use crate::systems::bridged::{Job, Lab};
use crate::systems::floor::{self, Link};
use crate::systems::{CrossProcess, Outcome, Series, TROUPE_BRIDGED, pyisolate};
use crate::{Effort, Measurement};

const FRAME: usize = 64;

struct ColdStart;

impl CrossProcess for ColdStart {
    const SCENARIO: &'static str = "cold-start";

    fn floor<L: Link>(effort: Effort) -> Outcome {
        let sampler = floor::cold_starts::<L>(FRAME)?;
        Ok(vec![Series::new(
            L::SYSTEM,
            FRAME,
            1,
            effort.pick(10, 50),
            sampler,
        )])
    }

    /// The slot for troupe's bridged extension host: spawn an extension whose venv is
    /// cached and time it to its first answered no-op call; one series (payload 0) per
    /// sandbox level (`default`, the default, and `off`), a sample per start.
    fn troupe_bridged(effort: Effort) -> Outcome {
        let lab = Lab::start()?;
        let mut series = Vec::new();
        for (sandbox, name) in [
            (SandboxLevel::Default, "default"),
            (SandboxLevel::Off, "off"),
        ] {
            let job = Job::ColdStart { sandbox };
            lab.sample(job, 1)?;
            let samples = effort.pick(10, 50);
            let one = Series::new(TROUPE_BRIDGED, 0, 1, samples, lab.sampler(job));
            series.push(one.with("venv", "cached").with("sandbox", name));
        }
        Ok(series)
    }

    fn pyisolate(effort: Effort) -> Outcome {
        pyisolate::measure_lifecycle(Self::SCENARIO, effort)
    }
}

/// Runs the scenario.
pub(super) fn run(effort: Effort) -> Vec<Measurement> {
    ColdStart::run(effort)
}
