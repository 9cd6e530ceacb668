//! The host's [`Router`]: grants first, then the registry of singletons and extensions.

use std::collections::HashMap;
use std::sync::RwLock;

use troupe_bridge_python::extension::Router;
use troupe_protocol::Target;
use troupe_runtime::{Caller, Registry, WeakCaller};
use troupe_value::CallError;

use super::grants::Grants;

#[derive(Debug, Default)]
pub(crate) struct HostRouter {
    pub(crate) singletons: Registry,
    host: Option<Caller>,
    /// Each extension's grants, from before it starts until it is stopped.
    grants: RwLock<HashMap<String, Grants>>,
    /// Weak: extensions reach each other, but only their handles keep them alive.
    extensions: RwLock<HashMap<String, WeakCaller>>,
    /// Extensions served elsewhere (another host's), kept while the host runs.
    remote: HashMap<String, Caller>,
}

impl HostRouter {
    pub(crate) fn new(singletons: Registry, host: Option<Caller>) -> HostRouter {
        HostRouter {
            singletons,
            host,
            ..HostRouter::default()
        }
    }

    /// Routes calls to extension `name` to `caller` (served elsewhere), when granted.
    pub(crate) fn add_remote(&mut self, name: &str, caller: Caller) {
        self.remote.insert(name.to_owned(), caller);
    }

    /// The extensions served elsewhere.
    pub(crate) fn remote(&self) -> &HashMap<String, Caller> {
        &self.remote
    }

    /// Gives extension `name` its grants; `false` (and nothing changes) if it has some.
    pub(crate) fn grant(&self, name: &str, grants: Grants) -> bool {
        let mut all = self.grants.write().unwrap_or_else(|p| p.into_inner());
        if all.contains_key(name) {
            return false;
        }
        all.insert(name.to_owned(), grants);
        true
    }

    pub(crate) fn add_extension(&self, name: &str, caller: &Caller) {
        self.extensions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), caller.downgrade());
    }

    /// Forgets extension `name`: its grants and its address.
    pub(crate) fn forget(&self, name: &str) {
        self.grants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        self.extensions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}

impl Router for HostRouter {
    fn route(&self, from: &str, target: &Target) -> Result<Caller, CallError> {
        let denied = || CallError::PermissionDenied {
            caller: from.to_owned(),
            target: target.to_string(),
        };
        let granted = self
            .grants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(from)
            .is_some_and(|g| g.allows(target));
        if !granted {
            return Err(denied());
        }
        let found = match target {
            Target::Host => {
                return self.host.clone().ok_or_else(|| CallError::NotFound {
                    target: target.to_string(),
                });
            }
            Target::Singleton(name) => self.singletons.caller(name).ok(),
            Target::Extension(name) => self
                .extensions
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(name)
                .and_then(WeakCaller::upgrade)
                .or_else(|| self.remote.get(name).cloned()),
        };
        // Granted (so declared) but not there (not started, or failed to): it is down.
        found.ok_or(CallError::ActorStopped)
    }
}
