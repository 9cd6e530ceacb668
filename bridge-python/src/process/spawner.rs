//! Spawns children from one thread that lives as long as the process.
//!
//! `PR_SET_PDEATHSIG` delivers its signal when the thread that forked the child ends, not
//! when the process does: spawning from a short-lived thread (a blocking-pool thread, say)
//! would kill the child when that thread is retired.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc::{Sender, channel};
use std::sync::{LazyLock, Mutex};

type Request = (Command, Sender<io::Result<Child>>);

static SPAWNER: LazyLock<Mutex<Option<Sender<Request>>>> = LazyLock::new(|| {
    let (tx, rx) = channel::<Request>();
    let started = std::thread::Builder::new()
        .name("troupe-spawner".into())
        .spawn(move || {
            for (mut command, reply) in rx {
                let _ = reply.send(spawn_here(&mut command));
            }
        });
    Mutex::new(started.ok().map(|_| tx))
});

/// Spawns `command` from the spawner thread; the child gets SIGKILL when the host dies.
pub(crate) fn spawn(command: Command) -> io::Result<Child> {
    let (reply_tx, reply_rx) = channel();
    let spawner = SPAWNER
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or_else(|| io::Error::other("the spawner thread could not be started"))?;
    spawner
        .send((command, reply_tx))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

fn spawn_here(command: &mut Command) -> io::Result<Child> {
    // SAFETY: getpid/getppid/prctl are async-signal-safe, as required between fork and exec.
    let parent = unsafe { libc::getpid() };
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The host may have died between fork and prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    command.spawn()
}
