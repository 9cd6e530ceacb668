//! Building a [`Pipeline`] from a manifest's pipeline entry.

use std::sync::Arc;

use troupe_host::extension_host::PythonNodeSpec;
use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{Node, NodeError};
use troupe_pipeline::{Pipeline, PipelineBuilder};
use troupe_value::Map;

use crate::Manifest;
use crate::document::KeyPath;
use crate::error::{ManifestError, ManifestErrorKind};
use crate::node::{NodeBody, NodeManifest, node_error};

/// Makes the [`Node`] for a python node: called once when the pipeline is built and again
/// after each crash its restart policy allows. The extension host provides it.
pub type PythonNodeMaker =
    dyn Fn(&PythonNodeSpec) -> Result<Box<dyn Node>, NodeError> + Send + Sync;

/// Makes the [`Node`] standing here for a built-in node another host runs
/// (`host = "NAME"`): called once when the pipeline is built and again after each crash its
/// restart policy allows. The cluster provides it (`troupe_cluster::Bound::node_maker`).
pub type RemoteNodeMaker =
    dyn Fn(&RemoteNodeSpec) -> Result<Box<dyn Node>, NodeError> + Send + Sync;

/// A built-in node placed on another host, as the pipeline that runs it sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteNodeSpec {
    /// Its pipeline.
    pub pipeline: String,
    /// Its id in the pipeline.
    pub node: String,
    /// The `[hosts.NAME]` that runs it.
    pub host: String,
    /// Its catalog type (`"audio.resample"`).
    pub type_name: &'static str,
}

impl RemoteNodeSpec {
    /// `node` of `pipeline`, if it is a built-in node placed on another host.
    pub(crate) fn of(pipeline: &str, node: &NodeManifest) -> Option<RemoteNodeSpec> {
        let NodeBody::Builtin { type_name, .. } = &node.body else {
            return None;
        };
        Some(RemoteNodeSpec {
            pipeline: pipeline.to_owned(),
            node: node.id.clone(),
            host: node.host.clone()?,
            type_name,
        })
    }
}

/// A built-in node a serving host runs for others: what it is and how to make it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedNode {
    /// Its pipeline.
    pub pipeline: String,
    /// Its id in the pipeline.
    pub node: String,
    /// Its catalog type (`"audio.resample"`).
    pub type_name: &'static str,
    /// Its checked parameters.
    pub params: Map,
}

impl ServedNode {
    pub(crate) fn of(pipeline: &str, node: &NodeManifest) -> Option<ServedNode> {
        let NodeBody::Builtin {
            type_name,
            params,
            is_source: false,
        } = &node.body
        else {
            return None;
        };
        Some(ServedNode {
            pipeline: pipeline.to_owned(),
            node: node.id.clone(),
            type_name,
            params: params.clone(),
        })
    }

    /// A fresh instance of it.
    pub fn build(&self) -> Result<Box<dyn Node>, NodeError> {
        build_processing_node(self.type_name, &self.params)
    }
}

/// Builds pipelines of one manifest. Made by [`Manifest::loader`].
///
/// Every processing node is added with
/// [`PipelineBuilder::supervised_node`], so it restarts per its manifest `restart` policy.
#[derive(Clone)]
pub struct PipelineLoader<'m> {
    manifest: &'m Manifest,
    python: Option<Arc<PythonNodeMaker>>,
    remote: Option<Arc<RemoteNodeMaker>>,
}

impl std::fmt::Debug for PipelineLoader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineLoader")
            .field("manifest", &self.manifest.file)
            .field("python_nodes", &self.python.is_some())
            .field("remote_nodes", &self.remote.is_some())
            .finish()
    }
}

