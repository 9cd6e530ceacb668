//! Building a pipeline: nodes, edges, policies, and the checks at build time.

use std::collections::HashMap;

use actix::ArbiterHandle;

use troupe_nodes::catalog::Built;
use troupe_nodes::{Node, NodeError, Source};
use troupe_runtime::supervision::RestartSpec;

use crate::error::PipelineError;
use crate::graph;
use crate::restart::{MakeError, NodeFactory, Restarter};
use crate::run::Pipeline;

/// Data-lane capacity of a node's mailbox when none is set.
pub const DEFAULT_NODE_CAPACITY: usize = 64;

/// What an edge does when the downstream node's mailbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EdgePolicy {
    /// The sender waits for room (it handles nothing else meanwhile), so backpressure travels
    /// upstream to the sources. Nothing is lost.
    #[default]
    Backpressure,
    /// The new item is dropped and counted. End of stream is never dropped (it waits).
    DropNewest,
    /// The edge keeps its own buffer of the downstream node's capacity; when it is full, the
    /// oldest item in it is dropped and counted to make room. End of stream is never dropped.
    DropOldest,
}

/// What a node's failure to process an item does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorPolicy {
    /// The run ends with [`PipelineError::Process`] (or `Flush`, `Pull`, `Init`).
    #[default]
    FailPipeline,
    /// The error is counted in the summary, the item (and anything emitted for it) is
    /// dropped, and the node goes on. Errors in `initialize` always fail the run.
    SkipItem,
}

/// A node as added to the builder.
pub(crate) struct NodeSpec {
    pub(crate) id: String,
    pub(crate) body: Built,
    pub(crate) capacity: usize,
    pub(crate) policy: ErrorPolicy,
    pub(crate) arbiter: Option<ArbiterHandle>,
    /// How a crashed node comes back; `None`: a crash ends the run.
    pub(crate) restart: Option<Restarter>,
}

/// An edge as added to the builder (endpoints resolved at build).
#[derive(Debug, Clone)]
pub(crate) struct EdgeSpec {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) policy: EdgePolicy,
}

/// Builds a [`Pipeline`]. Methods chain; mistakes are reported by [`PipelineBuilder::build`].
///
/// Nodes get [`DEFAULT_NODE_CAPACITY`] and [`ErrorPolicy::FailPipeline`] unless set.
#[derive(Default)]
pub struct PipelineBuilder {
    name: String,
    nodes: Vec<NodeSpec>,
    edges: Vec<EdgeSpec>,
    capacities: Vec<(String, usize)>,
    policies: Vec<(String, ErrorPolicy)>,
    arbiters: Vec<(String, ArbiterHandle)>,
    /// Nodes whose factory made no first instance.
    failures: Vec<PipelineError>,
}

impl std::fmt::Debug for PipelineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field(
                "nodes",
                &self.nodes.iter().map(|n| &n.id).collect::<Vec<_>>(),
            )
            .field("edges", &self.edges)
            .finish_non_exhaustive()
    }
}

impl PipelineBuilder {
    /// An empty pipeline.
    pub fn new() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    fn add(mut self, id: impl Into<String>, body: Built) -> PipelineBuilder {
        self.nodes.push(NodeSpec {
            id: id.into(),
            body,
            capacity: DEFAULT_NODE_CAPACITY,
            policy: ErrorPolicy::default(),
            arbiter: None,
            restart: None,
        });
        self
    }

    /// Adds a source under `id`. The runtime pulls it in a loop until it is done.
    pub fn source(self, id: impl Into<String>, source: Box<dyn Source>) -> PipelineBuilder {
        self.add(id, Built::Source(source))
    }

    /// Replaces source `id` (added before, e.g. from a manifest) with `source`: how a
    /// session feeds its own stream to a pipeline declared once. Building fails with
    /// [`PipelineError::UnknownId`] when no source is `id`.
    pub fn replace_source(mut self, id: &str, source: Box<dyn Source>) -> PipelineBuilder {
        match self
            .nodes
            .iter_mut()
            .find(|n| n.id == id && matches!(n.body, Built::Source(_)))
        {
            Some(node) => node.body = Built::Source(source),
            None => self.failures.push(PipelineError::UnknownId {
                id: id.to_owned(),
                setting: "replaced source",
            }),
        }
        self
    }

    /// Adds a processing node under `id`.
    pub fn node(self, id: impl Into<String>, node: Box<dyn Node>) -> PipelineBuilder {
        self.add(id, Built::Node(node))
    }

    /// Adds a processing node under `id` that `factory` makes, at build and again after
    /// each crash (a panic in the node) that `spec` allows. The input in hand when it
    /// crashed is lost and counted ([`NodeSummary::lost`](crate::NodeSummary::lost)); the
    /// inputs queued behind it go to the next instance.
    pub fn supervised_node<F>(
        mut self,
        id: impl Into<String>,
        spec: RestartSpec,
        factory: F,
    ) -> Self
    where
        F: FnMut() -> Result<Box<dyn Node>, NodeError> + Send + 'static,
    {
        let id = id.into();
        let mut restarter = Restarter::new(&id, spec, Box::new(factory) as NodeFactory);
        match restarter.make() {
            Ok(node) => {
                let mut builder = self.node(id, node);
                if let Some(spec) = builder.nodes.last_mut() {
                    spec.restart = Some(restarter);
                }
                builder
            }
            Err(error) => {
                let error = match error {
                    MakeError::Failed(source) => PipelineError::Make { node: id, source },
                    MakeError::Panicked(message) => {
                        tracing::error!(node = %id, %message, "node factory panicked");
                        PipelineError::Panicked { node: id }
                    }
                };
                self.failures.push(error);
                self
            }
        }
    }

