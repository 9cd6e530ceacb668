//! `troupe host --manifest FILE NAME health|stop EXT|start EXT`: asks a serving host (reached
//! as the manifest's `[hosts.NAME]` says) how its extensions are, or to stop or start one of
//! them again.

use std::path::PathBuf;
use std::time::Duration;

use troupe_cluster::RemoteHost;
use troupe_cluster::admin::LifecycleRequest;
use troupe_manifest::Manifest;

use crate::error::CliError;

/// Arguments of `troupe host`.
#[derive(Debug, clap::Args)]
pub(crate) struct HostArgs {
    /// The manifest whose `[hosts.NAME]` says how to reach the host (endpoints, credentials,
    /// TLS files).
    #[arg(long)]
    manifest: PathBuf,
    /// The host, as the manifest names it.
    host: String,
    /// What to ask.
    #[command(subcommand)]
    action: HostAction,
    /// How long to wait for the answer (ms); a start waits until the extension is ready.
    #[arg(long, default_value_t = 120_000)]
    timeout_ms: u64,
}

/// What `troupe host` asks.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum HostAction {
    /// Print each served extension and whether it runs.
    Health,
    /// Stop one served extension (its shutdown hooks run); calls to it fail with
    /// `ActorStopped` until it is started again.
    Stop {
        /// The extension.
        extension: String,
    },
    /// Start one served extension again, as the host's own manifest describes it.
    Start {
        /// The extension.
        extension: String,
    },
}

/// Connects, asks, prints the answer.
pub(crate) fn host(args: &HostArgs) -> Result<(), CliError> {
    let manifest = Manifest::load(&args.manifest)?;
    let Some(declared) = manifest.hosts.get(&args.host) else {
        return Err(CliError::UnknownHost {
            host: args.host.clone(),
            known: manifest.hosts.keys().cloned().collect(),
        });
    };
    let spec = troupe_cluster::host_spec(declared)?;
    let timeout = Duration::from_millis(args.timeout_ms);
    actix::System::new().block_on(async {
        let remote = RemoteHost::connect(spec).await?;
        match &args.action {
            HostAction::Health => {
                for extension in remote.health(timeout).await? {
                    let state = if extension.up { "up" } else { "stopped" };
                    println!("{} {state}", extension.name);
                }
            }
            HostAction::Stop { extension } => {
                remote
                    .lifecycle(LifecycleRequest::Stop(extension.clone()), timeout)
                    .await?;
                println!("{extension} stopped on {}", remote.name());
            }
            HostAction::Start { extension } => {
                remote
                    .lifecycle(LifecycleRequest::Start(extension.clone()), timeout)
                    .await?;
                println!("{extension} started on {}", remote.name());
            }
        }
        Ok(())
    })
}
