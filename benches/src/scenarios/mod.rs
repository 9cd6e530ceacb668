//! The scenarios, one file each.

mod call_roundtrip;
mod chain_throughput;

use crate::{BenchError, Effort, Measurement};

/// Every scenario, in the order a full run goes through them.
pub const NAMES: &[&str] = &["call-roundtrip", "chain-throughput"];

/// Runs scenario `name`.
pub fn run(name: &str, effort: Effort) -> Result<Vec<Measurement>, BenchError> {
    match name {
        "call-roundtrip" => Ok(call_roundtrip::run(effort)),
        "chain-throughput" => Ok(chain_throughput::run(effort)),
        other => Err(BenchError::UnknownScenario(other.to_owned())),
    }
}
