//! Interrupt on the control lane: nodes drop their buffered state.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "pipeline_support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use support::{Collect, ints};
use troupe_nodes::{Emitter, Node, NodeError, Source, SourceState};
use troupe_pipeline::PipelineBuilder;
use troupe_value::Value;

/// Emits 0..5, then idles (pulls that emit nothing) until `release`, then emits 5..10.
struct Gated {
    next: i64,
    release: Arc<AtomicBool>,
}

impl Source for Gated {
    fn type_name(&self) -> &'static str {
        "test.gated"
    }

    fn pull(&mut self, out: &mut Emitter) -> Result<SourceState, NodeError> {
        if self.next == 10 {
            return Ok(SourceState::Done);
        }
        if self.next < 5 || self.release.load(Ordering::SeqCst) {
            out.emit(self.next);
            self.next += 1;
        }
        Ok(SourceState::More)
    }
}

/// Buffers inputs until flush; an interrupt drops the buffer.
struct Buffer {
    held: Vec<Value>,
    taken: Arc<AtomicUsize>,
}

impl Node for Buffer {
    fn type_name(&self) -> &'static str {
        "test.buffer"
    }

    fn process(&mut self, input: Value, _out: &mut Emitter) -> Result<(), NodeError> {
        self.held.push(input);
        self.taken.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        for v in self.held.drain(..) {
            out.emit(v);
        }
        Ok(())
    }

    fn interrupt(&mut self) {
        self.held.clear();
    }
}

#[actix::test]
async fn interrupt_drops_buffered_state() {
    let release = Arc::new(AtomicBool::new(false));
    let taken = Arc::new(AtomicUsize::new(0));
    let (sink, seen) = Collect::sink(Duration::ZERO);
    let running = PipelineBuilder::new()
        .source(
            "src",
            Box::new(Gated {
                next: 0,
                release: release.clone(),
            }),
        )
        .node(
            "buffer",
            Box::new(Buffer {
                held: Vec::new(),
                taken: taken.clone(),
            }),
        )
        .node("sink", sink)
        .edge("src", "buffer")
        .edge("buffer", "sink")
        .build()
        .unwrap()
        .start();
    let interrupter = running.interrupter();
    let run = actix::spawn(running.finish());
    while taken.load(Ordering::SeqCst) < 5 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(interrupter.interrupt(), 3);
    // Let the interrupt land before more data comes.
    tokio::time::sleep(Duration::from_millis(20)).await;
    release.store(true, Ordering::SeqCst);
    let summary = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ints(&seen.lock().unwrap().items), vec![5, 6, 7, 8, 9]);
    let buffer = summary.node("buffer").unwrap();
    assert_eq!(
        (buffer.items_in, buffer.items_out, buffer.interrupts),
        (10, 5, 1)
    );
}
