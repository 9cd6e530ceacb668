//! `troupe run MANIFEST [--pipeline NAME]`: run a manifest's pipeline to the end.

use std::path::PathBuf;

use troupe_actors::manifest::Manifest;
use troupe_actors::pipeline::RunSummary;

use super::CliError;
use super::progress::ProgressDisplay;

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
    println!("{summary}");
    Ok(())
}

async fn run_pipeline(manifest: &Manifest, name: &str) -> Result<RunSummary, CliError> {
    let running = manifest.loader().build(name)?.start();
    let display = ProgressDisplay::start(running.progress());
    let result = running.finish().await;
    display.finish();
    Ok(result?)
}
