//! `troupe run MANIFEST [--pipeline NAME]`: run a manifest's pipeline to the end.

use std::path::PathBuf;

use troupe_host::extension_host::ExtensionHost;
use troupe_host::singleton::SingletonKinds;
use troupe_manifest::Manifest;
use troupe_pipeline::RunSummary;
use troupe_runtime::Registry;

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
}

/// Runs the pipeline, showing progress on a terminal, and prints the summary.
pub(crate) fn run(args: &RunArgs) -> Result<(), CliError> {
    let manifest = Manifest::load(&args.manifest)?;
    let name = manifest.pipeline(args.pipeline.as_deref())?.name.clone();
    let summary = actix::System::new().block_on(run_pipeline(&manifest, &name))?;
    print_to_stdout(&summary.to_string());
    Ok(())
}

/// Writes `text` and a newline to stdout. A reader that went away (`troupe run ... | head`)
/// is not an error: what it did not read is dropped, never a panic.
fn print_to_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

async fn run_pipeline(manifest: &Manifest, name: &str) -> Result<RunSummary, CliError> {
    let host = start_extensions(manifest).await?;
    let mut loader = manifest.loader();
    if let Some(host) = &host {
        loader = loader.python_nodes(host.python_nodes());
    }
    let result = async {
        let running = loader.build(name)?.start();
        let display = ProgressDisplay::start(running.progress());
        let result = running.finish().await;
        display.finish();
        Ok(result?)
    }
    .await;
    if let Some(host) = host {
        host.shutdown().await;
    }
    result
}

/// Starts the manifest's singletons and extensions, if it has extensions, and waits for
/// their start-up hooks. An extension that cannot start is reported; python nodes that use
/// it fail to build.
async fn start_extensions(manifest: &Manifest) -> Result<Option<ExtensionHost>, CliError> {
    if manifest.extensions.is_empty() {
        return Ok(None);
    }
    let singletons = Registry::new();
    SingletonKinds::builtin().start_all(manifest.singletons.values(), &singletons)?;
    let host = ExtensionHost::builder()
        .singletons(singletons)
        .extensions(manifest.extensions_with_grants())
        .on_progress(|extension, step| {
            if let Some(line) = step.summary() {
                eprintln!("[{extension}] {line}");
            }
        })
        .start()
        .await;
    for (extension, error) in host.failed() {
        eprintln!("[{extension}] not started: {error}");
    }
    for (extension, status) in host.ready().await {
        if !status.is_running() {
            eprintln!("[{extension}] not running: {status:?}");
        }
    }
    Ok(Some(host))
}
