//! Sandboxes for extension children, on by default.
//!
//! [`prepare`] builds everything a child's sandbox needs in the host, before the fork: its
//! private temp dir, the Landlock ruleset ([`landlock`](self::landlock)), the seccomp
//! filters ([`seccomp`]), for `strict` the bwrap command ([`bubblewrap`]) and a cgroup; the
//! child then only applies them between fork and exec ([`Confinement`]), with system calls
//! alone. What the kernel cannot give is found by [`support`] (asked once per process):
//! `default` logs one warning per extension naming each protection lost (a launch error
//! with `require`), `strict` refuses to start.
//!
//! The levels, and what they do not protect, are described in `docs/semantics.md`
//! ("Sandbox").

mod bubblewrap;
mod cgroup;
mod config;
mod confinement;
mod error;
mod landlock;
mod paths;
mod private_tmp;
mod seccomp;
pub mod support;

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::Path;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use troupe_protocol::ChildFds;
use troupe_value::Protection;

pub use config::{SandboxConfig, SandboxLevel};
pub(crate) use confinement::Confinement;
pub use error::SandboxError;
pub use support::{Bubblewrap, Support};

pub(crate) use bubblewrap::Wrapper;
use cgroup::ChildCgroup;
use paths::AllowedPaths;
pub(crate) use paths::Subject;
use private_tmp::PrivateTmp;

/// What the host keeps of a child's sandbox while the child runs: dropped (its temp dir and
/// cgroup removed) once the child is gone.
#[derive(Debug, Default)]
pub struct SandboxGuard {
    tmp: Option<PrivateTmp>,
    cgroup: Option<ChildCgroup>,
}

impl SandboxGuard {
    /// The child's private temp dir, if it has one.
    pub fn private_tmp(&self) -> Option<&Path> {
        self.tmp.as_ref().map(PrivateTmp::path)
    }
}

/// One child's sandbox, built and ready to spawn with.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// What the child applies to itself between fork and exec.
    pub(crate) confinement: Confinement,
    /// What lives as long as the child.
    pub(crate) guard: SandboxGuard,
    /// Variables the child gets on top of the usual ones.
    pub(crate) env: Vec<(OsString, OsString)>,
    /// The bwrap around it (`strict`).
    pub(crate) wrapper: Option<Wrapper>,
}

impl Prepared {
    /// The pid of the child's Python process, the spawned process being `spawned`.
    pub(crate) fn child_pid(&self, spawned: u32, deadline: Instant) -> u32 {
        match &self.wrapper {
            Some(wrapper) => wrapper.child_pid(spawned, deadline),
            None => spawned,
        }
    }
}

