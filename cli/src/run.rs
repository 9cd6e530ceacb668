//! `troupe run MANIFEST [--pipeline NAME]`: run a manifest's pipeline to the end.

use std::net::SocketAddr;
use std::path::PathBuf;

use indexmap::IndexMap;
use troupe_bridge_python::extension::ExtensionConfig;
use troupe_host::extension_host::{ExtensionHost, Grants, NotStarted};
use troupe_host::singleton::SingletonKinds;
use troupe_manifest::Manifest;
use troupe_pipeline::RunReport;
use troupe_runtime::supervision::SupervisorStatus;
use troupe_runtime::{Caller, Registry, metrics};

use crate::error::CliError;
use crate::progress::ProgressDisplay;

/// Arguments of `troupe run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The manifest (TOML).
    manifest: PathBuf,
    /// The pipeline to run; needed when the manifest has several.
    #[arg(long, short, value_name = "NAME")]
    pipeline: Option<String>,
    /// Serve Prometheus metrics (per node and extension) at `http://ADDR/metrics` while
    /// the run lasts, e.g. `127.0.0.1:9464` (port 0: any free port, printed at start).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
}

/// Runs the pipeline, showing progress on a terminal, and prints the summary: also when
/// the run fails or is stopped with Ctrl-C (then of what was done).
pub(crate) fn run(args: &RunArgs) -> Result<(), CliError> {
    let manifest = Manifest::load(&args.manifest)?;
    let name = manifest.pipeline(args.pipeline.as_deref())?.name.clone();
    let _metrics = serve_metrics(args.metrics)?;
    let (report, extensions) = actix::System::new().block_on(run_pipeline(&manifest, &name))?;
    let mut text = report.summary.to_string();
    if !extensions.is_empty() {
        text.push_str(&extension_table(&extensions));
    }
    print_to_stdout(&text);
    match report.error {
        Some(error) => Err(CliError::Run(error)),
        None => Ok(()),
    }
}

/// Serves the process's metrics at `address`, if given, saying where (the server stops when
/// dropped).
pub(crate) fn serve_metrics(
    address: Option<SocketAddr>,
) -> Result<Option<metrics::MetricsServer>, CliError> {
    let Some(address) = address else {
        return Ok(None);
    };
    let server = metrics::serve(address).map_err(|source| CliError::Metrics { address, source })?;
    eprintln!("metrics at http://{}/metrics", server.address());
    Ok(Some(server))
}

/// How each extension fared, as lines under the run summary: its restarts (a python node's
/// own count is of the node, not of the process behind it) and where it ended.
fn extension_table(extensions: &[(String, SupervisorStatus)]) -> String {
    let mut text = format!("\n\n{:<24} {:>8}  status", "extension", "restarts");
    for (name, status) in extensions {
        let (restarts, state) = match status {
            SupervisorStatus::Starting { instance } => (instance - 1, "starting".to_owned()),
            SupervisorStatus::Running { instance } => (instance - 1, "running".to_owned()),
            SupervisorStatus::Restarting { attempt, last } => {
                (u64::from(*attempt), format!("restarting after {last}"))
            }
            SupervisorStatus::Stopped(last) => (0, format!("stopped: {last}")),
            SupervisorStatus::GaveUp(give_up) => (
                u64::from(give_up.restarts),
                format!("gave up: {}", give_up.last_exit),
            ),
        };
        text.push_str(&format!("\n{name:<24} {restarts:>8}  {state}"));
    }
    text
}

/// Writes `text` and a newline to stdout. A reader that went away (`troupe run ... | head`)
/// is not an error: what it did not read is dropped, never a panic.
fn print_to_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// Runs pipeline `name` until it ends, fails or Ctrl-C cancels it; returns how it ended and
/// how each extension stands at its end.
async fn run_pipeline(
    manifest: &Manifest,
    name: &str,
) -> Result<(RunReport, Vec<(String, SupervisorStatus)>), CliError> {
    let remote = crate::remote::bind(manifest).await?;
    let host = start_extensions(manifest, &remote).await?;
    let mut loader = manifest.loader();
    if let Some(host) = &host {
        loader = loader.python_nodes(host.python_nodes());
    }
    loader = loader.remote_nodes(remote.node_maker());
    let result = async {
        let running = loader.build(name)?.start();
        let canceller = running.canceller();
        // Lives until the System ends: a Ctrl-C during the extensions' shutdown exits too.
        actix::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: stopping the run (Ctrl-C again to exit at once)");
                canceller.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    // Extensions' processes die with this one (PR_SET_PDEATHSIG).
                    std::process::exit(130);
                }
            }
        });
        let display = ProgressDisplay::start(running.progress());
        let report = running.finish_report().await;
        display.finish();
        Ok::<_, CliError>(report)
    }
    .await;
    let mut extensions = Vec::new();
    if let Some(host) = host {
        for name in manifest.extensions.keys() {
            if let Some(extension) = host.extension(name) {
                extensions.push((name.clone(), extension.status()));
            }
        }
        host.shutdown().await;
    }
    drop(remote);
    result.map(|summary| (summary, extensions))
}

/// Starts the manifest's singletons and the extensions this host runs (those with no
/// `host`), if it has any, and waits for their start-up hooks; they reach the `remote`
/// extensions as they are granted. An extension that cannot start is reported; python
/// nodes that use it fail to build.
pub(crate) async fn start_extensions(
    manifest: &Manifest,
    remote: &troupe_cluster::Bound,
) -> Result<Option<ExtensionHost>, CliError> {
    start_host(manifest.extensions_with_grants(), manifest, &remote.callers).await
}

/// Starts `extensions` (of `manifest`) with the manifest's singletons, if there are any
/// extensions, and waits for their start-up hooks; `remote` extensions are reached by
/// name as granted, and by python nodes. With remote extensions only, the host holds just
/// those (no singletons: nothing here would call them).
pub(crate) async fn start_host(
    extensions: impl Iterator<Item = (ExtensionConfig, Grants)>,
    manifest: &Manifest,
    remote: &IndexMap<String, Caller>,
) -> Result<Option<ExtensionHost>, CliError> {
    let extensions: Vec<_> = extensions.collect();
    if extensions.is_empty() && remote.is_empty() {
        return Ok(None);
    }
    let singletons = Registry::new();
    if !extensions.is_empty() {
        SingletonKinds::builtin().start_all(manifest.singletons.values(), &singletons)?;
    }
    let mut builder = ExtensionHost::builder()
        .singletons(singletons)
        .extensions(extensions);
    for (name, caller) in remote {
        builder = builder.remote_extension(name, caller.clone());
    }
    let started = builder
        .on_progress(|extension, step| {
            if let Some(line) = step.summary() {
                eprintln!("[{extension}] {line}");
            }
        })
        .start_ready()
        .await;
    match started {
        Ok(host) => Ok(Some(host)),
        Err(not_started) => {
            for failure in &not_started {
                report_not_started(failure);
            }
            Err(CliError::NotStarted {
                extensions: not_started.into_iter().map(|f| f.extension).collect(),
            })
        }
    }
}

/// Says once why an extension does not run: its last exit, and the Python traceback of a
/// start-up exception.
fn report_not_started(failure: &NotStarted) {
    let extension = &failure.extension;
    eprintln!("[{extension}] could not start: {}", failure.reason);
    for line in failure.traceback.lines() {
        eprintln!("[{extension}]   {line}");
    }
}
