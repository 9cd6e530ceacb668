//! `[singletons.NAME]`: a shared actor of a kind the host program registers.

use indexmap::IndexMap;
use troupe_host::singleton::SingletonSpec;

use crate::document::{Document, KeyPath};
use crate::error::{ManifestError, ManifestErrorKind};
use crate::value::to_value;

/// Checks the singleton table `name` found at `path`: its `kind`, and every other key as a
/// parameter.
pub(crate) fn singleton_spec(
    name: &str,
    mut table: IndexMap<String, toml::Value>,
    path: &KeyPath,
    document: &Document,
) -> Result<SingletonSpec, ManifestError> {
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
    Ok(SingletonSpec {
        name: name.to_owned(),
        kind,
        params: table.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
    })
}
