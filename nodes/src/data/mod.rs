//! Data nodes.

use crate::catalog::NodeType;

/// The data node types.
pub(crate) const TYPES: &[NodeType] = &[];
