//! `[[pipelines.NAME.nodes]]`: one node, built-in or python.

use std::path::Path;

use troupe_host::extension_host::PythonNodeSpec;
use troupe_nodes::catalog::{self, Built};
use troupe_nodes::{NodeError, ParamError};
use troupe_pipeline::ErrorPolicy;
use troupe_runtime::MAX_CAPACITY;
use troupe_runtime::supervision::RestartSpec;
use troupe_value::Map;

use crate::document::{Document, KeyPath};
use crate::error::{ManifestError, ManifestErrorKind};
use crate::raw::{RawErrorPolicy, RawNode};
use crate::restart::restart_spec;
use crate::value::{check_params, param_of, to_value};

/// The node type that runs a method of a Python extension.
pub const PYTHON_NODE_TYPE: &str = "python";

/// The type of a source the host program feeds (a Python host's `Pipeline.input`, say).
pub const HOST_INPUT_TYPE: &str = "host.input";

/// The type of a node the host program supplies (a Python host's `Pipeline.callable`, say).
pub const HOST_NODE_TYPE: &str = "host.node";

/// The most calls a python node may have in flight at once (its `concurrency`).
pub const MAX_CONCURRENCY: usize = 256;

/// One node of a pipeline, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeManifest {
    /// Its id, unique in its pipeline.
    pub id: String,
    /// What it runs.
    pub body: NodeBody,
    /// Its mailbox's data-lane capacity; `None`: the pipeline's, or
    /// [`DEFAULT_NODE_CAPACITY`](troupe_pipeline::DEFAULT_NODE_CAPACITY).
    pub capacity: Option<usize>,
    /// What an error in it does to the run (its own, else the pipeline's).
    pub error_policy: ErrorPolicy,
    /// How it comes back after a crash (its own, else the pipeline's, else
    /// [`RestartSpec::default`]); `None` for sources, which are not restarted.
    pub restart: Option<RestartSpec>,
    /// The `[hosts.NAME]` that runs it (a built-in processing node only); `None`: here.
    pub host: Option<String>,
}

/// What a node runs.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeBody {
    /// A node type of the [`troupe_nodes::catalog`].
    Builtin {
        /// The catalog name (`"audio.resample"`).
        type_name: &'static str,
        /// Its parameters, checked against the catalog's specs; relative paths already
        /// made relative to the manifest's directory.
        params: Map,
        /// Whether it is a source.
        is_source: bool,
    },
    /// A method of a Python extension (`type = "python"`).
    Python(PythonNodeSpec),
    /// A node the host program adds itself (`type = "host.input"`: a source it feeds;
    /// `type = "host.node"`: a node it supplies). [`PipelineLoader::builder`] leaves it out
    /// for the program to add under its id; [`PipelineLoader::build`] refuses it.
    ///
    /// [`PipelineLoader::builder`]: crate::PipelineLoader::builder
    /// [`PipelineLoader::build`]: crate::PipelineLoader::build
    Supplied {
        /// Whether it is a source.
        is_source: bool,
    },
}

/// What a node may name: the manifest's extensions and hosts.
pub(crate) struct Known<'a> {
    /// Whether the manifest declares this extension.
    pub(crate) extension: &'a dyn Fn(&str) -> bool,
    /// Whether the manifest declares this `[hosts.NAME]`.
    pub(crate) host: &'a dyn Fn(&str) -> bool,
}

/// Defaults a pipeline gives its nodes.
pub(crate) struct NodeDefaults {
    pub(crate) error_policy: ErrorPolicy,
    pub(crate) restart: RestartSpec,
}

pub(crate) fn error_policy(raw: RawErrorPolicy) -> ErrorPolicy {
    match raw {
        RawErrorPolicy::FailPipeline => ErrorPolicy::FailPipeline,
        RawErrorPolicy::SkipItem => ErrorPolicy::SkipItem,
    }
}

