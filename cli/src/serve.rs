//! `troupe serve --name NAME --listen tcp/ADDR --manifest FILE`: a host that serves the
//! manifest's extensions to other hosts over Zenoh until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use troupe_cluster::{Acl, Endpoint, Limits, ListenSpec, Server, TlsFiles};
use troupe_manifest::Manifest;
use troupe_runtime::Caller;

use crate::error::CliError;

/// Arguments of `troupe serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// This host's name: clients' manifests name it in `[hosts.NAME]`.
    #[arg(long)]
    name: String,
    /// Where to listen, e.g. `tcp/0.0.0.0:7447` or `quic/0.0.0.0:7447` (with the --tls-*
    /// files); repeat for several; tls/ is refused.
    #[arg(long, required = true, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// The manifest: its extensions with no `host`, or `host = NAME`, are started and
    /// served.
    #[arg(long)]
    manifest: PathBuf,
    /// A file of `user:password` lines: only those may connect.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// For `quic/` (mutual TLS): the certificate authority clients' certificates must be
    /// signed by (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["tls_cert", "tls_key"])]
    tls_root_ca: Option<PathBuf>,
    /// For `quic/`: this host's certificate (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["tls_root_ca", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// For `quic/`: this host's private key (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["tls_root_ca", "tls_cert"])]
    tls_key: Option<PathBuf>,
    /// Calls waiting per extension; more are refused at once (busy: `MailboxFull`).
    #[arg(long, default_value_t = Limits::default().queue)]
    queue: usize,
    /// Calls running at once per extension.
    #[arg(long, default_value_t = Limits::default().in_flight)]
    in_flight: usize,
    /// The link lease announced to clients (ms): one that hears nothing from this host for
    /// that long (frozen, or cut off) sees it lost (`HostLost`).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..))]
    lease_ms: u64,
    /// Stop (the extensions, then this process) once clients came and none has been
    /// connected for this long (ms): a host started for an owner that went away.
    #[arg(long, value_name = "MS")]
    owner_grace_ms: Option<u64>,
}

/// Starts the extensions, serves them, and stops them when told to.
pub(crate) fn serve(args: &ServeArgs) -> Result<(), CliError> {
    let manifest = Manifest::load(&args.manifest)?;
    let listen = args
        .listen
        .iter()
        .map(|e| e.parse::<Endpoint>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(troupe_cluster::ClusterError::from)?;
    let mut spec = ListenSpec::new(&args.name, listen);
    spec.users.clone_from(&args.users);
    if let (Some(root_ca), Some(cert), Some(key)) =
        (&args.tls_root_ca, &args.tls_cert, &args.tls_key)
    {
        spec.tls = Some(TlsFiles {
            root_ca: root_ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    spec.lease = Duration::from_millis(args.lease_ms);
    spec.acl = manifest
        .extensions
        .values()
        .filter(|extension| extension.served_by(Some(&args.name)))
        .filter_map(|extension| {
            Some(Acl {
                extension: extension.name.clone(),
                users: extension.users.clone()?,
            })
        })
        .collect();
    spec.check()?;
    let limits = Limits {
        queue: args.queue,
        in_flight: args.in_flight,
    };
    actix::System::new().block_on(async {
        let host = crate::run::start_host(
            manifest.extensions_served_by(Some(&args.name)),
            &manifest,
            &IndexMap::new(),
        )
        .await?;
        let extensions: IndexMap<String, Caller> = host
            .iter()
            .flat_map(|host| host.extensions())
            .map(|extension| (extension.name().to_owned(), extension.caller()))
            .collect();
        let served = Server::start(spec, extensions, limits).await;
        let server = match served {
            Ok(server) => server,
            Err(error) => {
                if let Some(host) = &host {
                    host.shutdown().await;
                }
                return Err(error.into());
            }
        };
        println!(
            "troupe serve: {} ready on {} serving [{}]",
            server.name(),
            args.listen.join(", "),
            server.hello().extensions.join(", ")
        );
        let owner_gone = async {
            match args.owner_grace_ms {
                Some(ms) => server.owner_gone(Duration::from_millis(ms)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wait_for_stop() => eprintln!("troupe serve: stopping"),
            () = owner_gone => eprintln!(
                "troupe serve: no client for {} ms: stopping",
                args.owner_grace_ms.unwrap_or_default()
            ),
        }
        drop(server);
        if let Some(host) = &host {
            host.shutdown().await;
        }
        Ok(())
    })
}

/// Until Ctrl-C or SIGTERM.
async fn wait_for_stop() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
