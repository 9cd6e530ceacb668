//! The TOML manifest: extensions, singletons and pipelines in one file, checked before
//! anything runs.
//!
//! ```toml
//! [extensions.features]
//! module = "features"               # the Python module to import (required)
//! path = "plugins"                  # added to sys.path, relative to this file
//! class = "Features"                # the Extension subclass (default: the only one)
//! dependencies = ["numpy>=2,<3"]    # PEP 508 requirements of its venv
//! pyproject = "plugins/pyproject.toml" # optional: its [project] dependencies are added
//! python = "python3.12"             # the interpreter its venv is based on
//! system_site_packages = false      # true: the venv sees that interpreter's packages
//! restart = { policy = "transient", max_restarts = 3, within_s = 10, backoff_initial_ms = 50, backoff_max_ms = 2000 }
//! memory_limit_mb = 512
//! call_timeout_ms = 5000
//! cancel_grace_ms = 1000            # a timed-out call still running this long after: restart
//! start_timeout_ms = 20000            # import + start-up hooks (default 20 s)
//! grants = { singletons = ["store"], extensions = [] }
//! env = { OMP_NUM_THREADS = "1", HF_HOME = "${HOME}/.cache/hf" }
//! sandbox = "default"               # "off", "default" or "strict"; or a table:
//! # sandbox = { level = "strict", network = false, read = ["models"], write = [], gpu = false, require = true }
//!
//! host = "gpu1"                     # optional: served by [hosts.gpu1], not started here
//!
//! [hosts.gpu1]                      # a `troupe serve --name gpu1` host
//! connect = ["tcp/10.0.0.2:7447"]   # never tls/ (refused)
//! call_timeout_ms = 30000           # a call's deadline when its caller sets none
//! user = "${GPU1_USER}"             # optional user/password (both or neither)
//! password = "${GPU1_PASSWORD}"
//!
//! [singletons.store]
//! kind = "kv"                       # built in (see `singleton`), or a kind the host registers
//! capacity = 1000
//!
//! [pipelines.speech]
//! error_policy = "skip_item"        # or "fail_pipeline" (default), for every node
//! restart = { policy = "permanent" } # every processing node's default
//!
//! [[pipelines.speech.nodes]]
//! id = "input"
//! type = "audio.file_source"
//! params = { path = "${INPUT:-data/speech.wav}" }
//!
//! [[pipelines.speech.nodes]]
//! id = "features"
//! type = "python"
//! extension = "features"
//! method = "segment_features"
//! generator = false
//! flush = false
//!
//! [[pipelines.speech.edges]]
//! from = "input"
//! to = "features"
//! policy = "backpressure"           # or "drop_oldest", "drop_newest"
//! capacity = 16                     # the mailbox of `to`
//! ```
//!
//! [`Manifest::load`] reads and checks everything: unknown keys, wrong types, node types
//! and parameters (against [`troupe_nodes::catalog`]), edge endpoints, cycles, the
//! extensions python nodes and grants name. Every error is a [`ManifestError`] naming the
//! file, line and key. `${NAME}` in string values is replaced by the environment variable
//! (see the [`env` rules](self#variables)). Paths (an extension's `path`, node parameters
//! of kind path) are relative to the manifest's directory.
//!
//! [`Manifest::loader`] builds a pipeline entry into a [`Pipeline`](troupe_pipeline::Pipeline);
//! python nodes need [`PipelineLoader::python_nodes`]. Processing nodes restart after a
//! crash per their `restart` (default [`RestartSpec::default`](troupe_runtime::supervision::RestartSpec::default));
//! `restart = { policy = "temporary" }` makes a crash end the run.
//!
//! [`Manifest::extensions_with_grants`] gives the extensions to an
//! [`ExtensionHostBuilder`](troupe_host::extension_host::ExtensionHostBuilder::extensions),
//! whose [`ExtensionHost::python_nodes`](troupe_host::extension_host::ExtensionHost::python_nodes)
//! then makes the python nodes; [`Manifest::singletons`] go to
//! [`SingletonKinds::start_all`](troupe_host::singleton::SingletonKinds::start_all).
//!
//! # Variables
//!
//! `${NAME}` is the variable's value (unset: an error naming it and its line);
//! `${NAME:-default}` falls back to `default` when unset or empty; `$${` is a literal `${`.
//! Only string values are substituted.
//!
//! # Example
//!
//! ```
//! use troupe_manifest::{Manifest, ManifestErrorKind};
//!
//! let dir = std::env::temp_dir().join(format!("troupe-manifest-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(dir.join("in.jsonl"), "1\n2\n3\n").unwrap();
//! let text = r#"
//! [[pipelines.double.nodes]]
//! id = "numbers"
//! type = "data.jsonl_source"
//! params = { path = "in.jsonl" }
//!
//! [[pipelines.double.nodes]]
//! id = "times2"
//! type = "data.calculator"
//! params = { op = "multiply", operand = 2 }
//!
//! [[pipelines.double.edges]]
//! from = "numbers"
//! to = "times2"
//! "#;
//! let manifest = Manifest::parse(text, dir.join("double.toml")).unwrap();
//! actix::System::new().block_on(async {
//!     let pipeline = manifest.loader().build("double").unwrap();
//!     let summary = pipeline.run().await.unwrap();
//!     assert_eq!(summary.node("times2").unwrap().items_out, 3);
//! });
//!
//! // A typo is reported with its line and key.
//! let error = Manifest::parse(&text.replace("multiply", "multiplx"), "double.toml").unwrap_err();
//! assert!(matches!(error.kind(), ManifestErrorKind::BadParameter(_)));
//! assert_eq!(error.location.line, Some(10));
//! assert_eq!(error.location.key, "pipelines.double.nodes[1].params.op");
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

