//! `kv`: a key-value store any actor or extension may share.

use std::collections::BTreeMap;

use actix::prelude::*;
use troupe_runtime::{Call, CallResult};
use troupe_value::{CallError, Value};

/// A bounded key-value store behind a [`Call`] interface:
///
/// - `put(key, value)` stores (refused past `capacity` new keys); `get(key, default=None)`;
/// - `delete(key)` answers whether it was there; `keys()`; `items()` (a map); `len()`;
/// - `incr(key, by=1)` adds to an int (missing counts as 0) and answers the new value.
///
/// Wrong argument types are [`CallError::BadArguments`]; other methods
/// [`CallError::UnknownMethod`].
#[derive(Debug, Default)]
pub struct KeyValue {
    entries: BTreeMap<String, Value>,
    capacity: Option<usize>,
}

impl KeyValue {
    /// An empty store holding at most `capacity` keys (`None`: unbounded).
    pub fn new(capacity: Option<usize>) -> KeyValue {
        KeyValue {
            entries: BTreeMap::new(),
            capacity,
        }
    }

    fn room_for(&self, key: &str) -> Result<(), CallError> {
        match self.capacity {
            Some(capacity) if self.entries.len() >= capacity && !self.entries.contains_key(key) => {
                Err(CallError::bad_argument(
                    "args[0]",
                    format!("the store is full ({capacity} keys)"),
                ))
            }
            _ => Ok(()),
        }
    }
}

impl Actor for KeyValue {
    type Context = Context<Self>;
}

impl Handler<Call> for KeyValue {
    type Result = CallResult;

    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> CallResult {
        match call.method() {
            "put" => {
                let key: String = call.arg(0)?;
                self.room_for(&key)?;
                self.entries.insert(key, call.arg(1)?);
                Ok(Value::Null)
            }
            "get" => {
                let key: String = call.arg(0)?;
                match self.entries.get(&key) {
                    Some(value) => Ok(value.clone()),
                    None => Ok(call.args.get(1).cloned().unwrap_or_default()),
                }
            }
            "delete" => Ok(Value::Bool(
                self.entries.remove(&call.arg::<String>(0)?).is_some(),
            )),
            "keys" => Ok(Value::from(
                self.entries.keys().cloned().collect::<Vec<String>>(),
            )),
            "items" => Ok(Value::map(self.entries.clone())),
            "len" => Ok(Value::Int(
                self.entries.len().try_into().unwrap_or(i64::MAX),
            )),
            "incr" => {
                let key: String = call.arg(0)?;
                let by = match call.args.get(1) {
                    Some(_) => call.arg::<i64>(1)?,
                    None => 1,
                };
                let now = match self.entries.get(&key) {
                    None => 0,
                    Some(Value::Int(n)) => *n,
                    Some(other) => {
                        return Err(CallError::bad_argument(
                            "args[0]",
                            format!("{key:?} holds {}, not an int", other.type_name()),
                        ));
                    }
                };
                self.room_for(&key)?;
                let next = now.checked_add(by).ok_or_else(|| {
                    CallError::bad_argument("args[1]", "the sum overflows a 64-bit int")
                })?;
                self.entries.insert(key, Value::Int(next));
                Ok(Value::Int(next))
            }
            _ => Err(call.unknown_method()),
        }
    }
}