impl<'m> PipelineLoader<'m> {
    pub(crate) fn new(manifest: &'m Manifest) -> PipelineLoader<'m> {
        PipelineLoader {
            manifest,
            python: None,
            remote: None,
        }
    }

    /// Uses `maker` for the built-in nodes placed on other hosts. Without one, building a
    /// pipeline that has such a node fails with [`ManifestErrorKind::RemoteNodesNeedCluster`].
    pub fn remote_nodes<F>(mut self, maker: F) -> PipelineLoader<'m>
    where
        F: Fn(&RemoteNodeSpec) -> Result<Box<dyn Node>, NodeError> + Send + Sync + 'static,
    {
        self.remote = Some(Arc::new(maker));
        self
    }

    /// Uses `maker` for the python nodes. Without one, building a pipeline that has a
    /// python node fails with [`ManifestErrorKind::PythonNodesNeedHost`].
    pub fn python_nodes<F>(mut self, maker: F) -> PipelineLoader<'m>
    where
        F: Fn(&PythonNodeSpec) -> Result<Box<dyn Node>, NodeError> + Send + Sync + 'static,
    {
        self.python = Some(Arc::new(maker));
        self
    }

    /// A builder holding pipeline `name`'s nodes, edges and policies, to adjust (arbiters,
    /// say) before [`PipelineBuilder::build`]. Sources open their input here.
    pub fn builder(&self, name: &str) -> Result<PipelineBuilder, ManifestError> {
        let manifest = self.manifest;
        let pipeline = manifest.pipelines.get(name).ok_or_else(|| {
            Manifest::error_for(
                &manifest.document,
                &KeyPath::default().key("pipelines"),
                name,
                manifest.pipelines.keys(),
            )
        })?;
        let nodes_path = KeyPath::default().key("pipelines").key(name).key("nodes");
        let mut builder = PipelineBuilder::new().name(name);
        for (i, node) in pipeline.nodes.iter().enumerate() {
            let path = nodes_path.index(i);
            let id = node.id.clone();
            let remote = RemoteNodeSpec::of(name, node);
            builder = match &node.body {
                NodeBody::Builtin { .. } if let Some(spec) = remote => {
                    let Some(maker) = self.remote.clone() else {
                        return Err(manifest
                            .document
                            .error(&path.key("host"), ManifestErrorKind::RemoteNodesNeedCluster));
                    };
                    builder
                        .supervised_node(id, node.restart.unwrap_or_default(), move || maker(&spec))
                }
                NodeBody::Builtin {
                    type_name, params, ..
                } => match node.make(&path, &manifest.document)? {
                    Some(Built::Source(source)) => builder.source(id, source),
                    Some(Built::Node(first)) => {
                        let (type_name, params) = (*type_name, params.clone());
                        let mut first = Some(first);
                        builder.supervised_node(id, node.restart.unwrap_or_default(), move || {
                            match first.take() {
                                Some(instance) => Ok(instance),
                                None => build_processing_node(type_name, &params),
                            }
                        })
                    }
                    None => builder,
                },
                // The program adds it under its id (edges to it resolve at build).
                NodeBody::Supplied { .. } => builder,
                NodeBody::Python(spec) => {
                    let Some(maker) = self.python.clone() else {
                        return Err(manifest
                            .document
                            .error(&path, ManifestErrorKind::PythonNodesNeedHost));
                    };
                    let spec_for_node = spec.clone();
                    builder.supervised_node(id, node.restart.unwrap_or_default(), move || {
                        maker(&spec_for_node)
                    })
                }
            };
            if let Some(capacity) = node.capacity {
                builder = builder.capacity(node.id.clone(), capacity);
            }
            builder = builder.error_policy(node.id.clone(), node.error_policy);
        }
        for edge in &pipeline.edges {
            builder = builder.edge_with(edge.from.clone(), edge.to.clone(), edge.policy);
        }
        Ok(builder)
    }

    /// Builds pipeline `name`, ready to run. A pipeline with nodes the host program
    /// supplies (`host.input`, `host.node`) is refused: use [`PipelineLoader::builder`] and
    /// add them.
    pub fn build(&self, name: &str) -> Result<Pipeline, ManifestError> {
        if let Some(pipeline) = self.manifest.pipelines.get(name)
            && let Some((i, node)) = pipeline
                .nodes
                .iter()
                .enumerate()
                .find(|(_, n)| matches!(n.body, NodeBody::Supplied { .. }))
        {
            let path = KeyPath::default()
                .key("pipelines")
                .key(name)
                .key("nodes")
                .index(i);
            return Err(self.manifest.document.error(
                &path.key("type"),
                ManifestErrorKind::SuppliedByHost {
                    node: node.id.clone(),
                },
            ));
        }
        let builder = self.builder(name)?;
        builder.build().map_err(|error| {
            let at = KeyPath::default().key("pipelines").key(name);
            match error {
                troupe_pipeline::PipelineError::Make { node, source } => {
                    let index = self.manifest.pipelines[name]
                        .nodes
                        .iter()
                        .position(|n| n.id == node)
                        .unwrap_or(0);
                    node_error(
                        source,
                        &at.key("nodes").index(index),
                        &self.manifest.document,
                    )
                }
                other => self
                    .manifest
                    .document
                    .error(&at, ManifestErrorKind::Pipeline(other)),
            }
        })
    }
}

/// A fresh instance of a built-in processing node, for a restart.
fn build_processing_node(
    type_name: &'static str,
    params: &Map,
) -> Result<Box<dyn Node>, NodeError> {
    match catalog::build(type_name, params.clone())? {
        Built::Node(node) => Ok(node),
        Built::Source(_) => Err(NodeError::InvalidInput {
            node: type_name,
            reason: "is a source, not a processing node".into(),
        }),
    }
}
