//! `troupe._host.Host`: extensions and singletons of a Python program, from a manifest and
//! from Python, started through the same extension host `troupe run` uses.
//!
//! What Python adds is written as the manifest's own tables (`[extensions.NAME]`,
//! `[singletons.NAME]`, `[pipelines.NAME]`), after the file's text if there is a file, and
//! checked by the manifest's one parser, so a bad option reads as it would in a file: the
//! key and what is wrong with it. Singletons
//! served by Python objects have kind `python`; a manifest may declare one for the host
//! program to serve.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use troupe_host::extension_host::ExtensionHost;
use troupe_host::singleton::SingletonKinds;
use troupe_manifest::Manifest;
use troupe_runtime::{Caller, Registry};

use crate::errors::HostError;
use crate::runtime::runtime;
use crate::served::{self, JobQueue};
use crate::target::Target;

/// The singleton kind of objects the host program serves.
pub(crate) const PYTHON_KIND: &str = "python";

/// Manifest sections Python may add to.
const SECTIONS: [(&str, &str); 3] = [
    ("extensions", "extension"),
    ("singletons", "singleton"),
    ("pipelines", "pipeline"),
];

/// What runs once the host has started.
pub(crate) struct Running {
    /// The manifest it was started from (its pipelines are built from it).
    pub(crate) manifest: Manifest,
    /// Its extensions (more may be added while it runs).
    pub(crate) extensions: ExtensionHost,
    /// Its singletons, by name.
    pub(crate) singletons: Registry,
    /// Its manifest's pipeline nodes placed on other hosts, bound (the extensions on other
    /// hosts are among `extensions`).
    pub(crate) remote: troupe_cluster::Bound,
}

#[derive(Default)]
struct State {
    file: Option<PathBuf>,
    added: toml::Table,
    served: HashMap<String, Caller>,
    service: Option<Caller>,
    running: Option<std::sync::Arc<Running>>,
    /// A `start()` is under way: nothing may be added until it ends.
    starting: bool,
    quiet: bool,
}

impl State {
    /// The manifest as it stands: the file's, what Python added (and `extra`, an
    /// extension table not added yet), and the objects the program serves as singletons
    /// of kind `python` (unless the file declares them).
    fn manifest(&self, extra: Option<(&str, &toml::Table)>) -> Result<Manifest, HostError> {
        let mut added = self.added.clone();
        if let Some((name, table)) = extra
            && let Some(entries) = section(&mut added, "extensions")
        {
            entries.insert(name.to_owned(), toml::Value::Table(table.clone()));
        }
        let declared = match &self.file {
            Some(file) => declared(file, "singletons")?,
            None => Vec::new(),
        };
        for name in self.served.keys() {
            if declared.contains(name) {
                continue;
            }
            if let Some(entries) = section(&mut added, "singletons")
                && !entries.contains_key(name)
            {
                let mut table = toml::Table::new();
                table.insert("kind".into(), PYTHON_KIND.into());
                entries.insert(name.clone(), toml::Value::Table(table));
            }
        }
        manifest(self.file.as_ref(), &added)
    }
}

/// A host: extensions and singletons of a Python program.
#[pyclass(frozen, module = "troupe._host", name = "Host")]
pub(crate) struct Host {
    state: Mutex<State>,
}

impl Host {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The running host, for pipelines.
    pub(crate) fn running(&self) -> Result<std::sync::Arc<Running>, HostError> {
        self.state().running.clone().ok_or(HostError::NotRunning)
    }

    /// Adds `table` as `[section.name]`.
    fn add(&self, section: &str, name: &str, table: toml::Table) -> Result<(), HostError> {
        let mut state = self.state();
        if state.running.is_some() {
            return Err(HostError::Started);
        }
        if state.starting {
            return Err(HostError::Starting);
        }
        let kind = SECTIONS
            .iter()
            .find(|(s, _)| *s == section)
            .map_or("entry", |(_, kind)| *kind);
        let Some(entries) = self::section(&mut state.added, section) else {
            return Err(HostError::Options(format!("{section} is not a table")));
        };
        if entries.contains_key(name) {
            return Err(HostError::Duplicate {
                kind,
                name: name.to_owned(),
            });
        }
        entries.insert(name.to_owned(), toml::Value::Table(table));
        Ok(())
    }
}

/// Table `name` of `added` (made empty if missing); `None` if it is not a table.
fn section<'a>(added: &'a mut toml::Table, name: &str) -> Option<&'a mut toml::Table> {
    added
        .entry(name)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
}

