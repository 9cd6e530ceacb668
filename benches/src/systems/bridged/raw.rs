//! `python-floor`: the frame round trip between one host thread and troupe's Python child,
//! with no actor, mailbox or reader thread: what a Python extension's own side adds to
//! `ipc-floor` (the child's receive, Python's dispatch of a no-op method, the reply), and so
//! the least any bridged call to Python can cost here.

use std::path::Path;
use std::time::{Duration, Instant};

use troupe_bridge_python::env::{self, EnvCache, EnvSpec};
use troupe_bridge_python::process::{LaunchSpec, Launched, LinkLimits, launch};
use troupe_bridge_python::provision;
use troupe_protocol::{CallFrame, StartInfo, ToChild, ToHost};

use super::super::{Sampler, SystemError};
use super::MODULE;

/// The system's name in rows.
pub(crate) const SYSTEM: &str = "python-floor";

fn failed(context: &str, error: impl std::fmt::Display) -> SystemError {
    SystemError::Unsupported(format!("{context}: {error}"))
}

/// Starts a child with the bench extension (found in `plugins`) and returns a sampler of
/// no-op calls to it, each timed from sending the frame to decoding the reply.
pub(crate) fn noop_sampler(plugins: &Path, warmup: usize) -> Result<Sampler, SystemError> {
    let venv = EnvCache::from_env()?.ensure(&EnvSpec::default(), &env::quiet)?;
    provision::provision(&venv).map_err(|e| failed("provisioning", e))?;
    let child = launch(&LaunchSpec {
        name: SYSTEM.into(),
        python: venv.python.clone(),
        venv: venv.root.clone(),
        env: Vec::new(),
        cwd: None,
        sys_path: vec![plugins.to_path_buf()],
        memory_limit: None,
        sandbox: Default::default(),
        connect_timeout: Duration::from_secs(10),
        limits: LinkLimits::default(),
    })
    .map_err(|e| failed("launching the child", e))?;
    child
        .link
        .send(ToChild::Start(StartInfo {
            name: SYSTEM.into(),
            module: MODULE.into(),
            class: None,
            sys_path: vec![plugins.display().to_string()],
            host_calls: false,
        }))
        .map_err(|e| failed("starting the extension", e))?;
    match next(&child)? {
        ToHost::Started { .. } => {}
        other => return Err(failed("starting the extension", format!("{other:?}"))),
    }
    let mut id = 0;
    let mut call = move |child: &Launched| -> Result<u64, SystemError> {
        id += 1;
        let started = Instant::now();
        child
            .link
            .send(ToChild::Call(CallFrame {
                id,
                method: "noop".into(),
                args: Vec::new(),
                kwargs: Default::default(),
            }))
            .map_err(|e| failed("sending", e))?;
        match next(child)? {
            ToHost::Reply {
                id: got,
                result: Ok(_),
            } if got == id => Ok(started.elapsed().as_nanos() as u64),
            other => Err(failed("the no-op call", format!("{other:?}"))),
        }
    };
    for _ in 0..warmup {
        call(&child)?;
    }
    Ok(Box::new(move |n| (0..n).map(|_| call(&child)).collect()))
}

/// The next frame from the child that is not buffer bookkeeping.
fn next(child: &Launched) -> Result<ToHost, SystemError> {
    loop {
        let frame = child
            .link
            .wait_frame(Duration::from_secs(30))
            .map_err(|e| failed("receiving", e))?
            .ok_or_else(|| failed("receiving", "no frame within 30 s"))?;
        let envelope = child
            .link
            .open::<ToHost>(&frame.bytes, frame.fds)
            .map_err(|e| failed("decoding", e))?;
        match envelope.body {
            ToHost::ReleaseSlots { .. } => {}
            frame => return Ok(frame),
        }
    }
}
