//! The name of a cached venv: a hash of everything that makes two venvs interchangeable.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::interpreter::Interpreter;

/// Hex digits of the hash kept in a key: 64 bits, ample for one machine's cache.
const HASH_CHARS: usize = 16;

/// Names one cached venv, and its directory: `cpython-311-1f2e3d4c5b6a7988`. Equal keys
/// mean the same interpreter build, the same normalised requirements, the same
/// `system_site_packages` and the same troupe package (version and build: two builds that
/// would provision different child modules never share a venv, so neither can start a
/// child with the other's module).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvKey(String);

/// Serialised into the hash; a struct (not a map) so the order never depends on features.
#[derive(Serialize)]
struct KeyMaterial<'a> {
    scheme: u32,
    troupe: &'static str,
    package: &'static str,
    implementation: &'a str,
    version: &'a str,
    platform: &'a str,
    dependencies: &'a [String],
    system_site_packages: bool,
}

impl EnvKey {
    /// The key for normalised `dependencies` on `interpreter`.
    pub(crate) fn derive(
        interpreter: &Interpreter,
        dependencies: &[String],
        system_site_packages: bool,
    ) -> Self {
        let material = KeyMaterial {
            scheme: 2,
            troupe: env!("CARGO_PKG_VERSION"),
            package: crate::provision::stamp(),
            implementation: &interpreter.implementation,
            version: &interpreter.version,
            platform: &interpreter.platform,
            dependencies,
            system_site_packages,
        };
        // Serialising plain strings, bools and numbers cannot fail.
        let bytes = serde_json::to_vec(&material).unwrap_or_default();
        let digest = Sha256::digest(&bytes);
        let hash: String = digest
            .iter()
            .flat_map(|b| [b >> 4, b & 0xf])
            .take(HASH_CHARS)
            .map(|nibble| char::from_digit(u32::from(nibble), 16).unwrap_or('0'))
            .collect();
        let tag = interpreter
            .cache_tag
            .as_deref()
            .unwrap_or(&interpreter.implementation);
        let tag: String = tag
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        Self(format!("{tag}-{hash}"))
    }

    /// Reads a key back, e.g. a directory name or a `troupe env clean <key>` argument;
    /// `None` for anything that could not have been produced by troupe (so it never names
    /// a path outside the cache).
    pub fn parse(text: &str) -> Option<Self> {
        let plausible = !text.is_empty()
            && text.len() <= 96
            && text.contains('-')
            && !text.starts_with('-')
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        plausible.then(|| Self(text.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn cpython(version: &str) -> Interpreter {
        Interpreter {
            version: version.to_owned(),
            implementation: "cpython".to_owned(),
            cache_tag: Some("cpython-311".to_owned()),
            platform: "linux-x86_64".to_owned(),
            executable: PathBuf::from("/usr/bin/python3"),
            scripts: None,
        }
    }

    #[test]
    fn keys_are_stable_and_separate_what_matters() {
        let py = cpython("3.11.7 (main) [GCC 12.2.0]");
        let deps = vec!["six==1.16.0".to_owned()];
        let key = EnvKey::derive(&py, &deps, false);
        assert_eq!(key, EnvKey::derive(&py, &deps, false));
        assert!(key.as_str().starts_with("cpython-311-"));
        assert_eq!(EnvKey::parse(key.as_str()), Some(key.clone()));
        assert_ne!(key, EnvKey::derive(&py, &deps, true));
        assert_ne!(key, EnvKey::derive(&py, &[], false));
        let other = cpython("3.11.8 (main) [GCC 12.2.0]");
        assert_ne!(key, EnvKey::derive(&other, &deps, false));
    }

    #[test]
    fn parse_rejects_paths() {
        assert_eq!(EnvKey::parse("../etc"), None);
        assert_eq!(EnvKey::parse("a/b-c"), None);
        assert_eq!(EnvKey::parse("-rf"), None);
        assert_eq!(EnvKey::parse("x.lock"), None);
    }
}
