//! How far a run has come through its media, for progress bars.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use troupe_value::Value;

/// A snapshot of a run's progress through its media.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Seconds of media emitted by the source furthest behind (among sources that emit
    /// audio or video). Nodes run behind the sources by at most their mailboxes.
    pub media_seconds: f64,
    /// The length of the input in seconds, when its sources know it (the longest).
    pub total_media_seconds: Option<f64>,
    /// Wall time since the run started.
    pub elapsed: Duration,
}

impl Progress {
    /// Seconds of media per second of wall time; `None` before any media.
    pub fn realtime_factor(&self) -> Option<f64> {
        let wall = self.elapsed.as_secs_f64();
        (self.media_seconds > 0.0 && wall > 0.0).then(|| self.media_seconds / wall)
    }
}

/// Where one source is in its media.
#[derive(Debug)]
pub(crate) struct SourceClock {
    emitted_ns: AtomicU64,
    has_media: AtomicBool,
    total_seconds: Option<f64>,
}

impl SourceClock {
    pub(crate) fn new(total_seconds: Option<f64>) -> SourceClock {
        SourceClock {
            emitted_ns: AtomicU64::new(0),
            has_media: AtomicBool::new(false),
            total_seconds,
        }
    }

    /// Notes an emitted item: audio up to its end, a video frame up to its timestamp.
    pub(crate) fn saw(&self, item: &Value) {
        let end_ns = match item {
            Value::Audio(audio) => audio
                .timestamp_ns()
                .saturating_add(u64::try_from(audio.duration().as_nanos()).unwrap_or(u64::MAX)),
            Value::Video(frame) => frame.timestamp_ns(),
            _ => return,
        };
        self.has_media.store(true, Ordering::Relaxed);
        self.emitted_ns.fetch_max(end_ns, Ordering::Relaxed);
    }

    /// The source is done: it has emitted all of its known length.
    pub(crate) fn finish(&self) {
        if let Some(total) = self.total_seconds
            && self.has_media.load(Ordering::Relaxed)
        {
            self.emitted_ns
                .fetch_max((total * 1e9) as u64, Ordering::Relaxed);
        }
    }

    fn media_seconds(&self) -> Option<f64> {
        self.has_media
            .load(Ordering::Relaxed)
            .then(|| self.emitted_ns.load(Ordering::Relaxed) as f64 / 1e9)
    }
}

/// Reads a running pipeline's [`Progress`] while [`RunningPipeline::finish`] waits. Cheap
/// to clone.
///
/// [`RunningPipeline::finish`]: crate::RunningPipeline::finish
#[derive(Debug, Clone)]
pub struct ProgressMeter {
    clocks: Arc<[Arc<SourceClock>]>,
    started: Instant,
}

impl ProgressMeter {
    pub(crate) fn new(clocks: Vec<Arc<SourceClock>>, started: Instant) -> ProgressMeter {
        ProgressMeter {
            clocks: Arc::from(clocks),
            started,
        }
    }

    /// The progress now.
    pub fn read(&self) -> Progress {
        let media_seconds = self
            .clocks
            .iter()
            .filter_map(|c| c.media_seconds())
            .reduce(f64::min)
            .unwrap_or(0.0);
        let total_media_seconds = self
            .clocks
            .iter()
            .filter_map(|c| c.total_seconds)
            .reduce(f64::max);
        Progress {
            media_seconds,
            total_media_seconds,
            elapsed: self.started.elapsed(),
        }
    }
}
