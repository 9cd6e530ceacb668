//! `troupe nodes [TYPE]`: the built-in node types and their parameters.

use troupe_nodes::catalog::{self, NodeType};

use crate::error::CliError;

/// Arguments of `troupe nodes`.
#[derive(Debug, clap::Args)]
pub(crate) struct NodesArgs {
    /// Show only this node type (e.g. `audio.vad`).
    node_type: Option<String>,
}

/// Prints every node type (or one) with its parameters.
pub(crate) fn nodes(args: &NodesArgs) -> Result<(), CliError> {
    let types = match &args.node_type {
        None => catalog::all(),
        Some(name) => {
            vec![catalog::find(name).map_err(|_| CliError::UnknownNodeType(name.clone()))?]
        }
    };
    for (i, node_type) in types.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", describe(node_type));
    }
    if args.node_type.is_none() {
        println!();
        println!(
            "python  (type = \"python\": a method of a Python extension; keys extension, \
             method, generator, flush, params)"
        );
    }
    Ok(())
}

fn describe(node_type: &NodeType) -> String {
    let role = if node_type.is_source {
        "source"
    } else {
        "node"
    };
    let mut text = format!("{}  ({role}) {}\n", node_type.name, node_type.doc);
    for param in node_type.params {
        let default = match param.default {
            Some(default) => format!("default {default}"),
            None => "required".to_owned(),
        };
        text.push_str(&format!(
            "    {:<16} {} ({default}): {}\n",
            param.name, param.kind, param.doc
        ));
    }
    text
}
