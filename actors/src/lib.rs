//! troupe's TOML manifest of extensions, singletons and pipelines.

#![warn(missing_docs, unreachable_pub)]

pub mod manifest;
