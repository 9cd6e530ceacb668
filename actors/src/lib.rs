//! troupe actor kinds built on `troupe-runtime`.
//!
//! - [`pipeline`]: directed acyclic graphs of node actors (sources, processing nodes) with
//!   fan-out, fan-in, per-edge backpressure or drop policies, end of stream, error policies
//!   and a run summary.

#![warn(missing_docs, unreachable_pub)]

pub mod extension_host;
pub mod manifest;
pub mod pipeline;
