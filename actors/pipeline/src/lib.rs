//! The pipeline runtime: a directed acyclic graph of node actors.
//!
//! Build a graph with [`PipelineBuilder`]: add sources ([`Source`](troupe_nodes::Source)) and
//! processing nodes ([`Node`](troupe_nodes::Node)) under ids, connect them with edges (each
//! with an [`EdgePolicy`]), and pick an [`ErrorPolicy`] and a mailbox capacity per node.
//! [`PipelineBuilder::build`] checks the graph (unknown ids, cycles, nodes with no input).
//!
//! [`Pipeline::run`] (inside an actix `System`) starts every node as an actor with a bounded
//! mailbox ([`troupe_runtime::ActorBuilder`]) on the current arbiter, drives the sources,
//! and waits until end of stream has passed through every node:
//!
//! - A node's outputs go to every downstream edge, in order.
//! - End of stream travels the data lane behind every item; a node with k inputs flushes and
//!   passes it on after it came from all k.
//! - [`Pipeline::start`] gives a [`RunningPipeline`] whose [`Interrupter`] sends an interrupt
//!   on every node's control lane (it overtakes queued data).
//! - The run ends with a [`RunSummary`] or a [`PipelineError`] (a node failed under
//!   [`ErrorPolicy::FailPipeline`], or an actor stopped, e.g. a panic in a node).
//!
//! A panic in a node added with [`PipelineBuilder::supervised_node`] is caught and the node
//! is made anew per its [`RestartSpec`](troupe_runtime::supervision::RestartSpec): the input
//! it was processing is lost and counted ([`NodeSummary::lost`]), the inputs queued behind
//! it wait out the backoff and go to the new instance. Other nodes and sources are not
//! restarted: a panic ends the run with [`PipelineError::Panicked`].
//!
//! ```
//! use troupe_pipeline::{EdgePolicy, PipelineBuilder};
//! use troupe_nodes::catalog;
//! use troupe_value::Map;
//!
//! # struct Count(i64);
//! # impl troupe_nodes::Source for Count {
//! #     fn type_name(&self) -> &'static str { "test.count" }
//! #     fn pull(&mut self, out: &mut troupe_nodes::Emitter)
//! #         -> Result<troupe_nodes::SourceState, troupe_nodes::NodeError> {
//! #         self.0 -= 1;
//! #         if self.0 < 0 { return Ok(troupe_nodes::SourceState::Done) }
//! #         out.emit(self.0);
//! #         Ok(troupe_nodes::SourceState::More)
//! #     }
//! # }
//! actix::System::new().block_on(async {
//!     let pipeline = PipelineBuilder::new()
//!         .source("numbers", Box::new(Count(10)))
//!         .built("copy", catalog::build("data.passthrough", Map::new()).unwrap())
//!         .edge_with("numbers", "copy", EdgePolicy::Backpressure)
//!         .capacity("copy", 4)
//!         .build()
//!         .unwrap();
//!     let summary = pipeline.run().await.unwrap();
//!     assert_eq!(summary.node("copy").unwrap().items_in, 10);
//!     println!("{summary}");
//! });
//! ```

mod builder;
mod edge;
mod error;
pub mod graph;
mod messages;
mod node_actor;
mod progress;
mod restart;
mod run;
mod source_actor;
mod summary;

pub use builder::{DEFAULT_NODE_CAPACITY, EdgePolicy, ErrorPolicy, PipelineBuilder};
pub use error::PipelineError;
pub use progress::{Progress, ProgressMeter};
pub use restart::NodeFactory;
pub use run::{Canceller, Interrupter, Pipeline, RunReport, RunningPipeline};
pub use summary::{EdgeSummary, NodeKind, NodeSummary, RunSummary};
