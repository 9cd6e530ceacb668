//! `sandbox = "off" | "default" | "strict"`, or a table
//! `{ level, network, read, write, gpu, require }`: how an extension's child is confined.

use std::path::Path;

use thiserror::Error;
use troupe_bridge_python::process::{SandboxConfig, SandboxLevel};

use crate::document::{Document, KeyPath};
use crate::error::{ManifestError, ManifestErrorKind};

/// The keys of a `sandbox` table.
const KEYS: &[&str] = &["level", "network", "read", "write", "gpu", "require"];

/// What is wrong with an extension's `sandbox` setting.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SandboxSettingError {
    /// A level that is not `off`, `default` or `strict`.
    #[error("unknown sandbox level `{given}`: write \"off\", \"default\" or \"strict\"")]
    UnknownLevel {
        /// The level given.
        given: String,
    },
    /// A key a `sandbox` table does not have.
    #[error("unknown sandbox key `{key}`: a sandbox table has {}", KEYS.join(", "))]
    UnknownKey {
        /// The key given.
        key: String,
    },
    /// A value of the wrong type.
    #[error("must be {expected}")]
    WrongType {
        /// What it must be.
        expected: &'static str,
    },
}

/// The sandbox `value` (found at `path`) describes; relative `read`/`write` paths are
/// resolved against `base`, the manifest's directory.
pub(crate) fn sandbox_config(
    value: &toml::Value,
    path: &KeyPath,
    base: &Path,
    document: &Document,
) -> Result<SandboxConfig, ManifestError> {
    let error =
        |key: &KeyPath, e: SandboxSettingError| document.error(key, ManifestErrorKind::Sandbox(e));
    let table = match value {
        toml::Value::String(level) => {
            return parse_level(level)
                .map(SandboxConfig::level)
                .map_err(|e| error(path, e));
        }
        toml::Value::Table(table) => table,
        _ => {
            let expected = "\"off\", \"default\", \"strict\" or a table";
            return Err(error(path, SandboxSettingError::WrongType { expected }));
        }
    };
    let mut config = SandboxConfig::default();
    for (key, value) in table {
        let at = path.key(key);
        let wrong = |expected| error(&at, SandboxSettingError::WrongType { expected });
        match (key.as_str(), value) {
            ("level", toml::Value::String(level)) => {
                config.level = parse_level(level).map_err(|e| error(&at, e))?;
            }
            ("level", _) => return Err(wrong("\"off\", \"default\" or \"strict\"")),
            ("network" | "gpu" | "require", toml::Value::Boolean(yes)) => match key.as_str() {
                "network" => config.network = *yes,
                "gpu" => config.gpu = *yes,
                _ => config.require = *yes,
            },
            ("network" | "gpu" | "require", _) => return Err(wrong("true or false")),
            ("read" | "write", toml::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let toml::Value::String(item) = item else {
                        let expected = "a list of paths";
                        return Err(error(
                            &at.index(i),
                            SandboxSettingError::WrongType { expected },
                        ));
                    };
                    let resolved = base.join(item);
                    if key == "read" {
                        config.read.push(resolved);
                    } else {
                        config.write.push(resolved);
                    }
                }
            }
            ("read" | "write", _) => return Err(wrong("a list of paths")),
            _ => {
                let key = key.clone();
                return Err(error(&at, SandboxSettingError::UnknownKey { key }));
            }
        }
    }
    Ok(config)
}

fn parse_level(level: &str) -> Result<SandboxLevel, SandboxSettingError> {
    match level {
        "off" => Ok(SandboxLevel::Off),
        "default" => Ok(SandboxLevel::Default),
        "strict" => Ok(SandboxLevel::Strict),
        other => Err(SandboxSettingError::UnknownLevel {
            given: other.to_owned(),
        }),
    }
}
