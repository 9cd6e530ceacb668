//! `[pipelines.NAME]`: nodes, edges and their policies, checked as a graph.

use std::collections::HashMap;
use std::path::Path;

use troupe_host::extension_host::PythonNodeSpec;
use troupe_pipeline::{EdgePolicy, ErrorPolicy, graph};
use troupe_runtime::supervision::RestartSpec;

use crate::document::{Document, KeyPath};
use crate::error::{ManifestError, ManifestErrorKind};
use crate::node::{Known, NodeBody, NodeDefaults, NodeManifest, check_capacity, error_policy};
use crate::raw::{RawEdgePolicy, RawPipeline};
use crate::restart::restart_spec;

/// A pipeline as the manifest declares it, checked: known node types with well-typed
/// parameters, edges between existing nodes, no cycle, an input for every processing node.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineManifest {
    /// Its name (the table's key).
    pub name: String,
    /// Its nodes, in file order.
    pub nodes: Vec<NodeManifest>,
    /// Its edges, in file order.
    pub edges: Vec<EdgeManifest>,
}

/// An edge between two nodes of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeManifest {
    /// Upstream node id.
    pub from: String,
    /// Downstream node id.
    pub to: String,
    /// What happens when `to`'s mailbox is full.
    pub policy: EdgePolicy,
}

impl PipelineManifest {
    /// Checks the pipeline found at `path`.
    pub(crate) fn from_raw(
        name: &str,
        raw: RawPipeline,
        path: &KeyPath,
        known: &Known<'_>,
        base: &Path,
        document: &Document,
    ) -> Result<PipelineManifest, ManifestError> {
        let invalid = |key: KeyPath, reason: String| {
            document.error(&key, ManifestErrorKind::Invalid { reason })
        };
        if let Err(reason) = check_capacity(raw.capacity) {
            return Err(invalid(path.key("capacity"), reason));
        }
        let defaults = NodeDefaults {
            error_policy: raw
                .error_policy
                .map_or(ErrorPolicy::default(), error_policy),
            restart: match &raw.restart {
                Some(restart) => restart_spec(restart, &path.key("restart"), document)?,
                None => RestartSpec::default(),
            },
        };
        let nodes_path = path.key("nodes");
        if raw.nodes.is_empty() {
            return Err(invalid(path.clone(), "has no nodes".into()));
        }
        let mut nodes = Vec::with_capacity(raw.nodes.len());
        let mut index = HashMap::new();
        for (i, raw_node) in raw.nodes.into_iter().enumerate() {
            let node_path = nodes_path.index(i);
            let mut node =
                NodeManifest::from_raw(raw_node, &node_path, &defaults, known, base, document)?;
            if index.insert(node.id.clone(), i).is_some() {
                return Err(document.error(
                    &node_path.key("id"),
                    ManifestErrorKind::DuplicateId { id: node.id },
                ));
            }
            node.capacity = node.capacity.or(raw.capacity);
            nodes.push(node);
        }

        let edges_path = path.key("edges");
        let mut edges = Vec::with_capacity(raw.edges.len());
        let mut resolved = Vec::with_capacity(raw.edges.len());
        // Capacity an edge asked for its downstream node, and which edge asked.
        let mut edge_capacity: HashMap<usize, (usize, usize)> = HashMap::new();
        for (e, edge) in raw.edges.into_iter().enumerate() {
            let edge_path = edges_path.index(e);
            let endpoint = |id: &str, key: &str| {
                index.get(id).copied().ok_or_else(|| {
                    document.error(
                        &edge_path.key(key),
                        ManifestErrorKind::MissingEndpoint {
                            node: id.to_owned(),
                        },
                    )
                })
            };
            let (from, to) = (endpoint(&edge.from, "from")?, endpoint(&edge.to, "to")?);
            if nodes[to].body.is_source() {
                return Err(invalid(
                    edge_path.key("to"),
                    format!("`{}` is a source and takes no input", edge.to),
                ));
            }
            if let Some(capacity) = edge.capacity {
                if let Err(reason) = check_capacity(Some(capacity)) {
                    return Err(invalid(edge_path.key("capacity"), reason));
                }
                match edge_capacity.insert(to, (capacity, e)) {
                    Some((other, first)) if other != capacity => {
                        return Err(invalid(
                            edge_path.key("capacity"),
                            format!(
                                "edges[{first}] gives `{}` a capacity of {other}; edges into \
                                 one node share its mailbox, so their capacities must agree",
                                edge.to
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            resolved.push((from, to));
            edges.push(EdgeManifest {
                from: edge.from,
                to: edge.to,
                policy: match edge.policy {
                    None | Some(RawEdgePolicy::Backpressure) => EdgePolicy::Backpressure,
                    Some(RawEdgePolicy::DropOldest) => EdgePolicy::DropOldest,
                    Some(RawEdgePolicy::DropNewest) => EdgePolicy::DropNewest,
                },
            });
        }
        for (to, (capacity, e)) in edge_capacity {
            if let Some(own) = nodes[to].capacity
                && own != capacity
            {
                return Err(invalid(
                    edges_path.index(e).key("capacity"),
                    format!("`{}` has a capacity of {own}", nodes[to].id),
                ));
            }
            nodes[to].capacity = Some(capacity);
        }

        if let Err(cycle) = graph::topological_order(nodes.len(), &resolved) {
            // Point at the edge that closes the cycle.
            let closing = (cycle[cycle.len() - 2], cycle[cycle.len() - 1]);
            let e = resolved.iter().position(|&r| r == closing).unwrap_or(0);
            return Err(document.error(
                &edges_path.index(e),
                ManifestErrorKind::Cycle {
                    path: cycle.iter().map(|&i| nodes[i].id.clone()).collect(),
                },
            ));
        }
        for (i, node) in nodes.iter().enumerate() {
            if !node.body.is_source() && !resolved.iter().any(|&(_, to)| to == i) {
                return Err(invalid(
                    nodes_path.index(i),
                    format!("`{}` has no input edge and is not a source", node.id),
                ));
            }
        }
        Ok(PipelineManifest {
            name: name.to_owned(),
            nodes,
            edges,
        })
    }

    /// The node called `id`.
    pub fn node(&self, id: &str) -> Option<&NodeManifest> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Its python nodes, for the host that is to make them.
    pub fn python_nodes(&self) -> impl Iterator<Item = &PythonNodeSpec> {
        self.nodes.iter().filter_map(|n| match &n.body {
            NodeBody::Python(spec) => Some(spec),
            NodeBody::Builtin { .. } | NodeBody::Supplied { .. } => None,
        })
    }
}