mod document;
mod env;
mod error;
mod extension;
mod host;
mod loader;
mod node;
mod pipeline;
mod raw;
mod restart;
mod sandbox;
mod singleton;
mod value;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use troupe_bridge_python::extension::ExtensionConfig;
use troupe_host::extension_host::Grants;
use troupe_host::singleton::SingletonSpec;

pub use error::{Location, ManifestError, ManifestErrorKind};
pub use extension::{ExtensionManifest, GrantsTable};
pub use host::{HostManifest, HostTls};
pub use loader::{PipelineLoader, PythonNodeMaker, RemoteNodeMaker, RemoteNodeSpec, ServedNode};
pub use node::{
    HOST_INPUT_TYPE, HOST_NODE_TYPE, MAX_CONCURRENCY, NodeBody, NodeManifest, PYTHON_NODE_TYPE,
};
pub use pipeline::{EdgeManifest, PipelineManifest};
pub use sandbox::SandboxSettingError;

use document::{Document, KeyPath};
use node::Known;
use raw::RawManifest;

/// A checked manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it was read from (or named after).
    pub file: PathBuf,
    /// `[extensions.NAME]`, in file order.
    pub extensions: IndexMap<String, ExtensionManifest>,
    /// `[singletons.NAME]`, in file order.
    pub singletons: IndexMap<String, SingletonSpec>,
    /// `[pipelines.NAME]`, in file order.
    pub pipelines: IndexMap<String, PipelineManifest>,
    /// `[hosts.NAME]`, in file order.
    pub hosts: IndexMap<String, HostManifest>,
    /// Where every key is, for errors found when building.
    document: Document,
}

