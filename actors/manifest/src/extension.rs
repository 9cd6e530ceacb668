//! `[extensions.NAME]`: a Python extension the host is to start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use troupe_bridge_python::extension::{ExtensionConfig, MAX_MEMORY_LIMIT_MB};
use troupe_bridge_python::process::SandboxConfig;
use troupe_host::extension_host::Grants;
use troupe_runtime::supervision::RestartSpec;

use crate::document::{Document, KeyPath};
use crate::error::{ManifestError, ManifestErrorKind};
use crate::raw::RawExtension;
use crate::restart::restart_spec;
use crate::sandbox::sandbox_config;

/// A Python extension as the manifest declares it: what to import, in which environment,
/// under which limits and with which rights. The extension host turns it into a running
/// bridged actor.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionManifest {
    /// Its name (the table's key); python nodes and grants refer to it by this name.
    pub name: String,
    /// The Python module to import, e.g. `features.segments`.
    pub module: String,
    /// A directory added to the child's `sys.path`, resolved against the manifest's
    /// directory.
    pub path: Option<PathBuf>,
    /// The `Extension` subclass to instantiate; `None`: the module's only one.
    pub class: Option<String>,
    /// Requirements for its venv, as PEP 508 strings (`numpy>=2,<3`): the manifest's
    /// `dependencies`, then those of the `pyproject` file's `[project] dependencies`.
    pub dependencies: Vec<String>,
    /// The interpreter its venv is based on (a name on `PATH` or a path); `None`: the
    /// host's default.
    pub python: Option<PathBuf>,
    /// Whether its venv sees the interpreter's site-packages (`--system-site-packages`), e.g.
    /// a GPU machine's system torch when no package index can be reached.
    pub system_site_packages: bool,
    /// When and how often its child process is restarted after a crash.
    pub restart: RestartSpec,
    /// Resident memory above which the child is killed (and restarted per `restart`).
    pub memory_limit_mb: Option<u64>,
    /// How long one call may take before it fails with a timeout.
    pub call_timeout: Option<Duration>,
    /// How long a cancelled (timed-out) call may run on before the child is killed and
    /// restarted (`None`: the default, `DEFAULT_CANCEL_GRACE`).
    pub cancel_grace: Option<Duration>,
    /// How long importing the module and its start-up hooks may take (`None`: the default,
    /// `DEFAULT_START_TIMEOUT`).
    pub start_timeout: Option<Duration>,
    /// What the extension may call, as listed (see [`ExtensionManifest::host_grants`]).
    pub grants: GrantsTable,
    /// Extra environment variables of its child process.
    pub env: IndexMap<String, String>,
    /// How its child process is confined (`sandbox`; default: the `default` level).
    pub sandbox: SandboxConfig,
    /// The `[hosts.NAME]` that serve it (`host = "NAME"`, or `hosts = [...]` in order of
    /// preference for fail-over); empty: this host runs it. The rest of the table says what
    /// those hosts run (the same file can serve both sides).
    pub hosts: Vec<String>,
    /// Its methods that are safe to run again (`idempotent = [...]`): a call of one that
    /// fails with a lost host is made again on the next host of `hosts`. Others are at most
    /// once.
    pub idempotent: Vec<String>,
    /// When serving it to other hosts (`troupe serve --users FILE`), the only users of that
    /// file who may call it (`users = [...]`); `None`: every user who connects.
    pub users: Option<Vec<String>>,
}

/// An extension's `grants` table as the manifest lists it, names in file order so that an
/// error can point at one. [`ExtensionManifest::host_grants`] makes it the [`Grants`] the
/// extension host enforces: everything not granted is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantsTable {
    /// Singletons (by manifest name) it may call.
    pub singletons: Vec<String>,
    /// Other extensions (by manifest name) it may call.
    pub extensions: Vec<String>,
}

impl ExtensionManifest {
    /// The bridge configuration that starts this extension.
    pub fn config(&self) -> ExtensionConfig {
        let mut config = ExtensionConfig::new(&self.name, &self.module)
            .dependencies(self.dependencies.iter().cloned())
            .system_site_packages(self.system_site_packages)
            .restart(self.restart)
            .sandbox(self.sandbox.clone());
        if let Some(path) = &self.path {
            config = config.path(path);
        }
        if let Some(class) = &self.class {
            config = config.class(class);
        }
        if let Some(python) = &self.python {
            config = config.python(python);
        }
        if let Some(mb) = self.memory_limit_mb {
            config = config.memory_limit_mb(mb);
        }
        if let Some(timeout) = self.call_timeout {
            config = config.call_timeout(timeout);
        }
        if let Some(grace) = self.cancel_grace {
            config = config.cancel_grace(Some(grace));
        }
        if let Some(timeout) = self.start_timeout {
            config = config.start_timeout(timeout);
        }
        for (key, value) in &self.env {
            config = config.var(key, value);
        }
        config
    }

