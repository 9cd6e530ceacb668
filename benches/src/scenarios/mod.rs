//! The scenarios, one file each.

mod array_handoff;
mod audio_resample_vad;
mod call_roundtrip;
mod calls_per_second;
mod chain_throughput;
mod cold_start;
#[cfg(feature = "cuda")]
mod cuda_handoff;
mod live_vad;
mod nested_chain;
mod pipeline_chain;
mod pipeline_python_node;
mod remote_call;
mod restart;

pub(crate) use pipeline_chain::{through_node, through_python_node};

use crate::{BenchError, Effort, Measurement};

/// Node `name` of the catalog with `params`, for `scenario` (whose error it is otherwise).
pub(crate) fn catalog_node(
    scenario: &'static str,
    name: &str,
    params: &[(&str, troupe_value::Value)],
) -> Result<Box<dyn troupe_nodes::Node>, BenchError> {
    use troupe_nodes::catalog::{self, Built};
    let failed = |reason: String| BenchError::Scenario { scenario, reason };
    let params: troupe_value::Map = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    match catalog::build(name, params) {
        Ok(Built::Node(node)) => Ok(node),
        Ok(Built::Source(_)) => Err(failed(format!("{name} is a source"))),
        Err(e) => Err(failed(e.to_string())),
    }
}

/// Every scenario, in the order a full run goes through them (`cuda-handoff` only in a build
/// with the `cuda` feature).
pub const NAMES: &[&str] = &[
    "call-roundtrip",
    "chain-throughput",
    "calls-per-second",
    "nested-chain",
    "cold-start",
    "restart",
    "audio-resample-vad",
    "live-vad",
    "pipeline-chain",
    "pipeline-python-node",
    "array-handoff",
    "remote-call",
    #[cfg(feature = "cuda")]
    "cuda-handoff",
];

/// Runs scenario `name`.
pub fn run(name: &str, effort: Effort) -> Result<Vec<Measurement>, BenchError> {
    match name {
        "call-roundtrip" => Ok(call_roundtrip::run(effort)),
        "chain-throughput" => Ok(chain_throughput::run(effort)),
        "calls-per-second" => Ok(calls_per_second::run(effort)),
        "nested-chain" => Ok(nested_chain::run(effort)),
        "cold-start" => Ok(cold_start::run(effort)),
        "restart" => Ok(restart::run(effort)),
        "audio-resample-vad" => audio_resample_vad::run(effort),
        "live-vad" => live_vad::run(effort),
        "pipeline-chain" => pipeline_chain::run(effort),
        "pipeline-python-node" => pipeline_python_node::run(effort),
        "array-handoff" => array_handoff::run(effort),
        "remote-call" => remote_call::run(effort),
        #[cfg(feature = "cuda")]
        "cuda-handoff" => cuda_handoff::run(effort),
        other => Err(BenchError::UnknownScenario(other.to_owned())),
    }
}
