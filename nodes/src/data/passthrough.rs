//! `data.passthrough`: emits every input unchanged.

use troupe_value::Value;

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, Node, NodeError};
use crate::params::Params;

const NAME: &str = "data.passthrough";

/// The `data.passthrough` node type.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Emits every input unchanged.",
    is_source: false,
    params: &[],
    build,
};

fn build(_params: &Params) -> Result<Built, NodeError> {
    Ok(Built::Node(Box::new(Passthrough)))
}

/// Emits every input unchanged: a placeholder in a graph, or a point to attach to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Passthrough;

impl Node for Passthrough {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        out.emit(input);
        Ok(())
    }
}
