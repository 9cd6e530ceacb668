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
    pub(crate) host: Option<Caller>,
    pub(crate) grants: HashMap<String, Grants>,
    /// Weak: extensions reach each other, but only their handles keep them alive.
    pub(crate) extensions: RwLock<HashMap<String, WeakCaller>>,
}

impl HostRouter {
    pub(crate) fn add_extension(&self, name: &str, caller: &Caller) {
        self.extensions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), caller.downgrade());
    }
}

impl Router for HostRouter {
    fn route(&self, from: &str, target: &Target) -> Result<Caller, CallError> {
        let denied = || CallError::PermissionDenied {
            caller: from.to_owned(),
            target: target.to_string(),
        };
        if !self.grants.get(from).is_some_and(|g| g.allows(target)) {
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
                .and_then(WeakCaller::upgrade),
        };
        // Granted (so declared) but not there (not started, or failed to): it is down.
        found.ok_or(CallError::ActorStopped)
    }
}
