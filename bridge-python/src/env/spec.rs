//! What an extension asks for: an interpreter, its requirements, and whether the
//! interpreter's own site-packages stay visible.

use std::path::PathBuf;

use super::error::EnvError;

/// The environment one extension needs. Specs that differ only in how their requirements
/// are spelled (order, spacing, duplicates, case of the project name) share one venv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSpec {
    /// The interpreter the venv is based on: a path, or a name looked up on `PATH`.
    pub python: PathBuf,
    /// PEP 508 requirement strings, as the extension declares them (local paths and URLs
    /// are passed through as written).
    pub dependencies: Vec<String>,
    /// Let the venv see the interpreter's site-packages, e.g. the system torch of a GPU
    /// machine with no package index; then an empty dependency list installs nothing.
    pub system_site_packages: bool,
    /// Who needs it (an extension name), for messages only: not part of the cache key.
    pub label: Option<String>,
}

impl EnvSpec {
    /// A spec for these requirements on `python3`, without system site-packages.
    pub fn new<I, S>(dependencies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            python: PathBuf::from("python3"),
            dependencies: dependencies.into_iter().map(Into::into).collect(),
            system_site_packages: false,
            label: None,
        }
    }

    /// Bases the venv on another interpreter.
    pub fn with_python(mut self, python: impl Into<PathBuf>) -> Self {
        self.python = python.into();
        self
    }

    /// Makes the interpreter's site-packages visible in the venv.
    pub fn with_system_site_packages(mut self, yes: bool) -> Self {
        self.system_site_packages = yes;
        self
    }

    /// Names the extension in messages and errors.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The requirements as they enter the cache key: normalised, sorted, de-duplicated.
    pub fn normalized_dependencies(&self) -> Result<Vec<String>, EnvError> {
        let mut out = self
            .dependencies
            .iter()
            .map(|raw| normalize_requirement(raw))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// `label [dep, dep, ...]`, for errors and logs.
    pub(crate) fn summary(&self) -> String {
        const SHOWN: usize = 6;
        let mut deps = self
            .dependencies
            .iter()
            .take(SHOWN)
            .map(|d| d.trim())
            .collect::<Vec<_>>()
            .join(", ");
        if self.dependencies.len() > SHOWN {
            deps.push_str(", ...");
        }
        match &self.label {
            Some(label) => format!("{label} [{deps}]"),
            None => format!("[{deps}]"),
        }
    }
}

impl Default for EnvSpec {
    fn default() -> Self {
        Self::new(Vec::<String>::new())
    }
}

/// Normalises one requirement just enough that trivial spelling differences share a venv:
/// the project name is lowercased with runs of `-_.` made one `-` (PEP 503), whitespace
/// is dropped from the version part and collapsed in the marker part. Anything that does
/// not start like `name[...]`/`name==...` (a path, a URL) is only trimmed.
pub(crate) fn normalize_requirement(raw: &str) -> Result<String, EnvError> {
    let reject = |reason| EnvError::Requirement {
        requirement: raw.to_owned(),
        reason,
    };
    let text = raw.trim();
    if text.is_empty() {
        return Err(reject("empty requirement"));
    }
    if text.starts_with('-') {
        return Err(reject("installer options are not requirements"));
    }
    if !text.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Ok(text.to_owned());
    }
    let name_len = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(text.len());
    let (name, rest) = text.split_at(name_len);
    let follows_name = |c: char| c.is_whitespace() || "[(<>=!~@;".contains(c);
    if !rest.is_empty() && !rest.starts_with(follows_name) {
        return Ok(text.to_owned());
    }
    let name = normalize_name(name);
    let rest = rest.trim_start();
    if let Some((extras, url)) = rest.split_once('@').filter(|(extras, _)| {
        let extras = extras.trim();
        extras.is_empty() || (extras.starts_with('[') && extras.ends_with(']'))
    }) {
        // A URL requirement: the URL may hold anything, so only spacing is tidied.
        let extras: String = extras.split_whitespace().collect();
        return Ok(format!("{name}{extras} @ {}", collapse_whitespace(url)));
    }
    let (version, marker) = match rest.split_once(';') {
        Some((version, marker)) => (version, Some(marker)),
        None => (rest, None),
    };
    let version: String = version.split_whitespace().collect();
    Ok(
        match marker.map(collapse_whitespace).filter(|m| !m.is_empty()) {
            Some(marker) => format!("{name}{version}; {marker}"),
            None => format!("{name}{version}"),
        },
    )
}

fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> String {
        normalize_requirement(raw).expect("accepted")
    }

    #[test]
    fn spelling_variants_normalise_alike() {
        assert_eq!(norm("  Six == 1.16.0 "), "six==1.16.0");
        assert_eq!(norm("six==1.16.0"), "six==1.16.0");
        assert_eq!(norm("Zope_Interface>=5"), "zope-interface>=5");
        assert_eq!(norm("zope.interface >= 5"), "zope-interface>=5");
        assert_eq!(norm("requests [socks] >=2, <3"), "requests[socks]>=2,<3");
        assert_eq!(
            norm("numpy<2 ;  python_version  <  \"3.12\""),
            "numpy<2; python_version < \"3.12\""
        );
        assert_eq!(norm("packaging"), "packaging");
    }

    #[test]
    fn urls_and_paths_pass_through() {
        assert_eq!(norm("Foo @ https://x/Foo.whl"), "foo @ https://x/Foo.whl");
        assert_eq!(norm("Foo@https://x/Foo.whl"), "foo @ https://x/Foo.whl");
        assert_eq!(norm("./plugins/My_Pkg"), "./plugins/My_Pkg");
        assert_eq!(norm("plugins/My_Pkg"), "plugins/My_Pkg");
        assert_eq!(norm("https://x/My_Pkg.tar.gz"), "https://x/My_Pkg.tar.gz");
    }

    #[test]
    fn options_and_blanks_are_rejected() {
        assert!(matches!(
            normalize_requirement("--index-url=http://evil"),
            Err(EnvError::Requirement { .. })
        ));
        assert!(matches!(
            normalize_requirement("   "),
            Err(EnvError::Requirement { .. })
        ));
    }

    #[test]
    fn dependency_lists_are_sorted_and_deduplicated() {
        let spec = EnvSpec::new(["six==1.16.0", "packaging", " Six == 1.16.0"]);
        assert_eq!(
            spec.normalized_dependencies().expect("valid"),
            ["packaging", "six==1.16.0"]
        );
    }
}
