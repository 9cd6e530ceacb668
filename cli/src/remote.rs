//! The manifest's remote hosts as `troupe run` and `troupe listen` reach them
//! ([`troupe_cluster::bind`]), said on stderr as each is connected.

use troupe_cluster::Bound;
use troupe_manifest::Manifest;

use crate::error::CliError;

/// Connects to the hosts `manifest`'s remote extensions and nodes name, and binds them.
pub(crate) async fn bind(manifest: &Manifest) -> Result<Bound, CliError> {
    let bound = troupe_cluster::bind(manifest).await?;
    for host in &bound.hosts {
        let hello = host.hello();
        eprintln!(
            "[{}] connected: troupe {}, serving [{}], nodes [{}]",
            host.name(),
            hello.troupe_version,
            hello.extensions.join(", "),
            hello.nodes.join(", ")
        );
    }
    Ok(bound)
}
