//! Every built-in node type, its parameters, and how to build it.

use troupe_value::Map;

use crate::node::{Node, NodeError, Source};
use crate::params::{ParamError, ParamSpec, Params};

/// A built node: a source or a processing node.
pub enum Built {
    /// Produces a stream.
    Source(Box<dyn Source>),
    /// Processes a stream.
    Node(Box<dyn Node>),
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Built::Source(s) => write!(f, "Source({})", s.type_name()),
            Built::Node(n) => write!(f, "Node({})", n.type_name()),
        }
    }
}

/// A node type: its name, what it does, its parameters, and its constructor.
#[derive(Clone, Copy)]
pub struct NodeType {
    /// Name used in manifests (`"audio.resample"`).
    pub name: &'static str,
    /// One line on what it does.
    pub doc: &'static str,
    /// Whether it is a source (takes no input).
    pub is_source: bool,
    /// Its parameters.
    pub params: &'static [ParamSpec],
    /// Builds it from checked parameters.
    pub build: fn(&Params) -> Result<Built, NodeError>,
}

impl std::fmt::Debug for NodeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeType")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Every built-in node type, sorted by name.
pub fn all() -> Vec<&'static NodeType> {
    let mut types: Vec<&'static NodeType> = crate::audio::TYPES
        .iter()
        .chain(crate::video::TYPES)
        .chain(crate::data::TYPES)
        .collect();
    types.sort_by_key(|t| t.name);
    types
}

/// The node type called `name`.
pub fn find(name: &str) -> Result<&'static NodeType, ParamError> {
    all()
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ParamError::UnknownNodeType(name.to_owned()))
}

/// Builds a node of type `name` from `params`, refusing unknown parameters.
pub fn build(name: &str, params: Map) -> Result<Built, NodeError> {
    let node_type = find(name)?;
    let params = Params::new(node_type.name, params);
    params.check_known(node_type.params)?;
    (node_type.build)(&params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_default_builds() {
        let types = all();
        for pair in types.windows(2) {
            assert_ne!(pair[0].name, pair[1].name);
        }
        assert!(matches!(
            build("no.such", Map::new()),
            Err(NodeError::Params(ParamError::UnknownNodeType(_)))
        ));
    }
}
