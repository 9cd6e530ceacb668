//! The runner of the cross-process scenarios.
//!
//! A scenario implements [`CrossProcess`] with one function per system. Each function
//! *opens* its rows ([`Series`]: spawns and warms what it needs) and returns them, or a
//! [`SystemError`] that becomes a row-less `skip` note. The runner then takes the samples
//! in [`ROUNDS`] rounds, every open row in turn in each round, so that slow drifts of the
//! machine hit the floors and troupe alike. pyisolate's driver measures in one block
//! before the rounds (its rows cannot be interleaved).
//!
//! Placement matters more than drift on these 2-core VMs: a ping-pong whose two processes
//! share a core takes ~3.5 us per round trip, one whose processes sit on different cores
//! ~30 us per wake-up, and the scheduler picks per process pair, so one floor row can
//! read 4 us and its neighbour 60 us in the same run. `taskset -c 0 <harness>` puts every
//! process on one core and makes the floors steady (and pyisolate faster, too).

use serde_json::{Map, Value};

use super::floor::Link;
use super::ipc_floor::IpcLink;
use super::uds_floor::UdsLink;
use super::{SystemError, TROUPE_BRIDGED, pyisolate, python_host};
use crate::{Effort, Measurement, notes};

/// How many rounds the samples of each row are spread over.
pub(crate) const ROUNDS: usize = 10;

/// The system every cross-process row is compared with (`ratio_to_ipc_floor`).
pub(crate) const RATIO_BASE: &str = "ipc-floor";

/// Takes `n` more samples of one row, in nanoseconds. It owns whatever it measures (a
/// child, a connection, an actix system) and releases it when dropped.
pub(crate) type Sampler = Box<dyn FnMut(usize) -> Result<Vec<u64>, SystemError>>;

/// One row being measured: what it is, how many samples it wants, and how to take them.
pub(crate) struct Series {
    system: &'static str,
    payload_bytes: u64,
    in_flight: u64,
    n: usize,
    extra: Map<String, Value>,
    sampler: Sampler,
    samples: Vec<u64>,
}

impl Series {
    /// A row of `system` that wants `n` samples from `sampler`.
    pub(crate) fn new(
        system: &'static str,
        payload_bytes: usize,
        in_flight: usize,
        n: usize,
        sampler: Sampler,
    ) -> Series {
        Series {
            system,
            payload_bytes: payload_bytes as u64,
            in_flight: in_flight as u64,
            n,
            extra: Map::new(),
            sampler,
            samples: Vec::with_capacity(n),
        }
    }

    /// A row whose samples were all taken already (pyisolate's driver measures in one
    /// block); the rounds only collect them.
    pub(crate) fn measured(
        system: &'static str,
        payload_bytes: u64,
        in_flight: u64,
        samples: Vec<u64>,
        extra: Map<String, Value>,
    ) -> Series {
        let n = samples.len();
        let mut pending = samples.into_iter();
        Series {
            system,
            payload_bytes,
            in_flight,
            n,
            extra,
            sampler: Box::new(move |k| Ok(pending.by_ref().take(k).collect())),
            samples: Vec::with_capacity(n),
        }
    }

    /// Adds a field to the row.
    pub(crate) fn with(mut self, key: &str, value: impl Into<Value>) -> Series {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// Takes all its samples at once (no rounds) and makes its row: for rows measured
    /// outside the harness's rounds (pyisolate's driver).
    pub(crate) fn collect(mut self, scenario: &str) -> Result<Measurement, SystemError> {
        let samples = (self.sampler)(self.n)?;
        self.samples.extend(samples);
        Ok(self.into_row(scenario))
    }

    fn into_row(mut self, scenario: &str) -> Measurement {
        let mut row = Measurement::from_samples(
            scenario,
            self.system,
            self.payload_bytes,
            self.in_flight,
            &mut self.samples,
        );
        row.extra.extend(self.extra);
        row
    }
}

/// What one system gives a scenario: its open rows, or why it has none.
pub(crate) type Outcome = Result<Vec<Series>, SystemError>;

/// Opens the rows of one system for one scenario.
type Open = fn(Effort) -> Outcome;

/// A scenario measured across processes, with one function per system. [`run`](Self::run)
/// opens them in table order (uds-floor, ipc-floor, troupe-bridged, pyisolate), samples
/// them in rounds, turns failures into `skip` notes, and adds `ratio_to_ipc_floor` to
/// every row that has an `ipc-floor` row to compare with.
pub(crate) trait CrossProcess {
    /// The scenario's name.
    const SCENARIO: &'static str;

    /// The rows of a floor: `uds-floor` or `ipc-floor`, as `L` says.
    fn floor<L: Link>(effort: Effort) -> Outcome;

    /// The rows of troupe's bridged extension host (the `troupe-bridged` system).
    fn troupe_bridged(effort: Effort) -> Outcome;

    /// The rows of pyisolate.
    fn pyisolate(effort: Effort) -> Outcome;

    /// The rows of troupe's Python host (`troupe-python-host`), where the scenario has
    /// them.
    fn troupe_python_host(_effort: Effort) -> Option<Outcome> {
        None
    }

    /// Last touches to a finished row (e.g. a rate from its median); none by default.
    fn finish(row: Measurement) -> Measurement {
        row
    }

