//! Resource watch: samples processes' memory and CPU at an interval.
//!
//! One sampler thread serves any number of watched processes (sysinfo reads `/proc`, which
//! blocks, so it never runs on an arbiter). Each watch gets a `watch` channel with the latest
//! sample; the process is forgotten when its [`ProcessWatch`] drops or the process exits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use thiserror::Error;
use tokio::sync::watch;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceSample {
    /// The process.
    pub pid: u32,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
    /// CPU use since the previous sample, in percent of one core.
    pub cpu_percent: f32,
    /// When it was taken.
    pub at: Instant,
}

/// Why the monitor could not start.
#[derive(Debug, Error)]
pub enum ResourceError {
    /// sysinfo does not support this system.
    #[error("process statistics are not available here: {0}")]
    Unsupported(String),
    /// The sampler thread could not be started.
    #[error("cannot start the sampler thread: {0}")]
    Thread(#[from] std::io::Error),
}

type Watches = Arc<Mutex<HashMap<u32, watch::Sender<Option<ResourceSample>>>>>;

/// Samples watched processes every `interval` on one background thread.
#[derive(Debug, Clone)]
pub struct ResourceMonitor {
    watches: Watches,
    interval: Duration,
}

/// The latest samples of one process. Dropping it stops watching the process.
#[derive(Debug)]
pub struct ProcessWatch {
    pid: u32,
    rx: watch::Receiver<Option<ResourceSample>>,
    watches: Watches,
}

impl ProcessWatch {
    /// The latest sample (None before the first one, or once the process is gone).
    pub fn latest(&self) -> Option<ResourceSample> {
        *self.rx.borrow()
    }

    /// A receiver that wakes at every sample; it closes when the process is gone.
    pub fn receiver(&self) -> watch::Receiver<Option<ResourceSample>> {
        self.rx.clone()
    }
}

impl Drop for ProcessWatch {
    fn drop(&mut self) {
        lock(&self.watches).remove(&self.pid);
    }
}

fn lock(
    watches: &Watches,
) -> std::sync::MutexGuard<'_, HashMap<u32, watch::Sender<Option<ResourceSample>>>> {
    watches.lock().unwrap_or_else(|p| p.into_inner())
}

impl ResourceMonitor {
    /// Starts the sampler thread. It ends when every clone of the monitor is dropped.
    pub fn start(interval: Duration) -> Result<ResourceMonitor, ResourceError> {
        let mut system = System::new().map_err(|e| ResourceError::Unsupported(e.to_string()))?;
        let watches: Watches = Arc::default();
        let weak = Arc::downgrade(&watches);
        thread::Builder::new()
            .name("troupe-resource-watch".into())
            .spawn(move || {
                while let Some(watches) = weak.upgrade() {
                    sample(&mut system, &watches);
                    drop(watches);
                    thread::sleep(interval);
                }
            })?;
        Ok(ResourceMonitor { watches, interval })
    }

    /// The sampling interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Starts watching `pid`.
    pub fn watch(&self, pid: u32) -> ProcessWatch {
        let (tx, rx) = watch::channel(None);
        lock(&self.watches).insert(pid, tx);
        ProcessWatch {
            pid,
            rx,
            watches: self.watches.clone(),
        }
    }
}

fn sample(system: &mut System, watches: &Watches) {
    let pids: Vec<Pid> = lock(watches).keys().map(|p| Pid::from_u32(*p)).collect();
    if pids.is_empty() {
        return;
    }
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&pids),
        true,
        ProcessRefreshKind::nothing().with_memory().with_cpu(),
    );
    let now = Instant::now();
    lock(watches).retain(|pid, tx| match system.process(Pid::from_u32(*pid)) {
        Some(process) => {
            tx.send_replace(Some(ResourceSample {
                pid: *pid,
                rss_bytes: process.memory(),
                cpu_percent: process.cpu_usage(),
                at: now,
            }));
            true
        }
        None => {
            tx.send_replace(None);
            false
        }
    });
}
