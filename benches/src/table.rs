//! The plain-text table of results.

use std::fmt::Write;

use crate::Measurement;

fn human_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.2} us", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// A statistic of `row`, or `-` for a row with no samples (a system that could not run).
fn measured(row: &Measurement, ns: u64) -> String {
    if row.n == 0 {
        "-".to_owned()
    } else {
        human_ns(ns)
    }
}

/// Renders rows as an aligned table; extras go in the last column.
pub(crate) fn render(rows: &[Measurement]) -> String {
    let mut lines = vec![[
        "scenario".to_owned(),
        "system".to_owned(),
        "payload".to_owned(),
        "in_flight".to_owned(),
        "n".to_owned(),
        "median".to_owned(),
        "p99".to_owned(),
        "extra".to_owned(),
    ]];
    for r in rows {
        let extra = r
            .extra
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        lines.push([
            r.scenario.clone(),
            r.system.clone(),
            format!("{} B", r.payload_bytes),
            r.in_flight.to_string(),
            r.n.to_string(),
            measured(r, r.median_ns),
            measured(r, r.p99_ns),
            extra,
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in &lines {
        for (c, cell) in line.iter().enumerate() {
            let _ = write!(out, "{cell:<w$}  ", w = widths[c]);
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    out
}
