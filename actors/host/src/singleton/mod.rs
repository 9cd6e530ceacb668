//! Singletons: shared actors, one per name, that extensions and other actors call (a
//! manifest's `[singletons.NAME]` tables).
//!
//! A singleton's `kind` names a factory registered in [`SingletonKinds`]; its
//! [`SingletonSpec::params`] are the factory's parameters. troupe ships `kv` ([`KeyValue`],
//! parameter `capacity`); a host program registers its own kinds with
//! [`SingletonKinds::register`].

mod key_value;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use thiserror::Error;
use troupe_runtime::{ActorBuilder, Caller, Registry, RegistryError};
use troupe_value::{Map, Value};

pub use key_value::KeyValue;

/// A singleton to start: one shared actor, made by the factory registered under `kind`, with
/// free-form parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SingletonSpec {
    /// Its name in the registry; grants refer to it by this name.
    pub name: String,
    /// The kind of singleton, as the host registered it (e.g. `"kv"`).
    pub kind: String,
    /// Its parameters, for the singleton's factory.
    pub params: Map,
}

/// Why a singleton was not started.
#[derive(Debug, Error)]
pub enum SingletonError {
    /// Its `kind` is not registered.
    #[error("singleton {name}: unknown kind {kind:?} (known: {known})")]
    UnknownKind {
        /// The singleton.
        name: String,
        /// The kind asked for.
        kind: String,
        /// The kinds registered, comma-separated.
        known: String,
    },
    /// A parameter is missing, of the wrong type or out of range.
    #[error("singleton {name}: parameter {param}: {reason}")]
    BadParam {
        /// The singleton.
        name: String,
        /// The parameter.
        param: String,
        /// What is wrong.
        reason: String,
    },
    /// Its name is taken in the registry.
    #[error("singleton {name}: {source}")]
    Register {
        /// The singleton.
        name: String,
        /// What the registry said.
        #[source]
        source: RegistryError,
    },
}

/// Makes a singleton from its spec (name, kind, parameters).
pub type SingletonFactory = dyn Fn(&SingletonSpec) -> Result<Caller, SingletonError> + Send + Sync;

/// The singleton kinds a host knows, by name.
#[derive(Clone)]
pub struct SingletonKinds {
    kinds: BTreeMap<String, Arc<SingletonFactory>>,
}

impl std::fmt::Debug for SingletonKinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

impl Default for SingletonKinds {
    fn default() -> Self {
        SingletonKinds::builtin()
    }
}

impl SingletonKinds {
    /// The kinds troupe ships: `kv`.
    pub fn builtin() -> SingletonKinds {
        SingletonKinds {
            kinds: BTreeMap::new(),
        }
        .register("kv", |spec| {
            let capacity = match spec.params.get("capacity") {
                None => None,
                Some(Value::Int(n)) if *n > 0 => usize::try_from(*n).ok(),
                Some(other) => {
                    return Err(SingletonError::BadParam {
                        name: spec.name.clone(),
                        param: "capacity".into(),
                        reason: format!("expected a positive int, got {other:?}"),
                    });
                }
            };
            Ok(ActorBuilder::new(&spec.name)
                .spawn(KeyValue::new(capacity))
                .caller())
        })
    }

    /// Adds (or replaces) kind `kind`.
    pub fn register<F>(mut self, kind: impl Into<String>, factory: F) -> SingletonKinds
    where
        F: Fn(&SingletonSpec) -> Result<Caller, SingletonError> + Send + Sync + 'static,
    {
        self.kinds.insert(kind.into(), Arc::new(factory));
        self
    }

    /// Starts every singleton of `singletons` (a manifest's, say) on the current arbiter and
    /// registers it in `registry` under its name. Stops at the first that cannot start.
    pub fn start_all<'a>(
        &self,
        singletons: impl IntoIterator<Item = &'a SingletonSpec>,
        registry: &Registry,
    ) -> Result<(), SingletonError> {
        for singleton in singletons {
            let factory =
                self.kinds
                    .get(&singleton.kind)
                    .ok_or_else(|| SingletonError::UnknownKind {
                        name: singleton.name.clone(),
                        kind: singleton.kind.clone(),
                        known: self.kinds.keys().cloned().collect::<Vec<_>>().join(", "),
                    })?;
            let caller = factory(singleton)?;
            registry
                .register_caller(&singleton.name, caller)
                .map_err(|source| SingletonError::Register {
                    name: singleton.name.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}
