//! Dynamic calls: a method name and [`Value`] arguments, answered with a value or a
//! [`CallError`]. Any actor can serve them, so Rust actors and bridged Python extensions
//! answer the same message.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use actix::Message;
use troupe_wire::{CallError, FromValue, Map, Value};

/// What a [`Call`] answers.
pub type CallResult = Result<Value, CallError>;

/// A call of `method` with positional and keyword arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Process-unique id, shown in traces.
    pub id: u64,
    /// The method to call (a static name costs no allocation).
    pub method: Cow<'static, str>,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments, in the order given.
    pub kwargs: Map,
}

impl Message for Call {
    type Result = CallResult;
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Call {
    /// A call of `method` with positional `args`.
    pub fn new(method: impl Into<Cow<'static, str>>, args: Vec<Value>) -> Call {
        Call {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            method: method.into(),
            args,
            kwargs: Map::new(),
        }
    }

    /// The method's name.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Adds a keyword argument.
    pub fn kwarg(mut self, name: impl Into<String>, value: impl Into<Value>) -> Call {
        self.kwargs.insert(name.into(), value.into());
        self
    }

    /// Positional argument `index` as `T`; a missing or mistyped one is
    /// [`CallError::BadArguments`] with path `args[index]`.
    pub fn arg<T: FromValue>(&self, index: usize) -> Result<T, CallError> {
        let path = || format!("args[{index}]");
        let value = self
            .args
            .get(index)
            .cloned()
            .ok_or_else(|| CallError::bad_argument(path(), "missing"))?;
        T::from_value(value).map_err(|reason| CallError::bad_argument(path(), reason))
    }

    /// Keyword argument `name` as `T`, with path `kwargs["name"]` in errors. A missing one
    /// is `Ok(None)`.
    pub fn kwarg_as<T: FromValue>(&self, name: &str) -> Result<Option<T>, CallError> {
        self.kwargs
            .get(name)
            .cloned()
            .map(T::from_value)
            .transpose()
            .map_err(|reason| CallError::bad_argument(format!("kwargs[{name:?}]"), reason))
    }

    /// [`CallError::UnknownMethod`] for this call's method.
    pub fn unknown_method(&self) -> CallError {
        CallError::UnknownMethod {
            method: self.method.clone().into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_arguments_report_their_path() {
        let call = Call::new("f", vec![Value::Int(1), Value::from("x")]).kwarg("n", 2);
        assert_eq!(call.arg::<i64>(0), Ok(1));
        assert_eq!(call.kwarg_as::<i64>("n"), Ok(Some(2)));
        assert_eq!(
            call.arg::<i64>(1),
            Err(CallError::bad_argument("args[1]", "expected int, got str"))
        );
        assert_eq!(
            call.arg::<i64>(2),
            Err(CallError::bad_argument("args[2]", "missing"))
        );
        assert!(Call::new("g", vec![]).id > call.id);
    }
}
