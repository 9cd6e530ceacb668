//! What a child does to itself between fork and exec: everything built beforehand in the
//! host, so that [`Confinement::apply`] only makes system calls (async-signal-safe, no
//! allocation), as a forked child of a multi-threaded host must.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use seccompiler::BpfProgram;

use super::super::spawner::SCRATCH_FD;
use super::seccomp::Filters;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit capability sets in two words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// `SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
/// SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
/// SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED`: uid 0 gains no capabilities on exec.
const SECURE_BITS: libc::c_ulong = 0b1110_1111;

/// The steps of one child's confinement, ready to apply.
#[derive(Debug, Default)]
pub(crate) struct Confinement {
    /// Forbid core dumps (`RLIMIT_CORE` 0): a dump would write the child's memory where
    /// its sandbox does not let it write.
    pub(crate) no_core_dumps: bool,
    /// Set no-new-privileges (needed by Landlock and seccomp without `CAP_SYS_ADMIN`).
    pub(crate) no_new_privs: bool,
    /// Drop every capability (bounding set, then the sets): the host runs as root.
    pub(crate) drop_capabilities: bool,
    /// `cgroup.procs` of the child's cgroup, to move itself into.
    pub(crate) cgroup_procs: Option<OwnedFd>,
    /// The Landlock ruleset to enforce.
    pub(crate) landlock: Option<OwnedFd>,
    /// The seccomp filters to install, last.
    pub(crate) seccomp: Option<Filters>,
    /// Descriptor ranges (inclusive) marked close-on-exec: whatever the host left open
    /// there without the flag (a leaked descriptor would bypass Landlock) stays behind.
    pub(crate) cloexec_ranges: Vec<(libc::c_uint, libc::c_uint)>,
}

/// `CLOSE_RANGE_CLOEXEC`.
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// `fd`, moved above every number a child's descriptors are put at (the spawner's scratch
/// range): between fork and exec those are overwritten before the confinement runs, and a
/// ruleset at 3 would have become the connection's socket by then.
pub(crate) fn out_of_the_way(fd: OwnedFd) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, SCRATCH_FD)?)
}

/// The layout of `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// The layout of `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The layout of `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const seccompiler::sock_filter,
}

impl Confinement {
    /// Applies every step to the calling process. Only system calls: safe between fork and
    /// exec.
    ///
    /// # Errors
    /// A step failed (what the kernel said).
    pub(crate) fn apply(&self) -> io::Result<()> {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY (this block and the calls below): plain system calls on values that live
        // on this stack frame or in `self`, which outlives them.
        if self.no_core_dumps {
            check(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) })?;
        }
        for &(first, last) in &self.cloexec_ranges {
            // Best effort: kernels before 5.11 lack the flag (ENOSYS, EINVAL).
            unsafe { libc::syscall(libc::SYS_close_range, first, last, CLOSE_RANGE_CLOEXEC) };
        }
        if let Some(procs) = &self.cgroup_procs {
            let written = unsafe { libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) };
            if written != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        if self.no_new_privs {
            check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
        }
        if self.drop_capabilities {
            drop_capabilities()?;
        }
        if let Some(ruleset) = &self.landlock {
            let r =
                unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0) };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(filters) = &self.seccomp {
            for program in filters.programs.iter() {
                install(program)?;
            }
        }
        Ok(())
    }
}

/// Empties the bounding set (best effort: a container may already deny it), locks uid 0
/// out of regaining capabilities on exec, then empties the ambient, effective, permitted
/// and inheritable sets.
fn drop_capabilities() -> io::Result<()> {
    // SAFETY: plain system calls; the capset arguments live on this stack frame.
    unsafe {
        for cap in 0..=last_capability() {
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
        libc::prctl(libc::PR_SET_SECUREBITS, SECURE_BITS, 0, 0, 0);
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        let mut header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let empty = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        check(libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            empty.as_ptr(),
        ) as libc::c_int)
    }
}

/// The highest capability number the kernel knows: `PR_CAPBSET_READ` fails past it.
fn last_capability() -> libc::c_ulong {
    let mut cap: libc::c_ulong = 0;
    // SAFETY: a read-only prctl.
    while cap < 128 && unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap + 1, 0, 0, 0) } >= 0 {
        cap += 1;
    }
    cap
}

/// Installs one compiled filter.
fn install(program: &BpfProgram) -> io::Result<()> {
    let fprog = SockFprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr(),
    };
    // SAFETY: the kernel copies the program during the call; it lives in `program`.
    check(unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const SockFprog,
        )
    })
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_it_uses_are_moved_out_of_the_way() {
        let (low, _) = std::io::pipe().expect("pipe");
        let moved = out_of_the_way(low.into()).expect("dup");
        assert!(moved.as_raw_fd() >= SCRATCH_FD);
    }
}
