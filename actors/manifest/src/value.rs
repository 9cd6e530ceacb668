//! TOML values as troupe values, and node parameters checked against their specs.

use std::path::Path;

use troupe_nodes::catalog::NodeType;
use troupe_nodes::{ParamError, ParamKind, ParamSpec};
use troupe_value::{Map, Value};

/// A TOML value as a troupe value (a date-time becomes its text).
pub(crate) fn to_value(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::Str(s),
        toml::Value::Integer(i) => Value::Int(i),
        toml::Value::Float(f) => Value::Float(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::Str(d.to_string()),
        toml::Value::Array(items) => Value::List(items.into_iter().map(to_value).collect()),
        toml::Value::Table(table) => {
            Value::Map(table.into_iter().map(|(k, v)| (k, to_value(v))).collect())
        }
    }
}

/// Checks `params` against `node_type`'s specs without building the node: every name is
/// known, every value has its kind (a choice is one of its words), every required one is
/// there. Relative paths are made relative to `base` (the manifest's directory).
pub(crate) fn check_params(
    node_type: &NodeType,
    params: &mut Map,
    base: &Path,
) -> Result<(), ParamError> {
    let node = node_type.name;
    for (name, value) in params.iter_mut() {
        let spec = node_type
            .params
            .iter()
            .find(|s| s.name == name.as_str())
            .ok_or_else(|| ParamError::Unknown {
                node,
                param: name.clone(),
            })?;
        check_kind(node, spec, value)?;
        // `-` is standard input or output, wherever the manifest is.
        if spec.kind == ParamKind::Path
            && let Value::Str(path) = value
            && path != "-"
            && Path::new(path.as_str()).is_relative()
        {
            *path = base.join(path.as_str()).to_string_lossy().into_owned();
        }
    }
    match node_type
        .params
        .iter()
        .find(|s| s.default.is_none() && !params.contains_key(s.name))
    {
        Some(spec) => Err(ParamError::Missing {
            node,
            param: spec.name,
        }),
        None => Ok(()),
    }
}

fn check_kind(node: &'static str, spec: &ParamSpec, value: &Value) -> Result<(), ParamError> {
    let fits = match spec.kind {
        ParamKind::Int { min, max } => match value {
            Value::Int(n) if (min..=max).contains(n) => true,
            Value::Int(n) => {
                return Err(ParamError::OutOfRange {
                    node,
                    param: spec.name,
                    reason: format!("must be from {min} to {max}, got {n}"),
                });
            }
            _ => false,
        },
        ParamKind::Float => matches!(value, Value::Int(_) | Value::Float(_)),
        ParamKind::Bool => matches!(value, Value::Bool(_)),
        ParamKind::Str | ParamKind::Path => matches!(value, Value::Str(_)),
        ParamKind::Choice(words) => match value {
            Value::Str(word) if words.contains(&word.as_str()) => true,
            Value::Str(word) => {
                return Err(ParamError::OutOfRange {
                    node,
                    param: spec.name,
                    reason: format!("must be one of {}, got {word:?}", words.join(", ")),
                });
            }
            _ => false,
        },
    };
    if fits {
        Ok(())
    } else {
        Err(ParamError::WrongType {
            node,
            param: spec.name,
            expected: spec.kind,
            got: value.type_name(),
        })
    }
}

/// The parameter a parameter error is about.
pub(crate) fn param_of(error: &ParamError) -> Option<&str> {
    match error {
        ParamError::UnknownNodeType(_) => None,
        ParamError::Unknown { param, .. } => Some(param),
        ParamError::Missing { param, .. }
        | ParamError::WrongType { param, .. }
        | ParamError::OutOfRange { param, .. } => Some(param),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use troupe_nodes::catalog;

    fn map(pairs: &[(&str, Value)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn kinds_choices_missing_and_paths() {
        let vad = catalog::find("audio.vad").unwrap();
        let base = Path::new("/m");
        assert_eq!(check_params(vad, &mut Map::new(), base), Ok(()));
        let mut wrong = map(&[("aggressiveness", Value::from("high"))]);
        assert!(matches!(
            check_params(vad, &mut wrong, base),
            Err(ParamError::WrongType {
                param: "aggressiveness",
                ..
            })
        ));
        let mut word = map(&[("method", Value::from("magic"))]);
        assert!(matches!(
            check_params(vad, &mut word, base),
            Err(ParamError::OutOfRange {
                param: "method",
                ..
            })
        ));
        let mut unknown = map(&[("colour", Value::Int(1))]);
        assert!(matches!(
            check_params(vad, &mut unknown, base),
            Err(ParamError::Unknown { .. })
        ));
        let source = catalog::find("audio.file_source").unwrap();
        assert!(matches!(
            check_params(source, &mut Map::new(), base),
            Err(ParamError::Missing { param: "path", .. })
        ));
        let mut relative = map(&[("path", Value::from("data/a.wav"))]);
        assert_eq!(check_params(source, &mut relative, base), Ok(()));
        assert_eq!(relative["path"], Value::from("/m/data/a.wav"));
        let mut float = map(&[("max_segment_s", Value::Int(3))]);
        assert_eq!(check_params(vad, &mut float, base), Ok(()));
    }
}
