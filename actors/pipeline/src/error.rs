//! Pipeline errors: at build time and at run time.

use thiserror::Error;
use troupe_nodes::NodeError;
use troupe_runtime::supervision::GiveUp;

/// Why a pipeline could not be built, or why a run ended badly.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// The run was cancelled ([`Canceller::cancel`](crate::Canceller::cancel), Ctrl-C).
    #[error("the run was cancelled")]
    Cancelled,
    /// Two nodes were added under the same id.
    #[error("node id `{id}` is used twice")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// An edge names a node that was never added.
    #[error("edge `{from}` -> `{to}`: no node `{missing}`")]
    UnknownEndpoint {
        /// The edge's upstream id.
        from: String,
        /// The edge's downstream id.
        to: String,
        /// The id that names no node.
        missing: String,
    },
    /// A setting (capacity, error policy) names a node that was never added.
    #[error("{setting} set for `{id}`, which is no node")]
    UnknownId {
        /// The id.
        id: String,
        /// Which setting (`"capacity"`, `"error policy"`, `"arbiter"`).
        setting: &'static str,
    },
    /// An edge goes into a source; sources take no input.
    #[error("edge `{from}` -> `{source_id}`: `{source_id}` is a source and takes no input")]
    EdgeIntoSource {
        /// The edge's upstream id.
        from: String,
        /// The source.
        source_id: String,
    },
    /// The edges form a cycle; `path` goes round it and ends where it starts.
    #[error("cycle: {}", .path.join(" -> "))]
    Cycle {
        /// Node ids round the cycle, the first repeated at the end.
        path: Vec<String>,
    },
    /// A processing node has no incoming edge, so it would never see end of stream.
    #[error("node `{node}` has no input and is not a source")]
    NoInputs {
        /// The node.
        node: String,
    },
    /// A node's `initialize` failed.
    #[error("node `{node}` failed to initialize: {source}")]
    Init {
        /// The node.
        node: String,
        /// What the node said.
        #[source]
        source: NodeError,
    },
    /// A node's `process` failed under [`ErrorPolicy::FailPipeline`](crate::ErrorPolicy).
    #[error("node `{node}` failed on input #{input_index}: {source}")]
    Process {
        /// The node.
        node: String,
        /// Which input of that node failed, counting from 0 over all its inputs.
        input_index: u64,
        /// What the node said.
        #[source]
        source: NodeError,
    },
    /// A node's `flush` failed under [`ErrorPolicy::FailPipeline`](crate::ErrorPolicy).
    #[error("node `{node}` failed to flush: {source}")]
    Flush {
        /// The node.
        node: String,
        /// What the node said.
        #[source]
        source: NodeError,
    },
    /// A source's `pull` failed under [`ErrorPolicy::FailPipeline`](crate::ErrorPolicy).
    #[error("source `{node}` failed on pull #{pull_index}: {source}")]
    Pull {
        /// The source.
        node: String,
        /// Which pull failed, counting from 0.
        pull_index: u64,
        /// What the source said.
        #[source]
        source: NodeError,
    },
    /// A node panicked and is not restarted (it has no restart policy, its policy says the
    /// crash is final, or it is a source), or its actor stopped before end of stream passed
    /// through it.
    #[error("node `{node}` stopped before end of stream (panicked)")]
    Panicked {
        /// The node.
        node: String,
    },
    /// A supervised node crashed once more than its restart limit allows.
    #[error("node `{node}` crashed too often: {give_up}")]
    GaveUp {
        /// The node.
        node: String,
        /// The restarts made within the window, and the last panic.
        give_up: Box<GiveUp>,
    },
    /// A supervised node's factory failed to make an instance (at build or at a restart).
    #[error("node `{node}` could not be made: {source}")]
    Make {
        /// The node.
        node: String,
        /// What the factory said.
        #[source]
        source: NodeError,
    },
}
