//! Audio nodes.

use crate::catalog::NodeType;

/// The audio node types.
pub(crate) const TYPES: &[NodeType] = &[];
