//! troupe actor kinds built on `troupe-runtime`.
//!
//! - [`extension_host`]: Python extensions (bridged actors) with their grants, and python
//!   pipeline nodes.
//! - [`manifest`]: the TOML manifest of extensions, singletons and pipelines.
//! - [`singleton`]: shared actors made from a manifest (`kv`, or kinds a host registers).
//! - [`pipeline`]: directed acyclic graphs of node actors (sources, processing nodes) with
//!   fan-out, fan-in, per-edge backpressure or drop policies, end of stream, error policies
//!   and a run summary.

#![warn(missing_docs, unreachable_pub)]

pub mod extension_host;
pub mod manifest;
pub mod pipeline;
pub mod singleton;