impl Manifest {
    /// Reads and checks the manifest at `path`, with variables from the environment.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Document::file_error(path, ManifestErrorKind::Read(e)))?;
        Manifest::parse(&text, path)
    }

    /// Checks manifest `text`, as if read from `file` (relative paths in it are relative
    /// to `file`'s directory), with variables from the environment.
    pub fn parse(text: &str, file: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        Manifest::parse_with_env(text, file, |name| std::env::var(name).ok())
    }

    /// [`Manifest::parse`] with variables from `env` instead of the environment.
    pub fn parse_with_env(
        text: &str,
        file: impl AsRef<Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Manifest, ManifestError> {
        let file = file.as_ref();
        let (raw, document) = Document::parse::<RawManifest>(file, text, &env)?;
        let base = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let root = KeyPath::default();

        let mut hosts = IndexMap::new();
        for (name, raw) in raw.hosts {
            let path = root.key("hosts").key(&name);
            hosts.insert(
                name.clone(),
                HostManifest::from_raw(&name, raw, &path, &base, &document)?,
            );
        }
        let mut extensions = IndexMap::new();
        for (name, raw) in raw.extensions {
            let path = root.key("extensions").key(&name);
            let known_host = |host: &str| hosts.contains_key(host);
            let extension =
                ExtensionManifest::from_raw(&name, raw, &path, &base, &document, known_host)?;
            extensions.insert(name, extension);
        }
        let mut singletons = IndexMap::new();
        for (name, table) in raw.singletons {
            let path = root.key("singletons").key(&name);
            let singleton = singleton::singleton_spec(&name, table, &path, &document)?;
            singletons.insert(name, singleton);
        }
        for (name, extension) in &extensions {
            extension.check_grants(
                &root.key("extensions").key(name),
                |s| singletons.contains_key(s),
                |e| extensions.contains_key(e),
                &document,
            )?;
        }
        let known = Known {
            extension: &|name: &str| extensions.contains_key(name),
            host: &|name: &str| hosts.contains_key(name),
        };
        let mut pipelines = IndexMap::new();
        for (name, raw) in raw.pipelines {
            let path = root.key("pipelines").key(&name);
            let pipeline = PipelineManifest::from_raw(&name, raw, &path, &known, &base, &document)?;
            pipelines.insert(name, pipeline);
        }
        Ok(Manifest {
            file: file.to_owned(),
            extensions,
            singletons,
            pipelines,
            hosts,
            document,
        })
    }

    /// Pipeline `name`, or with `None` the only pipeline of the manifest.
    pub fn pipeline(&self, name: Option<&str>) -> Result<&PipelineManifest, ManifestError> {
        let path = KeyPath::default().key("pipelines");
        let found = match name {
            Some(name) => self.pipelines.get(name),
            None if self.pipelines.len() == 1 => self.pipelines.values().next(),
            None => None,
        };
        found.ok_or_else(|| {
            Manifest::error_for(
                &self.document,
                &path,
                name.unwrap_or_default(),
                self.pipelines.keys(),
            )
        })
    }

    /// Every extension this host starts (those with no `host`) as the extension host starts
    /// it: its bridge configuration and what it may call, in file order. Give them to
    /// [`ExtensionHostBuilder::extensions`](troupe_host::extension_host::ExtensionHostBuilder::extensions).
    pub fn extensions_with_grants(&self) -> impl Iterator<Item = (ExtensionConfig, Grants)> {
        self.extensions_served_by(None)
    }

    /// The extensions host `host` starts: those with `host = "HOST"` and those with no
    /// `host` (with `None`: only those), as [`Manifest::extensions_with_grants`] gives them.
    /// `troupe serve --name HOST` starts these.
    pub fn extensions_served_by(
        &self,
        host: Option<&str>,
    ) -> impl Iterator<Item = (ExtensionConfig, Grants)> {
        self.extensions
            .values()
            .filter(move |extension| extension.served_by(host))
            .map(|extension| (extension.config(), extension.host_grants()))
    }

    /// The extensions served elsewhere (`host = "NAME"` or `hosts = [...]`), each with its
    /// hosts in order of preference.
    pub fn remote_extensions(
        &self,
    ) -> impl Iterator<Item = (&ExtensionManifest, Vec<&HostManifest>)> {
        self.extensions.values().filter_map(|extension| {
            if extension.hosts.is_empty() {
                return None;
            }
            let hosts = extension
                .hosts
                .iter()
                .filter_map(|name| self.hosts.get(name))
                .collect();
            Some((extension, hosts))
        })
    }

    /// The built-in nodes placed on other hosts (`host = "NAME"` on a node), each with the
    /// host that runs it, in manifest order.
    pub fn remote_nodes(&self) -> impl Iterator<Item = (RemoteNodeSpec, &HostManifest)> {
        self.pipelines.values().flat_map(move |pipeline| {
            pipeline.nodes.iter().filter_map(move |node| {
                let host = self.hosts.get(node.host.as_deref()?)?;
                Some((RemoteNodeSpec::of(&pipeline.name, node)?, host))
            })
        })
    }

    /// The built-in nodes host `host` runs for others (those placed on it with
    /// `host = "HOST"`), in manifest order.
    pub fn nodes_served_by(&self, host: &str) -> impl Iterator<Item = ServedNode> {
        self.pipelines.values().flat_map(move |pipeline| {
            pipeline
                .nodes
                .iter()
                .filter(move |node| node.host.as_deref() == Some(host))
                .filter_map(|node| ServedNode::of(&pipeline.name, node))
        })
    }

    /// Builds this manifest's pipelines.
    pub fn loader(&self) -> PipelineLoader<'_> {
        PipelineLoader::new(self)
    }

    fn error_for<'a>(
        document: &Document,
        path: &KeyPath,
        name: &str,
        known: impl Iterator<Item = &'a String>,
    ) -> ManifestError {
        document.error(
            path,
            ManifestErrorKind::UnknownPipeline {
                name: name.to_owned(),
                known: known.cloned().collect(),
            },
        )
    }
}
