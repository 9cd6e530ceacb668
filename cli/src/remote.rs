//! The manifest's remote hosts as `troupe run` reaches them: each `[hosts.NAME]` that an
//! extension names is connected to and probed at start, and each remote extension is bound
//! to a caller, so a wrong endpoint, refused credentials or an extension the host does not
//! serve fail the run at start, not at its first call.

use indexmap::IndexMap;
use troupe_cluster::{ClusterError, Credentials, Endpoint, HostSpec, RemoteHost};
use troupe_manifest::{HostManifest, Manifest, NodeBody};
use troupe_runtime::Caller;

use crate::error::CliError;

/// The remote hosts of a run and the callers bound to their extensions; they stay
/// connected while this lives.
#[derive(Debug, Default)]
pub(crate) struct RemoteExtensions {
    /// Extension name to its caller.
    pub(crate) callers: IndexMap<String, Caller>,
    _hosts: Vec<RemoteHost>,
}

/// What `troupe_cluster` needs of a `[hosts.NAME]` table.
pub(crate) fn host_spec(host: &HostManifest) -> Result<HostSpec, ClusterError> {
    let connect = host
        .connect
        .iter()
        .map(|e| e.parse::<Endpoint>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut spec = HostSpec::new(&host.name, connect);
    if let Some(timeout) = host.call_timeout {
        spec.call_timeout = timeout;
    }
    spec.credentials = host
        .credentials
        .as_ref()
        .map(|(user, password)| Credentials {
            user: user.clone(),
            password: password.clone(),
        });
    Ok(spec)
}

/// Connects to the hosts `manifest`'s remote extensions name, and binds those extensions.
/// Python nodes of pipeline `pipeline` on a remote extension are refused (not yet
/// supported: they need streamed calls across hosts).
pub(crate) async fn bind(
    manifest: &Manifest,
    pipeline: Option<&str>,
) -> Result<RemoteExtensions, CliError> {
    let mut bound = RemoteExtensions::default();
    if let Some(pipeline) = pipeline.and_then(|name| manifest.pipelines.get(name)) {
        for node in &pipeline.nodes {
            if let NodeBody::Python(spec) = &node.body
                && let Some(host) = manifest
                    .extensions
                    .get(&spec.extension)
                    .and_then(|e| e.host.as_ref())
            {
                return Err(CliError::RemotePythonNode {
                    node: node.id.clone(),
                    extension: spec.extension.clone(),
                    host: host.clone(),
                });
            }
        }
    }
    let mut hosts: IndexMap<&str, RemoteHost> = IndexMap::new();
    for (extension, host) in manifest.remote_extensions() {
        if !hosts.contains_key(host.name.as_str()) {
            let remote = RemoteHost::connect(host_spec(host)?).await?;
            eprintln!(
                "[{}] connected: troupe {}, serving {}",
                host.name,
                remote.hello().troupe_version,
                remote.hello().extensions.join(", ")
            );
            hosts.insert(&host.name, remote);
        }
        if let Some(remote) = hosts.get(host.name.as_str()) {
            let caller = remote.extension(&extension.name)?;
            bound.callers.insert(extension.name.clone(), caller);
        }
    }
    bound._hosts = hosts.into_values().collect();
    Ok(bound)
}
