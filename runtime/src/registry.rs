//! A registry of actors by name.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix::{Actor, Context};
use thiserror::Error;

use crate::address::{Address, Caller};

/// Why a registry operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryError {
    /// A live actor is already registered under that name.
    #[error("an actor named {0:?} is already registered")]
    Duplicate(String),
    /// No live actor has that name.
    #[error("no actor named {0:?}")]
    NotFound(String),
    /// The actor under that name is of another type.
    #[error("actor {name:?} is a {found}, not a {expected}")]
    WrongType {
        /// The name looked up.
        name: String,
        /// The type asked for.
        expected: &'static str,
        /// The type registered.
        found: &'static str,
    },
    /// The actor under that name does not answer dynamic calls.
    #[error("actor {0:?} does not answer calls")]
    NotCallable(String),
}

struct Entry {
    address: Option<Box<dyn Any + Send + Sync>>,
    caller: Option<Caller>,
    type_name: &'static str,
    is_closed: Box<dyn Fn() -> bool + Send + Sync>,
}

/// Actors by name: typed [`Address`]es and dynamic [`Caller`]s. Cheap to clone (shared).
///
/// An actor that has stopped for good no longer counts: looking it up says
/// [`RegistryError::NotFound`] and its name may be registered again.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Arc<RwLock<HashMap<String, Entry>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    fn insert(&self, name: String, entry: Entry) -> Result<(), RegistryError> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.get(&name).is_some_and(|e| !(e.is_closed)()) {
            return Err(RegistryError::Duplicate(name));
        }
        entries.insert(name, entry);
        Ok(())
    }

    fn with_entry<T>(
        &self,
        name: &str,
        f: impl FnOnce(&Entry) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        match entries.get(name) {
            Some(entry) if !(entry.is_closed)() => f(entry),
            _ => Err(RegistryError::NotFound(name.to_owned())),
        }
    }

    fn insert_address<A: Actor<Context = Context<A>>>(
        &self,
        name: String,
        address: Address<A>,
        caller: Option<Caller>,
    ) -> Result<(), RegistryError> {
        let probe = address.clone();
        self.insert(
            name,
            Entry {
                address: Some(Box::new(address)),
                caller,
                type_name: std::any::type_name::<A>(),
                is_closed: Box::new(move || probe.is_closed()),
            },
        )
    }

    /// Registers a typed address under `name`.
    pub fn register<A: Actor<Context = Context<A>>>(
        &self,
        name: impl Into<String>,
        address: Address<A>,
    ) -> Result<(), RegistryError> {
        self.insert_address(name.into(), address, None)
    }

    /// Registers a typed address that also answers [`Call`](crate::Call)s under `name`.
    pub fn register_callable<A>(
        &self,
        name: impl Into<String>,
        address: Address<A>,
    ) -> Result<(), RegistryError>
    where
        A: Actor<Context = Context<A>> + actix::Handler<crate::Call>,
    {
        let caller = address.caller();
        self.insert_address(name.into(), address, Some(caller))
    }

    /// Registers a dynamic caller (e.g. a bridged extension) under `name`.
    pub fn register_caller(
        &self,
        name: impl Into<String>,
        caller: Caller,
    ) -> Result<(), RegistryError> {
        let probe = caller.clone();
        self.insert(
            name.into(),
            Entry {
                address: None,
                caller: Some(caller),
                type_name: "Caller",
                is_closed: Box::new(move || probe.is_closed()),
            },
        )
    }

    /// The typed address registered under `name`.
    pub fn lookup<A: Actor<Context = Context<A>>>(
        &self,
        name: &str,
    ) -> Result<Address<A>, RegistryError> {
        self.with_entry(name, |entry| {
            entry
                .address
                .as_ref()
                .and_then(|a| a.downcast_ref::<Address<A>>())
                .cloned()
                .ok_or_else(|| RegistryError::WrongType {
                    name: name.to_owned(),
                    expected: std::any::type_name::<A>(),
                    found: entry.type_name,
                })
        })
    }

    /// The dynamic caller registered under `name`.
    pub fn caller(&self, name: &str) -> Result<Caller, RegistryError> {
        self.with_entry(name, |entry| {
            entry
                .caller
                .clone()
                .ok_or_else(|| RegistryError::NotCallable(name.to_owned()))
        })
    }

    /// Removes `name`; says whether it was there.
    pub fn unregister(&self, name: &str) -> bool {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .is_some()
    }

    /// The names of live actors, sorted.
    pub fn names(&self) -> Vec<String> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = entries
            .iter()
            .filter(|(_, e)| !(e.is_closed)())
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }
}
