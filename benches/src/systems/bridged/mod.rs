//! troupe's bridged extension host as a benchmark system (`troupe-bridged`).
//!
//! A [`Lab`] runs an actix system on a thread of its own with two extensions of one Python
//! file ([`EXTENSION`]): `bench` (every call scenario, and a host service for the nested
//! chain) and `crasher` (restarted at once after each crash). Samplers run on the harness's
//! thread and hand the lab jobs; the lab answers with nanosecond samples. The venv (no
//! dependencies) comes from troupe's cache, built once.

mod jobs;
pub(crate) mod raw;

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Sampler, SystemError};

pub(crate) use jobs::Job;

/// The Python file of the extensions.
const EXTENSION: &str = include_str!("troupe_bench_ext.py");
const MODULE: &str = "troupe_bench_ext";

/// How long the lab may take to start its extensions (a venv build included).
const START_DEADLINE: Duration = Duration::from_secs(300);

type Answer = Result<Vec<u64>, SystemError>;

/// The extensions being measured, on their own thread.
pub(crate) struct Lab {
    jobs: Option<mpsc::UnboundedSender<(Job, usize, std_mpsc::Sender<Answer>)>>,
    thread: Option<JoinHandle<()>>,
    dir: PathBuf,
}

impl Lab {
    /// Starts the lab (a venv without dependencies) and waits until its extensions answer.
    pub(crate) fn start() -> Result<Rc<Lab>, SystemError> {
        Lab::start_with(&[])
    }

    /// Starts the lab in a venv with `dependencies` (PEP 508) and waits until its
    /// extensions answer.
    pub(crate) fn start_with(dependencies: &[&str]) -> Result<Rc<Lab>, SystemError> {
        let dir = std::env::temp_dir().join(format!("troupe-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(SystemError::io("creating the extension dir"))?;
        std::fs::write(dir.join(format!("{MODULE}.py")), EXTENSION)
            .map_err(SystemError::io("writing the extension"))?;
        let (jobs, inbox) = mpsc::unbounded_channel();
        let (ready_tx, ready) = std_mpsc::channel();
        let plugins = dir.clone();
        let dependencies: Vec<String> = dependencies.iter().map(|d| (*d).to_owned()).collect();
        let thread = std::thread::Builder::new()
            .name("troupe-bench-lab".into())
            .spawn(move || jobs::serve(plugins, dependencies, inbox, ready_tx))
            .map_err(SystemError::io("starting the lab thread"))?;
        let lab = Lab {
            jobs: Some(jobs),
            thread: Some(thread),
            dir,
        };
        match ready.recv_timeout(START_DEADLINE) {
            Ok(Ok(())) => Ok(Rc::new(lab)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SystemError::Deadline(START_DEADLINE)),
        }
    }

    /// Runs `job` for `n` samples.
    pub(crate) fn sample(&self, job: Job, n: usize) -> Answer {
        let (tx, rx) = std_mpsc::channel();
        let jobs = self
            .jobs
            .as_ref()
            .ok_or(SystemError::Pending("the lab is stopped"))?;
        jobs.send((job, n, tx))
            .map_err(|_| SystemError::Pending("the lab is gone"))?;
        rx.recv()
            .map_err(|_| SystemError::Pending("the lab stopped mid-job"))?
    }

    /// The directory holding the extension's module.
    pub(crate) fn plugins(&self) -> &std::path::Path {
        &self.dir
    }

    /// A sampler of `job`.
    pub(crate) fn sampler(self: &Rc<Lab>, job: Job) -> Sampler {
        let lab = self.clone();
        Box::new(move |n| lab.sample(job, n))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Closing the channel ends the lab's loop; it stops the extensions on its way out.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
