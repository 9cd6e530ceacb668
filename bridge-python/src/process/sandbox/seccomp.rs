//! The seccomp filters of a child, compiled in the host (once per network setting); the
//! child only installs them.
//!
//! Every system call is allowed except those that reach other processes (`ptrace`,
//! `process_vm_*`), change the mount or namespace view (`mount`, `unshare`, `setns`, `clone`
//! with `CLONE_NEW*`), or expose kernel attack surface a Python extension has no use for
//! (`bpf`, `io_uring`, keyrings, `perf_event_open`, modules, `kexec`, `reboot`, swap,
//! `userfaultfd`); those fail with `EPERM`. `socket()` is refused for every family but
//! `AF_UNIX` (and `AF_INET`/`AF_INET6` with `network = true`). `clone3` fails with `ENOSYS`,
//! as on an older kernel, since its flags sit in memory a filter cannot read: libc then
//! falls back to `clone`, whose flags are checked.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::SandboxError;

/// The namespace flags `clone` may not carry (`CLONE_NEWTIME` shares its bit with the exit
/// signal in `clone`, and is only valid in `clone3`/`unshare`, both refused).
const CLONE_NAMESPACES: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// System calls refused outright.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_bpf,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_perf_event_open,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_userfaultfd,
];

/// The compiled filters a child installs, in order.
#[derive(Debug, Clone)]
pub(crate) struct Filters {
    /// Each filter's program.
    pub(crate) programs: Arc<[BpfProgram]>,
}

/// The filters for a child that may (`network`) or may not open TCP/UDP sockets; compiled
/// once per setting.
pub(crate) fn filters(network: bool) -> Result<Filters, SandboxError> {
    static WITH_NETWORK: OnceLock<Filters> = OnceLock::new();
    static WITHOUT: OnceLock<Filters> = OnceLock::new();
    let cell = if network { &WITH_NETWORK } else { &WITHOUT };
    if let Some(filters) = cell.get() {
        return Ok(filters.clone());
    }
    let programs: Arc<[BpfProgram]> = Arc::from(vec![denials(network)?, clone3()?]);
    Ok(cell.get_or_init(|| Filters { programs }).clone())
}

/// A backend error as the sandbox reports it.
fn seccomp(error: seccompiler::BackendError) -> SandboxError {
    SandboxError::Seccomp(error.into())
}

/// `rules` compiled for this machine: a matching call fails with `errno`, every other one
/// is allowed.
fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram, SandboxError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| SandboxError::Seccomp(e.into()))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(seccomp)?;
    BpfProgram::try_from(filter).map_err(seccomp)
}

/// `EPERM` for the denied calls, `clone` with namespace flags, and sockets of other
/// families.
fn denials(network: bool) -> Result<BpfProgram, SandboxError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
    let clone_rules = CLONE_NAMESPACES
        .iter()
        .map(|&flag| {
            let masked = SeccompCmpOp::MaskedEq(flag);
            SeccompCondition::new(0, SeccompCmpArgLen::Qword, masked, flag)
                .and_then(|c| SeccompRule::new(vec![c]))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(seccomp)?;
    rules.insert(libc::SYS_clone, clone_rules);
    let allowed_families: &[libc::c_int] = if network {
        &[libc::AF_UNIX, libc::AF_INET, libc::AF_INET6]
    } else {
        &[libc::AF_UNIX]
    };
    let other_family = allowed_families
        .iter()
        .map(|&family| {
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, family as u64)
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(SeccompRule::new)
        .map_err(seccomp)?;
    rules.insert(libc::SYS_socket, vec![other_family]);
    compile(rules, libc::EPERM)
}

/// `ENOSYS` for `clone3`.
fn clone3() -> Result<BpfProgram, SandboxError> {
    compile(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        libc::ENOSYS,
    )
}

/// The program's bytes, as `bwrap --add-seccomp-fd` reads them.
pub(crate) fn bytes(program: &BpfProgram) -> Vec<u8> {
    program
        .iter()
        .flat_map(|f| {
            let mut raw = [0u8; 8];
            raw[..2].copy_from_slice(&f.code.to_ne_bytes());
            raw[2] = f.jt;
            raw[3] = f.jf;
            raw[4..].copy_from_slice(&f.k.to_ne_bytes());
            raw
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_filters_compile_for_this_machine() {
        for network in [false, true] {
            let filters = filters(network).expect("compiles");
            assert_eq!(filters.programs.len(), 2);
            assert!(filters.programs.iter().all(|p| !p.is_empty()));
            assert_eq!(
                bytes(&filters.programs[1]).len(),
                filters.programs[1].len() * 8
            );
        }
    }
}