/// The manifest: the file's, with what Python added appended to its text as tables of
/// its own (so the file's errors keep their lines; a name defined twice is TOML's
/// duplicate-key error).
fn manifest(file: Option<&PathBuf>, added: &toml::Table) -> Result<Manifest, HostError> {
    let (text, named) = match file {
        Some(file) => {
            if added.is_empty() {
                return Ok(Manifest::load(file)?);
            }
            let text = std::fs::read_to_string(file)
                .map_err(|e| HostError::Options(format!("{}: {e}", file.display())))?;
            (text, file.clone())
        }
        None => {
            let cwd = std::env::current_dir()
                .map_err(|e| HostError::Options(format!("no working directory: {e}")))?;
            (String::new(), cwd.join("<troupe.Host>"))
        }
    };
    let extra = toml::to_string(added).map_err(|e| HostError::Options(e.to_string()))?;
    let text = format!("{text}\n# Added by the Python host program:\n{extra}");
    Ok(Manifest::parse(&text, named)?)
}

/// The names a manifest file declares in `section` (read as plain TOML: the file may grant
/// singletons only the program serves).
fn declared(file: &PathBuf, section: &str) -> Result<Vec<String>, HostError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| HostError::Options(format!("{}: {e}", file.display())))?;
    let document: toml::Table = toml::from_str(&text)
        .map_err(|e| HostError::Options(format!("{}: {e}", file.display())))?;
    Ok(match document.get(section) {
        Some(toml::Value::Table(entries)) => entries.keys().cloned().collect(),
        _ => Vec::new(),
    })
}

/// A Python value as TOML (dict keys must be str; `None` is left out of dicts).
fn to_toml(obj: &Bound<'_, PyAny>, at: &str) -> PyResult<toml::Value> {
    if obj.is_instance_of::<PyBool>() {
        return Ok(toml::Value::Boolean(obj.extract()?));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(toml::Value::Integer(obj.extract()?));
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(toml::Value::Float(obj.extract()?));
    }
    if obj.is_instance_of::<PyString>() {
        return Ok(toml::Value::String(obj.extract()?));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        return dict_to_toml(dict, at).map(toml::Value::Table);
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items = obj
            .try_iter()?
            .enumerate()
            .map(|(i, item)| to_toml(&item?, &format!("{at}[{i}]")))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(toml::Value::Array(items));
    }
    if let Ok(path) = obj.call_method0("__fspath__") {
        return Ok(toml::Value::String(path.extract()?));
    }
    Err(PyTypeError::new_err(format!(
        "{at}: a {} cannot go in a manifest (str, int, float, bool, list, dict or a path)",
        obj.get_type().name()?
    )))
}

/// A dict of options as a TOML table.
fn dict_to_toml(dict: &Bound<'_, PyDict>, at: &str) -> PyResult<toml::Table> {
    let mut table = toml::Table::new();
    for (key, value) in dict.iter() {
        let key: String = key
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("{at}: option names must be str")))?;
        if value.is_none() {
            continue;
        }
        let here = format!("{at}.{key}");
        table.insert(key, to_toml(&value, &here)?);
    }
    Ok(table)
}

#[pymethods]
impl Host {
    /// A host of the manifest at `manifest` (if given) and whatever is added before
    /// `start()`; `quiet` silences the venv progress lines on stderr.
    #[new]
    #[pyo3(signature = (manifest=None, quiet=false))]
    fn new(manifest: Option<PathBuf>, quiet: bool) -> Host {
        Host {
            state: Mutex::new(State {
                file: manifest,
                quiet,
                ..State::default()
            }),
        }
    }

