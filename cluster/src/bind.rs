//! A manifest's remote extensions, reached: each `[hosts.NAME]` an extension names is
//! connected to and probed, and each remote extension is bound to a caller (a fail-over one
//! for `hosts = [...]`), so a wrong endpoint, refused credentials or an extension a host
//! does not serve fail at start, not at the first call. `troupe run`, `troupe listen` and a
//! Python program's `troupe.Host` use it alike.

use indexmap::IndexMap;
use troupe_manifest::{HostManifest, Manifest, RemoteNodeSpec};
use troupe_nodes::{Node, NodeError};
use troupe_runtime::Caller;
use troupe_value::CallError;

use crate::edge::RemoteNode;
use crate::endpoint::Endpoint;
use crate::error::ClusterError;
use crate::keys;
use crate::remote::RemoteHost;
use crate::session::{Credentials, HostSpec};

/// A manifest's remote extensions and nodes, bound.
#[derive(Debug, Default)]
pub struct Bound {
    /// Extension name to its caller (the callers keep their hosts' sessions open).
    pub callers: IndexMap<String, Caller>,
    /// Each pipeline node placed on another host, as `PIPELINE/NODE`, to the caller its
    /// batches go through.
    pub nodes: IndexMap<String, Caller>,
    /// The hosts connected to, in manifest order.
    pub hosts: Vec<RemoteHost>,
}

/// What a `[hosts.NAME]` table says of how to reach that host.
pub fn host_spec(host: &HostManifest) -> Result<HostSpec, ClusterError> {
    let connect = host
        .connect
        .iter()
        .map(|e| e.parse::<Endpoint>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut spec = HostSpec::new(&host.name, connect);
    if let Some(timeout) = host.call_timeout {
        spec.call_timeout = timeout;
    }
    if let Some(lease) = host.lease {
        spec.lease = lease;
    }
    spec.tls.clone_from(&host.tls);
    spec.credentials = host
        .credentials
        .as_ref()
        .map(|(user, password)| Credentials {
            user: user.clone(),
            password: password.clone(),
        });
    Ok(spec)
}

/// Connects to every host `manifest`'s remote extensions and nodes name (each once) and
/// binds those extensions and nodes. Call from within an actix system: the callers are its
/// actors.
pub async fn bind(manifest: &Manifest) -> Result<Bound, ClusterError> {
    let mut hosts: IndexMap<&str, RemoteHost> = IndexMap::new();
    let mut callers = IndexMap::new();
    let mut nodes = IndexMap::new();
    for (node, host) in manifest.remote_nodes() {
        if !hosts.contains_key(host.name.as_str()) {
            let remote = RemoteHost::connect(host_spec(host)?).await?;
            hosts.insert(&host.name, remote);
        }
        let caller = hosts[host.name.as_str()].node(&node.pipeline, &node.node)?;
        nodes.insert(keys::node_name(&node.pipeline, &node.node), caller);
    }
    for (extension, serving) in manifest.remote_extensions() {
        for host in &serving {
            if !hosts.contains_key(host.name.as_str()) {
                let remote = RemoteHost::connect(host_spec(host)?).await?;
                hosts.insert(&host.name, remote);
            }
        }
        let remotes: Vec<&RemoteHost> = serving
            .iter()
            .filter_map(|host| hosts.get(host.name.as_str()))
            .collect();
        let caller = match remotes.as_slice() {
            [one] => one.extension(&extension.name)?,
            several => RemoteHost::extension_on_any(
                several,
                &extension.name,
                extension.idempotent.iter().cloned(),
            )?,
        };
        callers.insert(extension.name.clone(), caller);
    }
    Ok(Bound {
        callers,
        nodes,
        hosts: hosts.into_values().collect(),
    })
}

impl Bound {
    /// What makes the pipeline nodes placed on other hosts
    /// ([`PipelineLoader::remote_nodes`](troupe_manifest::PipelineLoader::remote_nodes)):
    /// each instance a [`RemoteNode`], a fresh session of the node there.
    pub fn node_maker(
        &self,
    ) -> impl Fn(&RemoteNodeSpec) -> Result<Box<dyn Node>, NodeError> + Send + Sync + 'static {
        let nodes = self.nodes.clone();
        move |spec| {
            let name = keys::node_name(&spec.pipeline, &spec.node);
            let caller = nodes.get(&name).ok_or_else(|| NodeError::Remote {
                node: name.clone(),
                host: spec.host.clone(),
                source: Box::new(CallError::NotFound {
                    target: format!("node:{name} (not bound)"),
                }),
            })?;
            Ok(Box::new(RemoteNode::new(
                caller.clone(),
                name,
                spec.host.clone(),
                spec.type_name,
            )) as Box<dyn Node>)
        }
    }
}