    /// What the extension host lets it call: the host, plus its granted singletons and
    /// extensions.
    pub fn host_grants(&self) -> Grants {
        Grants::host_only()
            .singletons(self.grants.singletons.iter().cloned())
            .extensions(self.grants.extensions.iter().cloned())
    }

    /// Checks `raw` (found at `path`); `base` is the manifest's directory. Grants are
    /// checked once every name is known ([`check_grants`]).
    pub(crate) fn from_raw(
        name: &str,
        raw: RawExtension,
        path: &KeyPath,
        base: &Path,
        document: &Document,
        known_host: impl Fn(&str) -> bool,
    ) -> Result<ExtensionManifest, ManifestError> {
        let invalid = |key: KeyPath, reason: &str| {
            document.error(
                &key,
                ManifestErrorKind::Invalid {
                    reason: reason.to_owned(),
                },
            )
        };
        if !is_module_name(&raw.module) {
            return Err(invalid(
                path.key("module"),
                "must be a dotted Python module name, e.g. `features.segments`",
            ));
        }
        for (i, requirement) in raw.dependencies.iter().enumerate() {
            if !looks_like_requirement(requirement) {
                return Err(invalid(
                    path.key("dependencies").index(i),
                    "must be a PEP 508 requirement, e.g. `numpy>=2,<3`",
                ));
            }
        }
        let mut dependencies = raw.dependencies;
        if let Some(pyproject) = &raw.pyproject {
            let file = base.join(pyproject);
            let extra = pyproject_dependencies(&file)
                .map_err(|reason| invalid(path.key("pyproject"), &reason))?;
            dependencies.extend(extra);
        }
        if let Some(mb) = raw.memory_limit_mb
            && !(1..=MAX_MEMORY_LIMIT_MB).contains(&mb)
        {
            return Err(invalid(
                path.key("memory_limit_mb"),
                &format!("must be from 1 to {MAX_MEMORY_LIMIT_MB}"),
            ));
        }
        for (key, value) in [
            ("call_timeout_ms", raw.call_timeout_ms),
            ("start_timeout_ms", raw.start_timeout_ms),
            ("cancel_grace_ms", raw.cancel_grace_ms),
        ] {
            if value == Some(0) {
                return Err(invalid(path.key(key), "must be positive"));
            }
        }
        let restart = match &raw.restart {
            Some(restart) => restart_spec(restart, &path.key("restart"), document)?,
            None => RestartSpec::default(),
        };
        let sandbox = match &raw.sandbox {
            Some(sandbox) => sandbox_config(sandbox, &path.key("sandbox"), base, document)?,
            None => SandboxConfig::default(),
        };
        let unknown = |key: KeyPath, host: &str| {
            document.error(
                &key,
                ManifestErrorKind::UnknownHost {
                    name: host.to_owned(),
                },
            )
        };
        let hosts = match (raw.host, raw.hosts) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    path.key("hosts"),
                    "give `host` or `hosts`, not both",
                ));
            }
            (Some(host), None) if !known_host(&host) => {
                return Err(unknown(path.key("host"), &host));
            }
            (Some(host), None) => vec![host],
            (None, Some(hosts)) if hosts.is_empty() => {
                return Err(invalid(
                    path.key("hosts"),
                    "must name at least one host (leave it out to run the extension here)",
                ));
            }
            (None, hosts) => hosts.unwrap_or_default(),
        };
        if let Some((i, host)) = hosts.iter().enumerate().find(|(_, h)| !known_host(h)) {
            return Err(unknown(path.key("hosts").index(i), host));
        }
        if let Some(i) = (1..hosts.len()).find(|&i| hosts[..i].contains(&hosts[i])) {
            return Err(invalid(path.key("hosts").index(i), "named twice"));
        }
        if raw.users.as_ref().is_some_and(Vec::is_empty) {
            return Err(invalid(
                path.key("users"),
                "must name at least one user (leave it out to let every user call it)",
            ));
        }
        if !raw.idempotent.is_empty() && hosts.is_empty() {
            return Err(invalid(
                path.key("idempotent"),
                "only extensions on other hosts are retried",
            ));
        }
        Ok(ExtensionManifest {
            name: name.to_owned(),
            module: raw.module,
            path: raw.path.map(|p| base.join(p)),
            class: raw.class,
            dependencies,
            python: raw.python.map(PathBuf::from),
            system_site_packages: raw.system_site_packages,
            restart,
            memory_limit_mb: raw.memory_limit_mb,
            call_timeout: raw.call_timeout_ms.map(Duration::from_millis),
            start_timeout: raw.start_timeout_ms.map(Duration::from_millis),
            cancel_grace: raw.cancel_grace_ms.map(Duration::from_millis),
            grants: GrantsTable {
                singletons: raw.grants.singletons,
                extensions: raw.grants.extensions,
            },
            env: raw.env,
            sandbox,
            hosts,
            idempotent: raw.idempotent,
            users: raw.users,
        })
    }

    /// Whether host `host` runs it (`None`: a host with no name, like `troupe run`'s): an
    /// extension with no `host` runs on every host, one with hosts on those it names.
    pub fn served_by(&self, host: Option<&str>) -> bool {
        self.hosts.is_empty() || host.is_some_and(|host| self.hosts.iter().any(|h| h == host))
    }

    /// Checks that every grant names a declared singleton or extension.
    pub(crate) fn check_grants(
        &self,
        path: &KeyPath,
        has_singleton: impl Fn(&str) -> bool,
        has_extension: impl Fn(&str) -> bool,
        document: &Document,
    ) -> Result<(), ManifestError> {
        let grants = path.key("grants");
        for (i, name) in self.grants.singletons.iter().enumerate() {
            if !has_singleton(name) {
                return Err(document.error(
                    &grants.key("singletons").index(i),
                    ManifestErrorKind::UnknownSingleton { name: name.clone() },
                ));
            }
        }
        for (i, name) in self.grants.extensions.iter().enumerate() {
            if !has_extension(name) {
                return Err(document.error(
                    &grants.key("extensions").index(i),
                    ManifestErrorKind::UnknownExtension { name: name.clone() },
                ));
            }
        }
        Ok(())
    }
}

