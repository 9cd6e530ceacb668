//! What an extension may call.

use std::collections::BTreeSet;

use troupe_protocol::Target;

/// The calls one extension may make besides answering its own. Everything not granted is
/// refused with `CallError::PermissionDenied` and logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// Whether it may call the host (`troupe.host`). Default: yes.
    pub host: bool,
    /// Singletons it may call by name.
    pub singletons: BTreeSet<String>,
    /// Other extensions it may call by name.
    pub extensions: BTreeSet<String>,
}

impl Default for Grants {
    fn default() -> Self {
        Grants {
            host: true,
            singletons: BTreeSet::new(),
            extensions: BTreeSet::new(),
        }
    }
}

impl Grants {
    /// The host only.
    pub fn host_only() -> Grants {
        Grants::default()
    }

    /// Nothing at all, not even the host.
    pub fn none() -> Grants {
        Grants {
            host: false,
            ..Grants::default()
        }
    }

    /// Adds singletons.
    pub fn singletons<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Grants {
        self.singletons.extend(names.into_iter().map(Into::into));
        self
    }

    /// Adds extensions.
    pub fn extensions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Grants {
        self.extensions.extend(names.into_iter().map(Into::into));
        self
    }

    /// Whether `target` is granted.
    pub fn allows(&self, target: &Target) -> bool {
        match target {
            Target::Host => self.host,
            Target::Singleton(name) => self.singletons.contains(name),
            Target::Extension(name) => self.extensions.contains(name),
        }
    }
}
