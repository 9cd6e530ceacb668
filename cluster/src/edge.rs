//! Pipeline edges that cross hosts: a built-in node placed on another host
//! (`host = "NAME"` on a node) runs there, and the pipeline here sends it its inputs in
//! batches and gets each input's outputs back, in order.
//!
//! The node here ([`RemoteNode`]) stands for the one there: every input it is handed joins a
//! queue, and one batch at a time leaves with what has queued up (at most
//! [`MAX_BATCH`] items), numbered by its session's sequence. So the round trips are few
//! when inputs come fast and each input leaves at once when they come slowly. At most
//! [`WINDOW`] inputs are in the node at once (its credit): past them the pipeline stops
//! handing it inputs, and backpressure travels upstream exactly as from a slow local node.
//! End of stream is a last batch that asks for the flush; an interrupt overtakes the
//! batches waiting here and reaches the node there between two inputs.
//!
//! A batch that got no answer (a timeout, a lost link, a busy host) is sent again with the
//! same number for up to [`RESEND_FOR`]; the host runs each number once and answers a
//! repeat with the answer it kept ([`served_node`]), so nothing is lost or run twice after a
//! reconnect. A host that lost the session (it restarted) or a batch that failed past the
//! resend window fails that batch's inputs; the node then starts over on a new session.
//!
//! The batches are calls on the node's queryable (`troupe/host/NAME/node/PIPELINE/NODE/call`),
//! so they take the same path as extension calls: the serving host's bounded queue per peer,
//! the caller's deadline, `HostLost` when the host's token goes.

use std::time::Duration;

use troupe_value::{CallError, Map, RemoteException, Value};

mod remote_node;
mod served_node;

pub use remote_node::RemoteNode;
pub(crate) use served_node::serve;
pub use served_node::{MAX_SESSIONS, SESSION_IDLE};

/// The most inputs one batch carries.
pub const MAX_BATCH: usize = 64;

/// The most inputs in a remote node at once: handed to it and not yet answered.
pub const WINDOW: usize = 128;

/// How long a batch that got no answer is sent again before its inputs fail.
pub const RESEND_FOR: Duration = Duration::from_secs(30);

/// The method that carries a batch: `[session, seq, [items...], end]`.
pub(crate) const BATCH: &str = "batch";
/// The method that interrupts a session's node: `[session]`.
pub(crate) const INTERRUPT: &str = "interrupt";
/// The method that ends a session without a flush: `[session]`.
pub(crate) const CLOSE: &str = "close";

/// One input's outputs, or why the node failed on it, as a batch's answer carries it.
pub(crate) type Outcome = Result<Vec<Value>, RemoteException>;

/// The exception type a node's error for one input travels as.
pub(crate) const NODE_ERROR: &str = "NodeError";

/// A batch's answer as a value: one `{"out": [...]}` or `{"error": exception}` per input,
/// and one more for the flush when the batch ended the stream.
pub(crate) fn outcomes_to_value(outcomes: Vec<Outcome>) -> Value {
    Value::List(
        outcomes
            .into_iter()
            .map(|outcome| {
                let mut map = Map::new();
                match outcome {
                    Ok(outputs) => map.insert("out".into(), Value::List(outputs)),
                    Err(error) => map.insert(
                        "error".into(),
                        Value::List(vec![
                            Value::Str(error.type_name),
                            Value::Str(error.message),
                            Value::Str(error.traceback),
                        ]),
                    ),
                };
                Value::Map(map)
            })
            .collect(),
    )
}

/// A batch's answer read back; anything else than [`outcomes_to_value`] made, or a count
/// other than `expected`, is a typed error.
pub(crate) fn outcomes_from_value(
    value: Value,
    expected: usize,
) -> Result<Vec<Outcome>, CallError> {
    let bad = |reason: &str| {
        troupe_value::CallError::Remote(RemoteException {
            type_name: "BadBatchAnswer".into(),
            message: reason.to_owned(),
            traceback: String::new(),
        })
    };
    let Value::List(entries) = value else {
        return Err(bad("not a list"));
    };
    if entries.len() != expected {
        return Err(bad(&format!(
            "{} outcomes for {expected} inputs",
            entries.len()
        )));
    }
    entries
        .into_iter()
        .map(|entry| {
            let Value::Map(mut map) = entry else {
                return Err(bad("an outcome is not a map"));
            };
            match (map.shift_remove("out"), map.shift_remove("error")) {
                (Some(Value::List(outputs)), None) => Ok(Ok(outputs)),
                (None, Some(Value::List(parts))) => match <[Value; 3]>::try_from(parts) {
                    Ok(
                        [
                            Value::Str(type_name),
                            Value::Str(message),
                            Value::Str(traceback),
                        ],
                    ) => Ok(Err(RemoteException {
                        type_name,
                        message,
                        traceback,
                    })),
                    _ => Err(bad("a malformed error")),
                },
                _ => Err(bad("an outcome is neither outputs nor an error")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_travel_as_values_and_bad_ones_are_refused() {
        let outcomes = vec![
            Ok(vec![Value::Int(1), Value::from("a")]),
            Err(RemoteException {
                type_name: NODE_ERROR.into(),
                message: "divide by zero".into(),
                traceback: String::new(),
            }),
            Ok(vec![]),
        ];
        let value = outcomes_to_value(outcomes.clone());
        assert_eq!(outcomes_from_value(value.clone(), 3), Ok(outcomes));
        assert!(outcomes_from_value(value, 2).is_err(), "count checked");
        for bad in [
            Value::Int(3),
            Value::List(vec![Value::Null]),
            Value::List(vec![Value::Map(Map::new())]),
        ] {
            assert!(outcomes_from_value(bad, 1).is_err());
        }
    }
}