    /// Adds `[extensions.NAME]` with `options` (the manifest's keys: `module`, `path`,
    /// `dependencies`, `restart`, `grants`, `sandbox`, ...). On a running host it starts
    /// at once (checked against the whole manifest, as at start) and this waits for its
    /// start-up hooks (Ctrl-C stops the wait; the extension is then stopped once up).
    fn add_extension(
        &self,
        py: Python<'_>,
        name: &str,
        options: &Bound<'_, PyDict>,
    ) -> PyResult<()> {
        let table = dict_to_toml(options, &format!("extensions.{name}"))?;
        let (running, config, grants) = {
            let state = self.state();
            let Some(running) = state.running.clone() else {
                drop(state);
                return Ok(self.add("extensions", name, table)?);
            };
            if let Some(file) = &state.file
                && declared(file, "extensions")?.iter().any(|n| n == name)
            {
                return Err(HostError::InFile {
                    name: name.to_owned(),
                    file: file.clone(),
                }
                .into());
            }
            let manifest = state.manifest(Some((name, &table)))?;
            let Some((config, grants)) = manifest
                .extensions_with_grants()
                .find(|(config, _)| config.name == name)
            else {
                return Err(HostError::Options(format!("extension {name:?} was not read")).into());
            };
            (running, config, grants)
        };
        let host = running.clone();
        runtime()?
            .run_to_end(
                py,
                move || async move { host.extensions.add(config, grants).await },
                |added| async move {
                    if let Ok(extension) = added {
                        running.extensions.stop(&extension).await;
                    }
                },
            )?
            .map_err(HostError::from)?;
        // Kept (merged into what is there now: other threads may have added meanwhile), so
        // later manifests see it: grants may name it, and adding it again replaces it.
        let mut state = self.state();
        if let Some(entries) = section(&mut state.added, "extensions") {
            entries.insert(name.to_owned(), toml::Value::Table(table));
        }
        Ok(())
    }

    /// Stops extension `name` gracefully (and forgets it: the name may be added again);
    /// returns whether it was running. Ctrl-C stops the wait, not the stop.
    fn stop_extension(&self, py: Python<'_>, name: String) -> PyResult<bool> {
        let running = self.running()?;
        let stopped = runtime()?.run_to_end(
            py,
            move || async move { running.extensions.stop_extension(&name).await },
            |_| async {},
        )?;
        // Its table stays in the manifest: grants naming it stay valid (calls to it fail
        // with `ActorStopped`, as for any extension that is down), and adding it again
        // replaces it.
        Ok(stopped)
    }

    /// Adds `[singletons.NAME]` of a built-in `kind` (e.g. `kv`) with `params`.
    fn add_singleton(&self, name: &str, kind: &str, params: &Bound<'_, PyDict>) -> PyResult<()> {
        let mut table = dict_to_toml(params, &format!("singletons.{name}"))?;
        table.insert("kind".into(), toml::Value::String(kind.to_owned()));
        Ok(self.add("singletons", name, table)?)
    }

    /// Adds `[pipelines.NAME]` from its description (`nodes`, `edges`, policies).
    fn add_pipeline(&self, name: &str, description: &Bound<'_, PyDict>) -> PyResult<()> {
        let table = dict_to_toml(description, &format!("pipelines.{name}"))?;
        Ok(self.add("pipelines", name, table)?)
    }

    /// Serves singleton `name` (or, with `None`, the host's own service, `troupe.host`)
    /// with a Python object: returns the queue its worker thread reads.
    #[pyo3(signature = (name=None))]
    fn serve(&self, py: Python<'_>, name: Option<String>) -> PyResult<JobQueue> {
        {
            let state = self.state();
            if state.running.is_some() {
                return Err(HostError::Started.into());
            }
            if state.starting {
                return Err(HostError::Starting.into());
            }
            let taken = match &name {
                Some(name) => state.served.contains_key(name),
                None => state.service.is_some(),
            };
            if taken {
                let what = name.as_deref().unwrap_or("the host service");
                return Err(HostError::Duplicate {
                    kind: "singleton",
                    name: what.to_owned(),
                }
                .into());
            }
        }
        let actor = name.clone().unwrap_or_else(|| "host".to_owned());
        let (caller, queue) = runtime()?.run(py, move || async move { served::serve(&actor) })?;
        let mut state = self.state();
        match name {
            Some(name) => {
                state.served.insert(name, caller);
            }
            None => state.service = Some(caller),
        }
        Ok(queue)
    }

