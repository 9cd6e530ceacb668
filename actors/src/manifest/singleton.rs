//! `[singletons.NAME]`: a shared actor of a kind the host program registers.

use indexmap::IndexMap;
use troupe_wire::Map;

use super::document::{Document, KeyPath};
use super::error::{ManifestError, ManifestErrorKind};
use super::value::to_value;

/// A singleton as the manifest declares it: one shared actor, made by the host from the
/// Rust type it registered under `kind`, with free-form parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SingletonManifest {
    /// Its name (the table's key); grants refer to it by this name.
    pub name: String,
    /// The kind of singleton, as the host registered it (e.g. `"kv"`).
    pub kind: String,
    /// Every other key of its table, for the singleton's constructor.
    pub params: Map,
}

impl SingletonManifest {
    /// Checks the table found at `path`.
    pub(crate) fn from_raw(
        name: &str,
        mut table: IndexMap<String, toml::Value>,
        path: &KeyPath,
        document: &Document,
    ) -> Result<SingletonManifest, ManifestError> {
        let kind = match table.shift_remove("kind") {
            Some(toml::Value::String(kind)) if !kind.is_empty() => kind,
            Some(_) => {
                return Err(document.error(
                    &path.key("kind"),
                    ManifestErrorKind::Invalid {
                        reason: "must be a non-empty string naming a singleton kind".into(),
                    },
                ));
            }
            None => {
                return Err(document.error(
                    path,
                    ManifestErrorKind::Toml {
                        message: "missing field `kind`".into(),
                    },
                ));
            }
        };
        Ok(SingletonManifest {
            name: name.to_owned(),
            kind,
            params: table.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        })
    }
}
