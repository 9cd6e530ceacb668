//! The Landlock ruleset of one child, built in the host before the fork; the child only
//! enforces it (`landlock_restrict_self` on the ruleset's descriptor).

use std::os::fd::OwnedFd;
use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, Scope,
};
use troupe_value::Protection;

use super::SandboxError;
use super::paths::AllowedPaths;

/// The ABI whose rights are asked for (best effort below it). Newer ones are left out
/// until tested: each adds rights that would be denied by default.
const TARGET: ABI = ABI::V6;
/// `TARGET` as the kernel numbers it.
const TARGET_VERSION: u32 = 6;

/// A ruleset ready to be enforced, and what it protects on this kernel.
#[derive(Debug)]
pub(crate) struct LandlockRuleset {
    /// The ruleset's descriptor (close-on-exec).
    pub(crate) fd: OwnedFd,
    /// What it protects here.
    pub(crate) protections: Vec<Protection>,
}

/// What Landlock protects on a kernel with ABI `abi` (`None`: no Landlock), for a child
/// that may (`network`) or may not use TCP.
pub(crate) fn protections(abi: Option<u32>, network: bool) -> Vec<Protection> {
    let abi = abi.unwrap_or(0).min(TARGET_VERSION);
    let mut protections = Vec::new();
    if abi >= 1 {
        protections.push(Protection::Landlock);
    }
    if abi >= 4 && !network {
        protections.push(Protection::LandlockNetwork);
    }
    if abi >= 6 {
        protections.push(Protection::LandlockScopes);
    }
    protections
}

/// What Landlock would protect on a kernel with every ABI up to [`TARGET`].
pub(crate) fn wanted(network: bool) -> Vec<Protection> {
    protections(Some(TARGET_VERSION), network)
}

/// Builds the ruleset allowing `paths` (and TCP when `network`); `None` where the kernel
/// has no Landlock (`abi`).
pub(crate) fn build(
    paths: &AllowedPaths,
    network: bool,
    abi: Option<u32>,
) -> Result<Option<LandlockRuleset>, SandboxError> {
    if abi.is_none() {
        return Ok(None);
    }
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET))
        .map_err(SandboxError::Landlock)?;
    if !network {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(TARGET))
            .map_err(SandboxError::Landlock)?;
    }
    let mut created = ruleset
        .scope(Scope::from_all(TARGET))
        .map_err(SandboxError::Landlock)?
        .create()
        .map_err(SandboxError::Landlock)?;
    let read = AccessFs::from_read(TARGET);
    let all = AccessFs::from_all(TARGET);
    let rules = paths
        .read
        .iter()
        .map(|p| (p, read))
        .chain(paths.write.iter().map(|p| (p, all)));
    for (path, access) in rules {
        let Some(rule) = rule(path, access) else {
            continue;
        };
        created = created.add_rule(rule).map_err(SandboxError::Landlock)?;
    }
    let fd: Option<OwnedFd> = created.into();
    Ok(fd.map(|fd| LandlockRuleset {
        fd,
        protections: protections(abi, network),
    }))
}

/// The rule for `path` (a file gets only the rights files have); `None` when it cannot be
/// opened (it went away since it was listed).
fn rule(path: &Path, access: landlock::BitFlags<AccessFs>) -> Option<PathBeneath<PathFd>> {
    let is_dir = path.metadata().ok()?.is_dir();
    let access = if is_dir {
        access
    } else {
        access & AccessFs::from_file(TARGET)
    };
    PathFd::new(path)
        .ok()
        .map(|fd| PathBeneath::new(fd, access))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protections_follow_the_abi() {
        assert!(protections(None, false).is_empty());
        assert_eq!(protections(Some(1), false), [Protection::Landlock]);
        assert_eq!(
            protections(Some(4), false),
            [Protection::Landlock, Protection::LandlockNetwork]
        );
        assert_eq!(protections(Some(4), true), [Protection::Landlock]);
        assert_eq!(protections(Some(9), false).len(), 3);
    }
}