fn is_module_name(module: &str) -> bool {
    module.split('.').all(|part| {
        let mut chars = part.chars();
        chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && chars.all(|c| c.is_alphanumeric() || c == '_')
    })
}

/// A light check (the installer does the full parse): a distribution name first, no line
/// breaks.
fn looks_like_requirement(requirement: &str) -> bool {
    let requirement = requirement.trim();
    requirement
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && !requirement.contains(['\n', '\r'])
}

/// The `[project] dependencies` of a `pyproject.toml` (PEP 621), checked like the
/// manifest's own; an error says what is wrong, naming the file.
fn pyproject_dependencies(file: &Path) -> Result<Vec<String>, String> {
    let shown = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let document: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{shown} is not valid TOML: {e}"))?;
    let Some(project) = document.get("project") else {
        return Err(format!("{shown} has no [project] table"));
    };
    let Some(listed) = project.get("dependencies") else {
        return Ok(Vec::new());
    };
    let toml::Value::Array(listed) = listed else {
        return Err(format!(
            "{shown}: project.dependencies must be a list of strings"
        ));
    };
    listed
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            toml::Value::String(requirement) if looks_like_requirement(requirement) => {
                Ok(requirement.clone())
            }
            _ => Err(format!(
                "{shown}: project.dependencies[{i}] must be a PEP 508 requirement string"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_requirements() {
        assert!(is_module_name("features.segments"));
        assert!(is_module_name("_private"));
        assert!(!is_module_name("features..x"));
        assert!(!is_module_name("2fast"));
        assert!(!is_module_name(""));
        assert!(looks_like_requirement("numpy>=2,<3"));
        assert!(looks_like_requirement(
            "torch[cuda] ; python_version >= '3.11'"
        ));
        assert!(!looks_like_requirement(">=2"));
        assert!(!looks_like_requirement("numpy\nscipy"));
    }

    #[test]
    fn pyproject_dependencies_are_read_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pyproject.toml");
        std::fs::write(
            &file,
            "[project]\nname = \"x\"\ndependencies = [\"numpy>=2,<3\", \"six\"]\n",
        )
        .expect("write");
        assert_eq!(
            pyproject_dependencies(&file),
            Ok(vec!["numpy>=2,<3".to_owned(), "six".to_owned()])
        );
        std::fs::write(&file, "[project]\ndependencies = [\"ok\", 3]\n").expect("write");
        let err = pyproject_dependencies(&file).expect_err("a number is no requirement");
        assert!(err.contains("project.dependencies[1]"), "{err}");
        std::fs::write(&file, "[tool.x]\n").expect("write");
        assert!(pyproject_dependencies(&file).is_err());
        let missing = pyproject_dependencies(&dir.path().join("nope.toml")).expect_err("missing");
        assert!(missing.contains("cannot read"), "{missing}");
    }
}
