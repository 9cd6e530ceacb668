//! Test-only nodes and sources shared by the pipeline tests (included with `#[path]`).

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use troupe_nodes::{Emitter, Node, NodeError, Source, SourceState};
use troupe_value::Value;

/// Emits `from..to` as ints, one per pull.
pub struct Range {
    pub next: i64,
    pub end: i64,
}

impl Range {
    pub fn boxed(from: i64, to: i64) -> Box<dyn Source> {
        Box::new(Range {
            next: from,
            end: to,
        })
    }
}

impl Source for Range {
    fn type_name(&self) -> &'static str {
        "test.range"
    }

    fn pull(&mut self, out: &mut Emitter) -> Result<SourceState, NodeError> {
        if self.next >= self.end {
            return Ok(SourceState::Done);
        }
        out.emit(self.next);
        self.next += 1;
        Ok(SourceState::More)
    }
}

/// What a [`Collect`] node saw: items, and whether end of stream (flush) came after them.
#[derive(Debug, Default)]
pub struct Seen {
    pub items: Vec<Value>,
    /// When each item arrived (wall clock, to compare with times taken in other processes).
    pub arrived: Vec<std::time::SystemTime>,
    pub flushed: bool,
    pub items_after_flush: usize,
}

/// A sink that records every input, optionally sleeping on each.
pub struct Collect {
    pub seen: Arc<Mutex<Seen>>,
    pub delay: Duration,
}

impl Collect {
    pub fn sink(delay: Duration) -> (Box<dyn Node>, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        (
            Box::new(Collect {
                seen: seen.clone(),
                delay,
            }),
            seen,
        )
    }
}

impl Node for Collect {
    fn type_name(&self) -> &'static str {
        "test.collect"
    }

    fn process(&mut self, input: Value, _out: &mut Emitter) -> Result<(), NodeError> {
        let arrived = std::time::SystemTime::now();
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let mut seen = self.seen.lock().unwrap();
        if seen.flushed {
            seen.items_after_flush += 1;
        }
        seen.items.push(input);
        seen.arrived.push(arrived);
        Ok(())
    }

    fn flush(&mut self, _out: &mut Emitter) -> Result<(), NodeError> {
        self.seen.lock().unwrap().flushed = true;
        Ok(())
    }
}

/// Buffers every input and emits them all (in order) at flush.
pub struct Hold(pub Vec<Value>);

impl Node for Hold {
    fn type_name(&self) -> &'static str {
        "test.hold"
    }

    fn process(&mut self, input: Value, _out: &mut Emitter) -> Result<(), NodeError> {
        self.0.push(input);
        Ok(())
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        for v in self.0.drain(..) {
            out.emit(v);
        }
        Ok(())
    }
}

/// Panics on the input equal to `at`.
pub struct PanicAt(pub i64);

impl Node for PanicAt {
    fn type_name(&self) -> &'static str {
        "test.panic_at"
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        if input.as_int() == Some(self.0) {
            panic!("test node panics on {}", self.0);
        }
        out.emit(input);
        Ok(())
    }
}

pub fn ints(values: &[Value]) -> Vec<i64> {
    values.iter().map(|v| v.as_int().unwrap()).collect()
}
