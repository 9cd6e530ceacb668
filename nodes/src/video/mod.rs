//! Video nodes.

use crate::catalog::NodeType;

/// The video node types.
pub(crate) const TYPES: &[NodeType] = &[];
