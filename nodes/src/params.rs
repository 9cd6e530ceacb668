use thiserror::Error;
use troupe_value::{Map, Value};

/// What went wrong with a node's parameters.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ParamError {
    /// No node type of that name exists.
    #[error("unknown node type {0:?} (see `troupe nodes`)")]
    UnknownNodeType(String),
    /// The node has no parameter of that name.
    #[error("{node}: unknown parameter {param:?}")]
    Unknown {
        /// Node type.
        node: &'static str,
        /// Parameter given.
        param: String,
    },
    /// A required parameter is missing.
    #[error("{node}: missing parameter {param:?}")]
    Missing {
        /// Node type.
        node: &'static str,
        /// Parameter needed.
        param: &'static str,
    },
    /// A parameter has the wrong type.
    #[error("{node}: parameter {param:?} must be {expected}, got {got}")]
    WrongType {
        /// Node type.
        node: &'static str,
        /// Parameter.
        param: &'static str,
        /// The kind it must have.
        expected: ParamKind,
        /// The type name of what was given.
        got: &'static str,
    },
    /// A parameter has the right type but an impossible value.
    #[error("{node}: parameter {param:?} {reason}")]
    OutOfRange {
        /// Node type.
        node: &'static str,
        /// Parameter.
        param: &'static str,
        /// What is wrong, e.g. "must be positive".
        reason: String,
    },
}

/// The type of a node parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// An integer from `min` to `max` (both included).
    Int {
        /// The smallest value accepted.
        min: i64,
        /// The largest value accepted.
        max: i64,
    },
    /// A number (an integer is accepted).
    Float,
    /// A boolean.
    Bool,
    /// Text.
    Str,
    /// A file path.
    Path,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
}

impl ParamKind {
    /// Any integer.
    pub const ANY_INT: ParamKind = ParamKind::Int {
        min: i64::MIN,
        max: i64::MAX,
    };
}

impl std::fmt::Display for ParamKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamKind::Int { min, max } if (*min, *max) == (i64::MIN, i64::MAX) => {
                f.write_str("an integer")
            }
            ParamKind::Int { min, max } => write!(f, "an integer from {min} to {max}"),
            ParamKind::Float => f.write_str("a number"),
            ParamKind::Bool => f.write_str("a boolean"),
            ParamKind::Str => f.write_str("a string"),
            ParamKind::Path => f.write_str("a path"),
            ParamKind::Choice(words) => write!(f, "one of {}", words.join(", ")),
        }
    }
}

/// One parameter a node type takes.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// Its name in the manifest.
    pub name: &'static str,
    /// Its type.
    pub kind: ParamKind,
    /// Its default, as text (`None` = required).
    pub default: Option<&'static str>,
    /// What it does.
    pub doc: &'static str,
}

/// A node's parameters, checked against its [`ParamSpec`]s as they are read.
#[derive(Debug, Clone)]
pub struct Params {
    node: &'static str,
    map: Map,
}

impl Params {
    /// Parameters for node type `node`.
    pub fn new(node: &'static str, map: Map) -> Params {
        Params { node, map }
    }

