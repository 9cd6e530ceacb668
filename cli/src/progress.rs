//! The progress bar of `troupe run`: seconds of media done and the real-time factor, on a
//! terminal only, and only once a run has lasted long enough to need one.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use troupe_pipeline::{Progress, ProgressMeter};

/// Runs shorter than this never show a bar.
const SHOW_AFTER: Duration = Duration::from_millis(500);
const TICK: Duration = Duration::from_millis(100);

/// A bar redrawn from a [`ProgressMeter`] by a task on the current arbiter.
pub(crate) struct ProgressDisplay {
    bar: ProgressBar,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ProgressDisplay {
    /// Starts redrawing when stderr is a terminal; otherwise does nothing.
    pub(crate) fn start(meter: ProgressMeter) -> ProgressDisplay {
        let bar = ProgressBar::hidden();
        let task = std::io::stderr().is_terminal().then(|| {
            let bar = bar.clone();
            actix::spawn(async move {
                let mut tick = tokio::time::interval(TICK);
                loop {
                    tick.tick().await;
                    let progress = meter.read();
                    if progress.elapsed >= SHOW_AFTER {
                        draw(&bar, &progress);
                    }
                }
            })
        });
        ProgressDisplay { bar, task }
    }

    /// Stops redrawing and clears the bar.
    pub(crate) fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        self.bar.finish_and_clear();
    }
}

fn draw(bar: &ProgressBar, progress: &Progress) {
    if bar.is_hidden() {
        let template = match progress.total_media_seconds {
            Some(total) => {
                bar.set_length((total * 1000.0) as u64);
                "{spinner} [{bar:32}] {percent:>3}% {msg}"
            }
            None => "{spinner} {msg}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
    bar.set_position((progress.media_seconds * 1000.0) as u64);
    let media = match progress.total_media_seconds {
        Some(total) => format!("{:.1} / {total:.1} s of media", progress.media_seconds),
        None => format!("{:.1} s of media", progress.media_seconds),
    };
    let speed = match progress.realtime_factor() {
        Some(factor) => format!(", {factor:.0}x real time"),
        None => String::new(),
    };
    bar.set_message(format!(
        "{media}{speed} ({:.1} s)",
        progress.elapsed.as_secs_f64()
    ));
    bar.tick();
}