    /// Adds what [`troupe_nodes::catalog::build`] made: a source or a node.
    pub fn built(self, id: impl Into<String>, built: Built) -> PipelineBuilder {
        self.add(id, built)
    }

    /// Connects `from` to `to` with [`EdgePolicy::Backpressure`].
    pub fn edge(self, from: impl Into<String>, to: impl Into<String>) -> PipelineBuilder {
        self.edge_with(from, to, EdgePolicy::Backpressure)
    }

    /// Connects `from` to `to` with `policy`. Every output of `from` goes to every edge out
    /// of it.
    pub fn edge_with(
        mut self,
        from: impl Into<String>,
        to: impl Into<String>,
        policy: EdgePolicy,
    ) -> PipelineBuilder {
        self.edges.push(EdgeSpec {
            from: from.into(),
            to: to.into(),
            policy,
        });
        self
    }

    /// Names the pipeline: the `pipeline` label of its nodes' metrics
    /// ([`troupe_runtime::metrics`]); unnamed pipelines share the label `""`.
    pub fn name(mut self, name: impl Into<String>) -> PipelineBuilder {
        self.name = name.into();
        self
    }

    /// Data-lane capacity of `id`'s mailbox (at least 1). Also the size of the buffer of each
    /// [`EdgePolicy::DropOldest`] edge into it.
    pub fn capacity(mut self, id: impl Into<String>, capacity: usize) -> PipelineBuilder {
        self.capacities.push((id.into(), capacity.max(1)));
        self
    }

    /// What an error in `id` does to the run.
    pub fn error_policy(mut self, id: impl Into<String>, policy: ErrorPolicy) -> PipelineBuilder {
        self.policies.push((id.into(), policy));
        self
    }

    /// Runs `id`'s actor on `arbiter` (another thread) instead of the arbiter that starts the
    /// run. Give a node that blocks (heavy compute, sleeps) its own arbiter so it does not
    /// stall the nodes around it.
    pub fn arbiter(mut self, id: impl Into<String>, arbiter: ArbiterHandle) -> PipelineBuilder {
        self.arbiters.push((id.into(), arbiter));
        self
    }

    /// Checks the graph and makes the pipeline.
    ///
    /// Fails on a duplicate id, an edge or setting naming no node, an edge into a source, a
    /// cycle, a processing node with no input, or a factory that made no node.
    pub fn build(mut self) -> Result<Pipeline, PipelineError> {
        if let Some(failure) = self.failures.into_iter().next() {
            return Err(failure);
        }
        let mut index = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if index.insert(node.id.clone(), i).is_some() {
                return Err(PipelineError::DuplicateId {
                    id: node.id.clone(),
                });
            }
        }
        for (id, capacity) in self.capacities {
            let i = *index.get(&id).ok_or(PipelineError::UnknownId {
                id: id.clone(),
                setting: "capacity",
            })?;
            self.nodes[i].capacity = capacity;
        }
        for (id, policy) in self.policies {
            let i = *index.get(&id).ok_or(PipelineError::UnknownId {
                id: id.clone(),
                setting: "error policy",
            })?;
            self.nodes[i].policy = policy;
        }
        for (id, arbiter) in self.arbiters {
            let i = *index.get(&id).ok_or(PipelineError::UnknownId {
                id: id.clone(),
                setting: "arbiter",
            })?;
            self.nodes[i].arbiter = Some(arbiter);
        }
        let mut resolved = Vec::with_capacity(self.edges.len());
        for edge in &self.edges {
            let lookup = |id: &String| {
                index
                    .get(id)
                    .copied()
                    .ok_or_else(|| PipelineError::UnknownEndpoint {
                        from: edge.from.clone(),
                        to: edge.to.clone(),
                        missing: id.clone(),
                    })
            };
            let (from, to) = (lookup(&edge.from)?, lookup(&edge.to)?);
            if matches!(self.nodes[to].body, Built::Source(_)) {
                return Err(PipelineError::EdgeIntoSource {
                    from: edge.from.clone(),
                    source_id: edge.to.clone(),
                });
            }
            resolved.push((from, to));
        }
        let order = graph::topological_order(self.nodes.len(), &resolved).map_err(|cycle| {
            PipelineError::Cycle {
                path: cycle.iter().map(|&i| self.nodes[i].id.clone()).collect(),
            }
        })?;
        for (i, node) in self.nodes.iter().enumerate() {
            if matches!(node.body, Built::Node(_)) && !resolved.iter().any(|&(_, to)| to == i) {
                return Err(PipelineError::NoInputs {
                    node: node.id.clone(),
                });
            }
        }
        Ok(Pipeline::new(
            self.name, self.nodes, self.edges, resolved, order,
        ))
    }
}