/// Builds the sandbox `config` asks for extension `name`'s child (`subject`), whose memory
/// is limited to `memory_limit` bytes.
///
/// # Errors
/// See [`SandboxError`].
pub(crate) fn prepare(
    name: &str,
    config: &SandboxConfig,
    subject: &Subject<'_>,
    memory_limit: Option<u64>,
) -> Result<Prepared, SandboxError> {
    let strict = match config.level {
        SandboxLevel::Off => {
            if first_time(name, "off") {
                tracing::info!(
                    extension = name,
                    "extension runs unsandboxed (sandbox = \"off\")"
                );
            }
            return Ok(Prepared::default());
        }
        SandboxLevel::Default => false,
        SandboxLevel::Strict => true,
    };
    let bwrap = if strict {
        match support::bubblewrap() {
            Bubblewrap::Works(path) => Some(path.clone()),
            Bubblewrap::Missing => return Err(SandboxError::NoBubblewrap),
            Bubblewrap::Broken { reason, .. } => {
                return Err(SandboxError::BubblewrapBroken(reason.clone()));
            }
        }
    } else {
        None
    };
    let tmp = PrivateTmp::create(name)?;
    let paths = AllowedPaths::of(subject, config, tmp.path());
    let ruleset = landlock::build(&paths, config.network, support::landlock_abi())?;
    let filters = if support::seccomp() {
        Some(seccomp::filters(config.network)?)
    } else {
        None
    };
    let mut applied = ruleset
        .as_ref()
        .map(|r| r.protections.clone())
        .unwrap_or_default();
    if filters.is_some() {
        applied.push(Protection::Seccomp);
    }
    tracing::debug!(extension = name, level = ?config.level, ?applied, "sandbox built");
    let mut lost = landlock::wanted(config.network);
    lost.push(Protection::Seccomp);
    lost.retain(|p| !applied.contains(p));
    if !lost.is_empty() {
        if strict || config.require {
            return Err(SandboxError::Unavailable(lost));
        }
        if first_time(name, "lost") {
            let lost: Vec<String> = lost.iter().map(ToString::to_string).collect();
            tracing::warn!(
                extension = name,
                lost = %lost.join(", "),
                "this kernel cannot give the extension's sandbox every protection; it runs without them"
            );
        }
    }
    let mut env: Vec<(OsString, OsString)> = vec![
        ("TMPDIR".into(), tmp.path().into()),
        // The venv is read-only: never try to write bytecode (it is compiled at install).
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
    ];
    let mut prepared = Prepared {
        confinement: Confinement {
            no_core_dumps: true,
            no_new_privs: true,
            ..Confinement::default()
        },
        ..Prepared::default()
    };
    // Above the connection's descriptors (3, 4, 5), nothing else of the host's reaches the
    // child, but bwrap's own (`bubblewrap::INHERITED`).
    let first_free = ChildFds::STANDARD
        .socket
        .max(ChildFds::STANDARD.doorbell)
        .max(ChildFds::STANDARD.wake)
        + 1;
    match bwrap {
        None => {
            prepared.confinement.cloexec_ranges = vec![(first_free as u32, u32::MAX)];
            prepared.confinement.drop_capabilities = runs_as_root();
            prepared.confinement.landlock = ruleset
                .map(|r| confinement::out_of_the_way(r.fd))
                .transpose()
                .map_err(SandboxError::io("landlock ruleset"))?;
            prepared.confinement.seccomp = filters;
        }
        Some(bwrap) => {
            // Both are there: otherwise `lost` refused the start above.
            let (Some(ruleset), Some(filters)) = (ruleset, filters) else {
                return Err(SandboxError::Unavailable(vec![Protection::Landlock]));
            };
            prepared.wrapper = Some(Wrapper::new(&bwrap, config, &paths, &filters, ruleset.fd)?);
            let (low, high) = bubblewrap::INHERITED;
            prepared.confinement.cloexec_ranges = vec![
                (first_free as u32, low as u32 - 1),
                (high as u32 + 1, u32::MAX),
            ];
            env.push((
                bubblewrap::LANDLOCK_FD_ENV.into(),
                bubblewrap::LANDLOCK_FD.to_string().into(),
            ));
            if let Some((cgroup, procs)) = child_cgroup(name, memory_limit) {
                let procs =
                    confinement::out_of_the_way(procs).map_err(SandboxError::io("cgroup.procs"))?;
                prepared.confinement.cgroup_procs = Some(procs);
                prepared.guard.cgroup = Some(cgroup);
            }
        }
    }
    prepared.env = env;
    prepared.guard.tmp = Some(tmp);
    Ok(prepared)
}

/// A cgroup for `name`'s strict child, where one can be made (a warning, once, otherwise).
fn child_cgroup(
    name: &str,
    memory_limit: Option<u64>,
) -> Option<(ChildCgroup, std::os::fd::OwnedFd)> {
    let made = match support::cgroup() {
        Some(parent) => ChildCgroup::create(parent, name, memory_limit).map_err(|e| e.to_string()),
        None => Err("no writable cgroup v2 directory with the memory and pids controllers".into()),
    };
    match made {
        Ok(made) => Some(made),
        Err(reason) => {
            if first_time(name, "cgroup") {
                tracing::warn!(extension = name, %reason, "strict sandbox without a cgroup");
            }
            None
        }
    }
}

fn runs_as_root() -> bool {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `what` is logged for extension `name` for the first time in this process.
fn first_time(name: &str, what: &'static str) -> bool {
    static LOGGED: LazyLock<Mutex<HashSet<(String, &'static str)>>> =
        LazyLock::new(|| Mutex::new(HashSet::new()));
    LOGGED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((name.to_owned(), what))
}