impl NodeManifest {
    /// Checks the node found at `path`. `known` says which extensions and hosts the
    /// manifest declares; `base` is the manifest's directory.
    pub(crate) fn from_raw(
        raw: RawNode,
        path: &KeyPath,
        defaults: &NodeDefaults,
        known: &Known<'_>,
        base: &Path,
        document: &Document,
    ) -> Result<NodeManifest, ManifestError> {
        let invalid = |key: KeyPath, reason: String| {
            document.error(&key, ManifestErrorKind::Invalid { reason })
        };
        if raw.id.is_empty() {
            return Err(invalid(path.key("id"), "must not be empty".into()));
        }
        if let Err(reason) = check_capacity(raw.capacity) {
            return Err(invalid(path.key("capacity"), reason));
        }
        let mut params: Map = raw
            .params
            .into_iter()
            .map(|(k, v)| (k, to_value(v)))
            .collect();
        let body = if raw.type_name == HOST_INPUT_TYPE || raw.type_name == HOST_NODE_TYPE {
            if !params.is_empty() {
                return Err(invalid(
                    path.key("params"),
                    format!("a {} node takes no params", raw.type_name),
                ));
            }
            NodeBody::Supplied {
                is_source: raw.type_name == HOST_INPUT_TYPE,
            }
        } else if raw.type_name == PYTHON_NODE_TYPE {
            let required = |value: Option<String>, key: &str| {
                value.filter(|v| !v.is_empty()).ok_or_else(|| {
                    document.error(
                        path,
                        ManifestErrorKind::Invalid {
                            reason: format!("a python node needs `{key}`"),
                        },
                    )
                })
            };
            let extension = required(raw.extension, "extension")?;
            let method = required(raw.method, "method")?;
            if !(known.extension)(&extension) {
                return Err(document.error(
                    &path.key("extension"),
                    ManifestErrorKind::UnknownExtension { name: extension },
                ));
            }
            let concurrency = raw.concurrency.unwrap_or(1);
            if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
                return Err(invalid(
                    path.key("concurrency"),
                    format!("must be from 1 to {MAX_CONCURRENCY}"),
                ));
            }
            NodeBody::Python(PythonNodeSpec {
                node: raw.id.clone(),
                extension,
                method,
                generator: raw.generator.unwrap_or(false),
                flush: raw.flush.unwrap_or(false),
                concurrency,
                params,
            })
        } else {
            let node_type = catalog::find(&raw.type_name).map_err(|_| {
                document.error(
                    &path.key("type"),
                    ManifestErrorKind::UnknownNodeType {
                        name: raw.type_name.clone(),
                    },
                )
            })?;
            for (key, given) in [
                ("extension", raw.extension.is_some()),
                ("method", raw.method.is_some()),
                ("generator", raw.generator.is_some()),
                ("flush", raw.flush.is_some()),
                ("concurrency", raw.concurrency.is_some()),
            ] {
                if given {
                    return Err(invalid(
                        path.key(key),
                        format!("only python nodes take `{key}`"),
                    ));
                }
            }
            check_params(node_type, &mut params, base)
                .map_err(|error| param_error(error, path, document))?;
            if node_type.is_source && raw.restart.is_some() {
                return Err(invalid(
                    path.key("restart"),
                    "sources are not restarted (a new one would start the stream over)".into(),
                ));
            }
            NodeBody::Builtin {
                type_name: node_type.name,
                params,
                is_source: node_type.is_source,
            }
        };
        if let Some(host) = &raw.host {
            let reason = match &body {
                NodeBody::Builtin {
                    is_source: false, ..
                } => None,
                NodeBody::Python(_) => {
                    Some("a python node runs where its extension runs: give the extension `host`")
                }
                NodeBody::Builtin { .. } | NodeBody::Supplied { .. } => Some(
                    "only built-in processing nodes run on other hosts (sources and nodes \
                     the program supplies run here)",
                ),
            };
            if let Some(reason) = reason {
                return Err(invalid(path.key("host"), reason.into()));
            }
            if !(known.host)(host) {
                return Err(document.error(
                    &path.key("host"),
                    ManifestErrorKind::UnknownHost { name: host.clone() },
                ));
            }
        }
        let restart = match (&raw.restart, body.is_source()) {
            (_, true) => None,
            (Some(restart), false) => Some(restart_spec(restart, &path.key("restart"), document)?),
            (None, false) => Some(defaults.restart),
        };
        let node = NodeManifest {
            id: raw.id,
            body,
            capacity: raw.capacity,
            error_policy: raw.error_policy.map_or(defaults.error_policy, error_policy),
            restart,
            host: raw.host,
        };
        // A processing node is built once here, so that what only its constructor checks
        // (ranges, combinations) is found with the rest. Built-in processing nodes touch no
        // files before `initialize`; sources open their input, so they are left for the run.
        if let NodeBody::Builtin {
            is_source: false, ..
        } = node.body
        {
            node.make(path, document)?;
        }
        Ok(node)
    }

    /// Builds a built-in node (`None` for a python node), errors located under `path`.
    pub(crate) fn make(
        &self,
        path: &KeyPath,
        document: &Document,
    ) -> Result<Option<Built>, ManifestError> {
        let NodeBody::Builtin {
            type_name, params, ..
        } = &self.body
        else {
            return Ok(None);
        };
        catalog::build(type_name, params.clone())
            .map(Some)
            .map_err(|error| node_error(error, path, document))
    }
}

impl NodeBody {
    /// Whether the node is a source (takes no input).
    pub fn is_source(&self) -> bool {
        matches!(
            self,
            NodeBody::Builtin {
                is_source: true,
                ..
            } | NodeBody::Supplied { is_source: true }
        )
    }

    /// The node's type: its catalog name, or [`PYTHON_NODE_TYPE`].
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeBody::Builtin { type_name, .. } => type_name,
            NodeBody::Python(_) => PYTHON_NODE_TYPE,
            NodeBody::Supplied { is_source: true } => HOST_INPUT_TYPE,
            NodeBody::Supplied { is_source: false } => HOST_NODE_TYPE,
        }
    }
}

fn param_error(error: ParamError, path: &KeyPath, document: &Document) -> ManifestError {
    let at = match param_of(&error) {
        Some(param) => path.key("params").key(param),
        None => path.clone(),
    };
    document.error(
        &at,
        ManifestErrorKind::BadParameter(NodeError::Params(error)),
    )
}

/// A node's build error, located at its parameter when it is about one.
pub(crate) fn node_error(error: NodeError, path: &KeyPath, document: &Document) -> ManifestError {
    match error {
        NodeError::Params(error) => param_error(error, path, document),
        other => document.error(path, ManifestErrorKind::Node(other)),
    }
}

/// A mailbox capacity from a manifest (node, pipeline or edge), if given, is one a run can
/// make: 1 to [`MAX_CAPACITY`]; else why not.
pub(crate) fn check_capacity(capacity: Option<usize>) -> Result<(), String> {
    match capacity {
        Some(capacity) if !(1..=MAX_CAPACITY).contains(&capacity) => {
            Err(format!("must be from 1 to {MAX_CAPACITY}"))
        }
        _ => Ok(()),
    }
}
