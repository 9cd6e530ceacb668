//! `troupe check MANIFEST`: read and check a manifest, run nothing.

use std::path::PathBuf;

use troupe_manifest::{Manifest, NodeBody};

use crate::error::CliError;

/// Arguments of `troupe check`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The manifest (TOML).
    manifest: PathBuf,
}

/// Checks the manifest and prints what it holds.
pub(crate) fn check(args: &CheckArgs) -> Result<(), CliError> {
    let manifest = Manifest::load(&args.manifest)?;
    println!("{}: ok", args.manifest.display());
    for (name, extension) in &manifest.extensions {
        println!(
            "  extension {name}: module {} ({} dependencies, restart {:?})",
            extension.module,
            extension.dependencies.len(),
            extension.restart.policy
        );
    }
    for (name, singleton) in &manifest.singletons {
        println!("  singleton {name}: kind {}", singleton.kind);
    }
    for (name, pipeline) in &manifest.pipelines {
        println!(
            "  pipeline {name}: {} nodes, {} edges",
            pipeline.nodes.len(),
            pipeline.edges.len()
        );
        for node in &pipeline.nodes {
            let what = match &node.body {
                NodeBody::Builtin { type_name, .. } => (*type_name).to_owned(),
                NodeBody::Python(spec) => format!("python {}.{}", spec.extension, spec.method),
            };
            println!("    {:<16} {what}", node.id);
        }
    }
    Ok(())
}