    /// Measures every system.
    fn run(effort: Effort) -> Vec<Measurement> {
        let systems: [(&str, Open); 4] = [
            (UdsLink::SYSTEM, Self::floor::<UdsLink>),
            (IpcLink::SYSTEM, Self::floor::<IpcLink>),
            (TROUPE_BRIDGED, Self::troupe_bridged),
            (pyisolate::SYSTEM, Self::pyisolate),
        ];
        let mut open = Vec::new();
        for (system, opener) in systems {
            eprintln!("  {}: {system} ...", Self::SCENARIO);
            match opener(effort) {
                Ok(series) => open.extend(series),
                Err(error) => notes::skip(Self::SCENARIO, system, &error),
            }
        }
        eprintln!("  {}: {} ...", Self::SCENARIO, python_host::SYSTEM);
        match Self::troupe_python_host(effort) {
            Some(Ok(series)) => open.extend(series),
            Some(Err(error)) => notes::skip(Self::SCENARIO, python_host::SYSTEM, &error),
            None => {}
        }
        let mut rows: Vec<Measurement> = sample_in_rounds(Self::SCENARIO, open)
            .into_iter()
            .map(|series| Self::finish(series.into_row(Self::SCENARIO)))
            .collect();
        add_ratios(&mut rows);
        rows
    }
}

/// Takes every row's samples in [`ROUNDS`] rounds; a row whose sampler fails is dropped
/// with a `skip` note.
fn sample_in_rounds(scenario: &str, mut open: Vec<Series>) -> Vec<Series> {
    for round in 0..ROUNDS {
        open.retain_mut(|series| {
            let share = series.n * (round + 1) / ROUNDS - series.n * round / ROUNDS;
            match (series.sampler)(share) {
                Ok(samples) => {
                    series.samples.extend(samples);
                    true
                }
                Err(error) => {
                    let what = format!("{} ({} B)", series.system, series.payload_bytes);
                    notes::skip(scenario, &what, &error);
                    false
                }
            }
        });
    }
    open
}

/// Adds `ratio_to_ipc_floor` (median over the `ipc-floor` median, two decimals) to each
/// row other than the floor's own. A row is compared with the floor row of the same
/// `in_flight` and payload; a no-op call (payload 0) with the smallest floor frame.
fn add_ratios(rows: &mut [Measurement]) {
    let floors: Vec<(u64, u64, u64)> = rows
        .iter()
        .filter(|r| r.system == RATIO_BASE)
        .map(|r| (r.in_flight, r.payload_bytes, r.median_ns))
        .collect();
    for row in rows.iter_mut().filter(|r| r.system != RATIO_BASE) {
        let same_flight = floors.iter().filter(|f| f.0 == row.in_flight);
        let base = match row.payload_bytes {
            0 => same_flight.min_by_key(|f| f.1),
            bytes => same_flight.filter(|f| f.1 == bytes).min_by_key(|f| f.1),
        };
        if let Some(&(_, _, floor_ns)) = base {
            let value = crate::ratio(row.median_ns, floor_ns, 2);
            row.extra
                .insert("ratio_to_ipc_floor".to_owned(), value.into());
        }
    }
}

/// Adds `calls_per_s` to a row whose samples are nanoseconds per call.
pub(crate) fn with_rate(row: Measurement) -> Measurement {
    let per_s = (1e9 / row.median_ns.max(1) as f64).round() as u64;
    row.with("calls_per_s", per_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: &str, payload: u64, in_flight: u64, median: u64) -> Measurement {
        Measurement::from_samples("s", system, payload, in_flight, &mut [median])
    }

    #[test]
    fn ratios_match_flight_and_payload_and_noop_takes_the_smallest_frame() {
        let mut rows = vec![
            row(RATIO_BASE, 64, 1, 10),
            row(RATIO_BASE, 4096, 1, 20),
            row(RATIO_BASE, 64, 100, 2),
            row("peer", 0, 1, 50),
            row("peer", 4096, 1, 50),
            row("peer", 64, 100, 3),
            row("peer", 8, 7, 3),
        ];
        add_ratios(&mut rows);
        let ratio = |i: usize| rows[i].extra.get("ratio_to_ipc_floor").cloned();
        assert_eq!(ratio(0), None);
        assert_eq!(ratio(3), Some(5.0.into()));
        assert_eq!(ratio(4), Some(2.5.into()));
        assert_eq!(ratio(5), Some(1.5.into()));
        assert_eq!(ratio(6), None);
    }

    #[test]
    fn rounds_take_every_sample_once_and_drop_failing_rows() {
        let counting: Sampler = Box::new(|n| Ok(vec![1; n]));
        let failing: Sampler = Box::new(|_| Err(SystemError::Pending("test")));
        let measured = Series::measured("m", 0, 1, (0..7).collect(), Map::new());
        let done = sample_in_rounds(
            "s",
            vec![
                Series::new("a", 64, 1, 25, counting),
                Series::new("b", 64, 1, 5, failing),
                measured,
            ],
        );
        let counts: Vec<(&str, usize)> = done.iter().map(|s| (s.system, s.samples.len())).collect();
        assert_eq!(counts, [("a", 25), ("m", 7)]);
        assert_eq!(done[1].samples, (0..7).collect::<Vec<u64>>());
    }
}
