//! `data.tap`: passes items through and counts them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use troupe_value::Value;

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, Node, NodeError};
use crate::params::{ParamKind, ParamSpec, Params};

const NAME: &str = "data.tap";

const PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "log",
    kind: ParamKind::Bool,
    default: Some("false"),
    doc: "Also write one line per item to standard error: its number and type \
          (\"data.tap: #3 map\").",
}];

/// The `data.tap` node type.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Passes items through unchanged and counts them (optionally printing each type).",
    is_source: false,
    params: PARAMS,
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let log = params.bool("log", Some(false))?;
    Ok(Built::Node(Box::new(Tap::new(log))))
}

/// Emits every input unchanged and counts them.
///
/// The count is read with [`Tap::count`], or through a [`TapCounter`] taken before the node
/// is handed to a pipeline (the node then lives in its actor). This crate has no logging
/// dependency: with `log`, each item's number and type go to standard error.
#[derive(Debug, Default)]
pub struct Tap {
    log: bool,
    counter: TapCounter,
}

/// A handle on a [`Tap`]'s count that stays readable wherever the node goes.
#[derive(Debug, Clone, Default)]
pub struct TapCounter(Arc<AtomicU64>);

impl TapCounter {
    /// Items that have passed so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Tap {
    /// A tap; with `log`, it prints one line per item to standard error.
    pub fn new(log: bool) -> Tap {
        Tap {
            log,
            counter: TapCounter::default(),
        }
    }

    /// Items that have passed so far.
    pub fn count(&self) -> u64 {
        self.counter.get()
    }

    /// A handle that reads the count after the node has moved.
    pub fn counter(&self) -> TapCounter {
        self.counter.clone()
    }
}

impl Node for Tap {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let n = self.counter.0.fetch_add(1, Ordering::Relaxed) + 1;
        if self.log {
            eprintln!("{NAME}: #{n} {}", input.type_name());
        }
        out.emit(input);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_through_a_handle() {
        let mut tap = Tap::new(false);
        let counter = tap.counter();
        let mut out = Emitter::new();
        tap.process(Value::Int(1), &mut out).expect("item");
        tap.process(Value::from("x"), &mut out).expect("item");
        assert_eq!(out.items(), &[Value::Int(1), Value::from("x")]);
        assert_eq!((tap.count(), counter.get()), (2, 2));
    }
}
