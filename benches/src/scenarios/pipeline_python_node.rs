//! `pipeline-python-node`: the per-item cost of a python node (a method of a bridged
//! extension) in a pipeline, beside a bare bridged no-op call in the same run.
//!
//! `troupe-bridged` rows: `node` is a run of N ints through source -> python node (a
//! `def item(value): return value`), one sample per run in nanoseconds per item; `call` is
//! one no-op call of the same extension per sample. The node row carries
//! `ratio_to_bridged_call` (its median over the call's). Target: <= 2.

use crate::systems::bridged::{Job, Lab};
use crate::systems::{SystemError, TROUPE_BRIDGED};
use crate::{BenchError, Effort, Measurement};

const SCENARIO: &str = "pipeline-python-node";

/// Runs the scenario.
pub(super) fn run(effort: Effort) -> Result<Vec<Measurement>, BenchError> {
    let fail = |e: SystemError| BenchError::Scenario {
        scenario: SCENARIO,
        reason: e.to_string(),
    };
    let (items, runs, calls): (usize, usize, usize) =
        effort.pick((2_000, 5, 2_000), (20_000, 11, 20_000));
    let lab = Lab::start().map_err(fail)?;
    let node = Job::PythonNode { items };
    let call = Job::Call { payload: 0 };
    lab.sample(node, 1).map_err(fail)?;
    lab.sample(call, calls / 10).map_err(fail)?;
    let (mut per_item, mut per_call) = (Vec::new(), Vec::new());
    // Alternate the two rows in rounds, so that machine noise hits both alike.
    let rounds = 5;
    for _ in 0..rounds {
        per_item.extend(lab.sample(node, runs.div_ceil(rounds)).map_err(fail)?);
        per_call.extend(lab.sample(call, calls / rounds).map_err(fail)?);
    }
    let call_row = Measurement::from_samples(SCENARIO, TROUPE_BRIDGED, 0, 1, &mut per_call)
        .with("call", "noop");
    let node_row = Measurement::from_samples(SCENARIO, TROUPE_BRIDGED, 0, 1, &mut per_item)
        .with("call", "node")
        .with("items_per_run", items as u64)
        .with_ratio("ratio_to_bridged_call", call_row.median_ns, 2);
    Ok(vec![call_row, node_row])
}