    /// The node type these parameters are for.
    pub fn node(&self) -> &'static str {
        self.node
    }

    /// Refuses parameters that no spec names.
    pub fn check_known(&self, specs: &[ParamSpec]) -> Result<(), ParamError> {
        match self
            .map
            .keys()
            .find(|k| !specs.iter().any(|s| s.name == k.as_str()))
        {
            Some(unknown) => Err(ParamError::Unknown {
                node: self.node,
                param: unknown.clone(),
            }),
            None => Ok(()),
        }
    }

    fn wrong(&self, param: &'static str, expected: ParamKind, got: &Value) -> ParamError {
        ParamError::WrongType {
            node: self.node,
            param,
            expected,
            got: got.type_name(),
        }
    }

    fn missing(&self, param: &'static str) -> ParamError {
        ParamError::Missing {
            node: self.node,
            param,
        }
    }

    /// An error saying `param` is out of range.
    pub fn out_of_range(&self, param: &'static str, reason: impl Into<String>) -> ParamError {
        ParamError::OutOfRange {
            node: self.node,
            param,
            reason: reason.into(),
        }
    }

    /// The raw value of `param`, if given.
    pub fn raw(&self, param: &str) -> Option<&Value> {
        self.map.get(param)
    }

    /// Integer `param`, or `default` when absent (`None` default = required).
    pub fn int(&self, param: &'static str, default: Option<i64>) -> Result<i64, ParamError> {
        match self.map.get(param) {
            Some(v) => v
                .as_int()
                .ok_or_else(|| self.wrong(param, ParamKind::ANY_INT, v)),
            None => default.ok_or_else(|| self.missing(param)),
        }
    }

    /// Number `param` (integers accepted), or `default` when absent.
    pub fn float(&self, param: &'static str, default: Option<f64>) -> Result<f64, ParamError> {
        match self.map.get(param) {
            Some(v) => v
                .as_float()
                .ok_or_else(|| self.wrong(param, ParamKind::Float, v)),
            None => default.ok_or_else(|| self.missing(param)),
        }
    }

    /// Boolean `param`, or `default` when absent.
    pub fn bool(&self, param: &'static str, default: Option<bool>) -> Result<bool, ParamError> {
        match self.map.get(param) {
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.wrong(param, ParamKind::Bool, v)),
            None => default.ok_or_else(|| self.missing(param)),
        }
    }

    /// String `param`, or `default` when absent.
    pub fn str(&self, param: &'static str, default: Option<&str>) -> Result<String, ParamError> {
        match self.map.get(param) {
            Some(v) => v
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| self.wrong(param, ParamKind::Str, v)),
            None => default
                .map(str::to_owned)
                .ok_or_else(|| self.missing(param)),
        }
    }

    /// `param`, which must be one of `choices`, or `default` when absent.
    pub fn choice(
        &self,
        param: &'static str,
        choices: &'static [&'static str],
        default: Option<&'static str>,
    ) -> Result<&'static str, ParamError> {
        let given = self.str(param, default)?;
        choices
            .iter()
            .find(|c| **c == given)
            .copied()
            .ok_or_else(|| {
                self.out_of_range(
                    param,
                    format!("must be one of {}, got {given:?}", choices.join(", ")),
                )
            })
    }

    /// Integer `param` (or `default` when absent) as a `T` from `min` to `max`.
    pub fn int_within<T>(
        &self,
        param: &'static str,
        default: Option<i64>,
        min: T,
        max: T,
    ) -> Result<T, ParamError>
    where
        T: TryFrom<i64> + PartialOrd + Copy + std::fmt::Display,
    {
        let n = self.int(param, default)?;
        T::try_from(n)
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| self.out_of_range(param, format!("must be {min}..={max}, got {n}")))
    }

    /// A positive integer `param` that fits in `u32`.
    pub fn positive_u32(
        &self,
        param: &'static str,
        default: Option<i64>,
    ) -> Result<u32, ParamError> {
        let n = self.int(param, default)?;
        u32::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| self.out_of_range(param, format!("must be a positive integer, got {n}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_reads_and_errors() {
        let p = Params::new(
            "t",
            [
                ("rate".to_owned(), Value::Int(16_000)),
                ("name".to_owned(), Value::Int(1)),
            ]
            .into_iter()
            .collect(),
        );
        assert_eq!(p.int("rate", None).unwrap(), 16_000);
        assert_eq!(p.float("rate", None).unwrap(), 16_000.0);
        assert_eq!(p.int("missing", Some(3)).unwrap(), 3);
        assert!(matches!(
            p.int("missing", None),
            Err(ParamError::Missing { .. })
        ));
        assert!(matches!(
            p.str("name", None),
            Err(ParamError::WrongType { got: "int", .. })
        ));
        let spec = [ParamSpec {
            name: "rate",
            kind: ParamKind::Int {
                min: 1,
                max: 768_000,
            },
            default: None,
            doc: "",
        }];
        assert!(matches!(
            p.check_known(&spec),
            Err(ParamError::Unknown { .. })
        ));
    }
}
