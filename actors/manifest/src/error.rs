//! Manifest errors: what is wrong, and where (file, line, key).

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;
use troupe_nodes::NodeError;
use troupe_pipeline::PipelineError;

/// Where in a manifest something is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The manifest file.
    pub file: PathBuf,
    /// The line (from 1) of the key, when the key is in the file.
    pub line: Option<usize>,
    /// The dotted key path, e.g. `pipelines.audio.nodes[1].params.rate`; empty for the
    /// whole file.
    pub key: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        Ok(())
    }
}

/// A manifest that cannot be read, checked or built, and where.
#[derive(Debug, Error)]
#[error("{location}: {kind}")]
pub struct ManifestError {
    /// Where.
    pub location: Location,
    /// What (boxed: errors stay small on the happy path).
    #[source]
    pub kind: Box<ManifestErrorKind>,
}

impl ManifestError {
    pub(crate) fn new(location: Location, kind: ManifestErrorKind) -> ManifestError {
        ManifestError {
            location,
            kind: Box::new(kind),
        }
    }

    /// What is wrong, to branch on.
    pub fn kind(&self) -> &ManifestErrorKind {
        &self.kind
    }
}

/// What is wrong with a manifest.
#[derive(Debug, Error)]
pub enum ManifestErrorKind {
    /// The file could not be read.
    #[error("cannot read the manifest: {0}")]
    Read(#[source] std::io::Error),
    /// The text is not TOML, or a value has the wrong shape: a missing or unknown key, a
    /// wrong type, a word that is not one of the allowed ones.
    #[error("{message}")]
    Toml {
        /// What the TOML reader said.
        message: String,
    },
    /// `${NAME}` names an environment variable that is not set (and gives no default).
    #[error("environment variable `{var}` is not set")]
    MissingEnv {
        /// The variable.
        var: String,
    },
    /// A `${` with no closing `}`, or with no valid variable name inside.
    #[error(
        "bad substitution in {text:?}: write ${{NAME}} or ${{NAME:-default}}, or $${{ for a literal ${{"
    )]
    BadSubstitution {
        /// The string it is in.
        text: String,
    },
    /// A node's `type` is neither a catalog node type nor `python`.
    #[error("unknown node type `{name}` (see `troupe nodes`)")]
    UnknownNodeType {
        /// The type given.
        name: String,
    },
    /// A node parameter is unknown, missing, of the wrong type or out of range.
    #[error("bad parameter: {0}")]
    BadParameter(#[source] NodeError),
    /// Two nodes of one pipeline share an id.
    #[error("node id `{id}` is used twice")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// An edge names a node the pipeline does not have.
    #[error("no node `{node}` in this pipeline")]
    MissingEndpoint {
        /// The id that names no node.
        node: String,
    },
    /// The edges form a cycle; `path` goes round it and ends where it starts.
    #[error("the edges form a cycle: {}", .path.join(" -> "))]
    Cycle {
        /// Node ids round the cycle, the first repeated at the end.
        path: Vec<String>,
    },
    /// A python node or a grant names an extension the manifest does not declare.
    #[error("no extension `{name}` in this manifest")]
    UnknownExtension {
        /// The name.
        name: String,
    },
    /// An extension's `host` names no `[hosts.NAME]` table of the manifest.
    #[error("no host `{name}` in this manifest (declare it under [hosts.{name}])")]
    UnknownHost {
        /// The name.
        name: String,
    },
    /// A grant names a singleton the manifest does not declare.
    #[error("no singleton `{name}` in this manifest")]
    UnknownSingleton {
        /// The name.
        name: String,
    },
    /// A value has the right type but is not allowed here (a zero limit, an edge into a
    /// source, a restart policy on a source, python keys on a built-in node...).
    #[error("{reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// An extension's `sandbox` setting is not one a sandbox can be made of.
    #[error("{0}")]
    Sandbox(#[source] crate::sandbox::SandboxSettingError),
    /// No pipeline of the name asked for (or several and none named).
    #[error("no pipeline `{name}`; this manifest has: {}", .known.join(", "))]
    UnknownPipeline {
        /// The name asked for (empty: none named).
        name: String,
        /// The pipelines the manifest has.
        known: Vec<String>,
    },
    /// A python node was built without a maker for python nodes
    /// ([`PipelineLoader::python_nodes`](crate::PipelineLoader::python_nodes)).
    #[error("python nodes need an extension host")]
    PythonNodesNeedHost,
    /// A node with `host = "NAME"` was built without a maker for remote nodes
    /// ([`PipelineLoader::remote_nodes`](crate::PipelineLoader::remote_nodes)): the
    /// program is not connected to its host.
    #[error("nodes on other hosts need a connection to them (troupe-cluster)")]
    RemoteNodesNeedCluster,
    /// A `host.input` or `host.node` node was built by [`PipelineLoader::build`](crate::PipelineLoader::build):
    /// only a host program that supplies it can run its pipeline.
    #[error(
        "`{node}` is supplied by the host program (a Python host's troupe.Pipeline); it cannot run here"
    )]
    SuppliedByHost {
        /// The node's id.
        node: String,
    },
    /// Making a node failed for another reason than its parameters (e.g. its input file
    /// cannot be opened).
    #[error("{0}")]
    Node(#[source] NodeError),
    /// The pipeline runtime refused the graph.
    #[error("{0}")]
    Pipeline(#[source] PipelineError),
}
