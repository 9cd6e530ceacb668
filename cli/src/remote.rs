//! The manifest's remote hosts as `troupe run` and `troupe listen` reach them
//! ([`troupe_cluster::bind`]), said on stderr as each is connected.

use troupe_cluster::Bound;
use troupe_manifest::Manifest;

use crate::error::CliError;

/// Connects to the hosts `manifest`'s remote extensions name, and binds those extensions.
pub(crate) async fn bind(manifest: &Manifest) -> Result<Bound, CliError> {
    let bound = troupe_cluster::bind(manifest).await?;
    for host in &bound.hosts {
        eprintln!(
            "[{}] connected: troupe {}, serving {}",
            host.name(),
            host.hello().troupe_version,
            host.hello().extensions.join(", ")
        );
    }
    Ok(bound)
}
