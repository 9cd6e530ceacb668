//! `troupe check [MANIFEST]`: what this machine's sandboxes can have, and a manifest read
//! and checked; nothing runs.

use std::path::PathBuf;

use troupe_bridge_python::process::sandbox::{Bubblewrap, Support};
use troupe_manifest::{ExtensionManifest, Manifest, NodeBody};

use crate::error::CliError;

/// Arguments of `troupe check`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The manifest (TOML); without one, only the machine is checked.
    manifest: Option<PathBuf>,
}

/// Prints what the machine gives sandboxes, then checks the manifest and prints what it
/// holds.
pub(crate) fn check(args: &CheckArgs) -> Result<(), CliError> {
    print_support(&Support::probe());
    match &args.manifest {
        Some(manifest) => check_manifest(manifest),
        None => Ok(()),
    }
}

/// What the kernel and the tools here give an extension's sandbox.
fn print_support(support: &Support) {
    println!("sandbox support on this machine:");
    match support.landlock_abi {
        Some(abi) => println!("  landlock:   ABI {abi}"),
        None => println!("  landlock:   none (default loses its file, TCP and signal rules)"),
    }
    let yes_no = |yes: bool| if yes { "yes" } else { "no" };
    println!("  seccomp:    {}", yes_no(support.seccomp));
    match &support.bubblewrap {
        Bubblewrap::Works(path) => println!("  bubblewrap: works ({})", path.display()),
        Bubblewrap::Missing => println!("  bubblewrap: not on PATH (strict cannot start)"),
        Bubblewrap::Broken { path, reason } => println!(
            "  bubblewrap: {} fails (strict cannot start): {reason}",
            path.display()
        ),
    }
    match &support.cgroup {
        Some(dir) => println!("  cgroup:     writable ({})", dir.display()),
        None => println!("  cgroup:     none writable (strict runs without one)"),
    }
}

fn check_manifest(path: &std::path::Path) -> Result<(), CliError> {
    let manifest = Manifest::load(path)?;
    let mut problems: Vec<String> = manifest
        .extensions
        .iter()
        .filter(|(_, extension)| extension.served_by(None))
        .filter_map(|(name, extension)| missing_code(name, extension))
        .collect();
    // Links this build does not have (their settings would be silently ignored).
    problems.extend(manifest.hosts.values().filter_map(|host| {
        troupe_cluster::host_spec(host)
            .and_then(|spec| spec.check())
            .err()
            .map(|error| format!("host `{}`: {error}", host.name))
    }));
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{}: {problem}", path.display());
        }
        return Err(CliError::Check {
            problems: problems.len(),
        });
    }
    println!("{}: ok", path.display());
    for (name, extension) in &manifest.extensions {
        if !extension.hosts.is_empty() {
            let hosts = extension.hosts.join(", then ");
            println!(
                "  extension {name}: module {} on host {hosts}",
                extension.module
            );
            continue;
        }
        println!(
            "  extension {name}: module {} ({} dependencies, restart {:?}, sandbox {:?})",
            extension.module,
            extension.dependencies.len(),
            extension.restart.policy,
            extension.sandbox.level
        );
    }
    for (name, host) in &manifest.hosts {
        println!("  host {name}: {}", host.connect.join(", "));
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
                NodeBody::Supplied { .. } => {
                    format!("{} (supplied by the host program)", node.body.type_name())
                }
            };
            println!("    {:<16} {what}", node.id);
        }
    }
    Ok(())
}

/// What is wrong with where `extension`'s code should be: a `path` that is not a
/// directory, or a module that is neither in it nor (with no dependencies to bring it)
/// anywhere a run would find it.
fn missing_code(name: &str, extension: &ExtensionManifest) -> Option<String> {
    let dir = extension.path.as_ref()?;
    if !dir.is_dir() {
        return Some(format!(
            "extension `{name}`: `path` {} is not a directory",
            dir.display()
        ));
    }
    let top = extension.module.split('.').next().unwrap_or_default();
    let found = dir.join(format!("{top}.py")).is_file() || dir.join(top).is_dir();
    (!found && extension.dependencies.is_empty()).then(|| {
        format!(
            "extension `{name}`: module `{}` is not in {} (no `{top}.py` or `{top}/`), and no \
             dependency would install it",
            extension.module,
            dir.display()
        )
    })
}
