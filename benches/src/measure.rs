//! One measurement row and the statistics behind it.

use serde::Serialize;
use serde_json::{Map, Value};

/// One row of results: the fields every consumer relies on plus scenario-specific extras
/// (`placement`, `items_per_s`, `ratio_to`, ...).
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// Scenario name, e.g. `call-roundtrip`.
    pub scenario: String,
    /// What was measured, e.g. `troupe-local` or `actix-raw`.
    pub system: String,
    /// Payload size per message in bytes.
    pub payload_bytes: u64,
    /// Messages or calls outstanding at once.
    pub in_flight: u64,
    /// Samples behind the statistics.
    pub n: u64,
    /// Median in nanoseconds.
    pub median_ns: u64,
    /// 99th percentile in nanoseconds.
    pub p99_ns: u64,
    /// Scenario-specific fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Measurement {
    /// A row from raw per-sample durations in nanoseconds.
    pub fn from_samples(
        scenario: &str,
        system: &str,
        payload_bytes: u64,
        in_flight: u64,
        samples: &mut [u64],
    ) -> Measurement {
        samples.sort_unstable();
        Measurement {
            scenario: scenario.to_owned(),
            system: system.to_owned(),
            payload_bytes,
            in_flight,
            n: samples.len() as u64,
            median_ns: percentile(samples, 0.5),
            p99_ns: percentile(samples, 0.99),
            extra: Map::new(),
        }
    }

    /// Adds a scenario-specific field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Measurement {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// Adds field `key`: this row's median over `base_ns`, rounded to `decimals` places.
    pub fn with_ratio(self, key: &str, base_ns: u64, decimals: i32) -> Measurement {
        let value = ratio(self.median_ns, base_ns, decimals);
        self.with(key, value)
    }

    /// The extra field `key` as text, empty if absent.
    pub fn extra_str(&self, key: &str) -> String {
        match self.extra.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}

/// `value_ns / base_ns`, rounded to `decimals` places (a zero base counts as 1 ns).
pub fn ratio(value_ns: u64, base_ns: u64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value_ns as f64 / base_ns.max(1) as f64 * scale).round() / scale
}

/// The `q` quantile of sorted samples (nearest rank).
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 0.5), 50);
        assert_eq!(percentile(&sorted, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
