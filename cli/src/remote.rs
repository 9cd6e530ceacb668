//! The manifest's remote hosts as `troupe run` reaches them: each `[hosts.NAME]` that an
//! extension names is connected to and probed at start, and each remote extension is bound
//! to a caller, so a wrong endpoint, refused credentials or an extension the host does not
//! serve fail the run at start, not at its first call. A pipeline's python nodes on a
//! remote extension call it through that caller.

use indexmap::IndexMap;
use troupe_cluster::{ClusterError, Credentials, Endpoint, HostSpec, RemoteHost};
use troupe_host::extension_host::{ExtensionHost, PythonNode};
use troupe_manifest::{HostManifest, Manifest, PipelineLoader};
use troupe_nodes::NodeError;
use troupe_runtime::Caller;
use troupe_value::CallError;

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
pub(crate) async fn bind(manifest: &Manifest) -> Result<RemoteExtensions, CliError> {
    let mut bound = RemoteExtensions::default();
    let mut hosts: IndexMap<&str, RemoteHost> = IndexMap::new();
    for (extension, serving) in manifest.remote_extensions() {
        for host in &serving {
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
        bound.callers.insert(extension.name.clone(), caller);
    }
    bound._hosts = hosts.into_values().collect();
    Ok(bound)
}

impl RemoteExtensions {
    /// `loader` making python nodes from these remote extensions and `host`'s own. A node
    /// whose extension runs on neither fails to build with [`CallError::ActorStopped`].
    pub(crate) fn python_nodes<'m>(
        &self,
        loader: PipelineLoader<'m>,
        host: Option<&ExtensionHost>,
    ) -> PipelineLoader<'m> {
        let remote = self.callers.clone();
        let local = host.map(ExtensionHost::python_nodes);
        loader.python_nodes(move |spec| match (remote.get(&spec.extension), &local) {
            (Some(caller), _) => Ok(Box::new(PythonNode::new(caller.clone(), spec))),
            (None, Some(local)) => local(spec),
            (None, None) => Err(NodeError::Call {
                method: spec.method.clone(),
                source: Box::new(CallError::ActorStopped),
            }),
        })
    }
}
