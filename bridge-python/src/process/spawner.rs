//! Spawns children from one thread that lives as long as the process.
//!
//! `PR_SET_PDEATHSIG` delivers its signal when the thread that forked the child ends, not
//! when the process does: spawning from a short-lived thread (a blocking-pool thread, say)
//! would kill the child when that thread is retired.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc::{Sender, channel};
use std::sync::{LazyLock, Mutex};

use super::sandbox::Confinement;

/// Descriptors are moved above this number before they are put in place in the child, so
/// that placing one never overwrites another that is still to be placed, nor one the
/// child's confinement uses.
pub(crate) const SCRATCH_FD: RawFd = 64;

/// A descriptor the child inherits at a fixed number.
#[derive(Debug)]
pub(crate) struct Inherit {
    /// The descriptor (closed in the host once the child is spawned).
    pub(crate) fd: OwnedFd,
    /// Its number in the child.
    pub(crate) at: RawFd,
}

type Request = (
    Command,
    Vec<Inherit>,
    Confinement,
    Sender<io::Result<Child>>,
);

static SPAWNER: LazyLock<Mutex<Option<Sender<Request>>>> = LazyLock::new(|| {
    let (tx, rx) = channel::<Request>();
    let started = std::thread::Builder::new()
        .name("troupe-spawner".into())
        .spawn(move || {
            for (mut command, inherit, confinement, reply) in rx {
                let _ = reply.send(spawn_here(&mut command, inherit, confinement));
            }
        });
    Mutex::new(started.ok().map(|_| tx))
});

/// Spawns `command` from the spawner thread, with `inherit` in place and `confinement`
/// applied; the child gets SIGKILL when the host dies.
pub(crate) fn spawn(
    command: Command,
    inherit: Vec<Inherit>,
    confinement: Confinement,
) -> io::Result<Child> {
    let (reply_tx, reply_rx) = channel();
    let spawner = SPAWNER
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or_else(|| io::Error::other("the spawner thread could not be started"))?;
    spawner
        .send((command, inherit, confinement, reply_tx))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

fn spawn_here(
    command: &mut Command,
    inherit: Vec<Inherit>,
    confinement: Confinement,
) -> io::Result<Child> {
    // Above every target number, close-on-exec: only the copies placed below survive exec.
    let mut moves = Vec::with_capacity(inherit.len());
    let mut scratch = Vec::with_capacity(inherit.len());
    for Inherit { fd, at } in &inherit {
        let high = rustix::io::fcntl_dupfd_cloexec(fd, SCRATCH_FD.max(at + 1))?;
        moves.push((high.as_raw_fd(), *at));
        scratch.push(high);
    }
    // SAFETY: getpid/getppid/prctl/dup2 and the confinement's calls are async-signal-safe,
    // as required between fork and exec; `moves` and `confinement` are only read.
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
            for &(from, to) in &moves {
                // dup2 clears close-on-exec on the copy.
                if libc::dup2(from, to) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            // Last: Landlock and seccomp would refuse nothing above, but come after it all.
            confinement.apply()
        });
    }
    let spawned = command.spawn();
    drop(scratch);
    drop(inherit);
    spawned
}
