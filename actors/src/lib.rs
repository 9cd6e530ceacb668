//! troupe actor kinds built on `troupe-runtime`.
//!
//! - [`extension_host`]: Python extensions (bridged actors) with their grants, and python
//!   pipeline nodes.
//! - [`manifest`]: the TOML manifest of extensions, singletons and pipelines.
//! - [`singleton`]: shared actors made from a manifest (`kv`, or kinds a host registers).

#![warn(missing_docs, unreachable_pub)]

pub mod extension_host;
pub mod manifest;
pub mod singleton;