    /// Starts the singletons, builds the extensions' venvs and starts the extensions, and
    /// waits until every one runs (raises `troupe.StartError` listing those that do not,
    /// after stopping the rest).
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let (manifest, served, service, quiet) = {
            let mut state = self.state();
            if state.running.is_some() {
                return Err(HostError::Started.into());
            }
            if state.starting {
                return Err(HostError::Starting.into());
            }
            let manifest = state.manifest(None)?;
            state.starting = true;
            (
                manifest,
                state.served.clone(),
                state.service.clone(),
                state.quiet,
            )
        };
        let started = start_from(py, manifest, served, service, quiet);
        let mut state = self.state();
        state.starting = false;
        state.running = Some(std::sync::Arc::new(started?));
        Ok(())
    }

    /// The running extension `name`.
    fn extension(&self, name: &str) -> PyResult<Target> {
        let running = self.running()?;
        if let Some(caller) = running.extensions.remote_extension(name) {
            return Ok(Target::remote(name, caller));
        }
        match running.extensions.extension(name) {
            Some(extension) => Ok(Target::extension(extension)),
            None => Err(HostError::Unknown {
                kind: "extension",
                name: name.to_owned(),
                known: running.extensions.names().join(", "),
            }
            .into()),
        }
    }

    /// The singleton `name`, to call from the host.
    fn singleton(&self, name: &str) -> PyResult<Target> {
        let running = self.running()?;
        match running.singletons.caller(name) {
            Ok(caller) => Ok(Target::singleton(name, caller)),
            Err(_) => Err(HostError::Unknown {
                kind: "singleton",
                name: name.to_owned(),
                known: running
                    .manifest
                    .singletons
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into()),
        }
    }

    /// The names of the running extensions, in the order started or added.
    fn extension_names(&self) -> PyResult<Vec<String>> {
        Ok(self.running()?.extensions.names())
    }

    /// The names of the manifest's pipelines.
    fn pipeline_names(&self) -> PyResult<Vec<String>> {
        Ok(self.running()?.manifest.pipelines.keys().cloned().collect())
    }

    /// Whether the host runs.
    #[getter]
    fn running_now(&self) -> bool {
        self.state().running.is_some()
    }

    /// Stops every extension gracefully (`prepare_shutdown`, then the stop deadline) and
    /// waits for their processes; a host not running is left as it is. Ctrl-C stops the
    /// wait, not the shutdown.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        // In a forked child this fails before anything is taken (see `Drop`).
        let runtime = runtime()?;
        let running = self.state().running.take();
        let Some(running) = running else {
            return Ok(());
        };
        runtime.run_to_end(
            py,
            move || async move { running.extensions.shutdown().await },
            |()| async {},
        )
    }
}

impl Drop for Host {
    /// In a child forked after the runtime started, what runs belongs to the parent's
    /// runtime, whose thread is not here: dropping it could wait on locks that thread held
    /// at the fork. It is left alone (the child's exit frees it).
    fn drop(&mut self) {
        if crate::runtime::forked() {
            let running = self.state().running.take();
            std::mem::forget(running);
        }
    }
}

/// Starts `manifest` (see `Host.start`); Ctrl-C stops the wait, not the start: what it
/// started is stopped gracefully when it ends.
fn start_from(
    py: Python<'_>,
    manifest: Manifest,
    served: HashMap<String, Caller>,
    service: Option<Caller>,
    quiet: bool,
) -> PyResult<Running> {
    for (name, spec) in &manifest.singletons {
        if spec.kind == PYTHON_KIND && !served.contains_key(name) {
            return Err(HostError::Unserved(name.clone()).into());
        }
    }
    Ok(runtime()?.run_to_end(
        py,
        move || start(manifest, served, service, quiet),
        |started| async move {
            if let Ok(running) = started {
                running.extensions.shutdown().await;
            }
        },
    )??)
}

/// Starts `manifest`'s singletons and extensions on the runtime.
async fn start(
    manifest: Manifest,
    served: HashMap<String, Caller>,
    service: Option<Caller>,
    quiet: bool,
) -> Result<Running, HostError> {
    let singletons = Registry::new();
    let kinds = SingletonKinds::builtin().register(PYTHON_KIND, move |spec| {
        // Checked before start: every `python` singleton has its object.
        served.get(&spec.name).cloned().ok_or_else(|| {
            troupe_host::singleton::SingletonError::UnknownKind {
                name: spec.name.clone(),
                kind: PYTHON_KIND.into(),
                known:
                    "objects given to troupe.Host(singletons=...) or host.add_singleton(name, obj)"
                        .into(),
            }
        })
    });
    kinds.start_all(manifest.singletons.values(), &singletons)?;
    let mut remote = troupe_cluster::bind(&manifest).await?;
    let mut builder = ExtensionHost::builder()
        .singletons(singletons.clone())
        .extensions(manifest.extensions_with_grants())
        .on_progress(move |extension, step| {
            if !quiet && let Some(line) = step.summary() {
                eprintln!("[{extension}] {line}");
            }
        });
    if let Some(service) = service {
        builder = builder.host(service);
    }
    for (name, caller) in std::mem::take(&mut remote.callers) {
        builder = builder.remote_extension(name, caller);
    }
    let extensions = builder.start_ready().await.map_err(HostError::NotStarted)?;
    Ok(Running {
        manifest,
        extensions,
        singletons,
        remote,
    })
}
