//! Built-in pipeline nodes: audio, video, text and data.
//!
//! Each node implements [`Node`] (or [`Source`] for nodes that produce a stream from
//! nothing). The pipeline runtime in `troupe-pipeline` runs every node as an actor with a
//! bounded mailbox; this crate holds only the processing, which keeps it testable without
//! actors. [`catalog`] lists every node type with its typed parameters and builds nodes from
//! them (the manifest and `troupe nodes` use it).

#![warn(missing_docs, unreachable_pub)]

pub mod audio;
pub mod catalog;
pub mod data;
mod node;
mod params;
pub mod video;

pub use node::{Deferred, Emitter, Node, NodeError, OutputStream, Source, SourceState};
pub use params::{ParamError, ParamKind, ParamSpec, Params};
