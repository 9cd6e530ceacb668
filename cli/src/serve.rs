//! `troupe serve --name NAME --listen tcp/ADDR --manifest FILE`: a host that serves the
//! manifest's extensions to other hosts over Zenoh until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::{mpsc, oneshot};
use troupe_bridge_python::extension::ExtensionConfig;
use troupe_cluster::admin::{Lifecycle, LifecycleError, LifecycleFuture};
use troupe_cluster::{Acl, Endpoint, Limits, ListenSpec, Server, TlsFiles};
use troupe_host::extension_host::{AddError, ExtensionHost, Grants};
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
    /// Users (of --users) who may stop and start the served extensions (`troupe host ...
    /// stop|start`), comma-separated. With --users nobody else may; without it, anyone who
    /// reaches this host.
    #[arg(
        long,
        value_name = "USER,...",
        value_delimiter = ',',
        requires = "users"
    )]
    operators: Vec<String>,
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
    /// Calls waiting per extension and calling peer; more from that peer are refused at
    /// once (busy: `MailboxFull`).
    #[arg(long, default_value_t = Limits::default().queue)]
    queue: usize,
    /// Calling peers with calls waiting per extension at once; a call from one more is
    /// refused at once (busy: `MailboxFull`). The peers waiting take turns.
    #[arg(long, default_value_t = Limits::default().peers)]
    peers: usize,
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
    spec.operators.clone_from(&args.operators);
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
        peers: args.peers,
        in_flight: args.in_flight,
    };
    actix::System::new().block_on(async {
        let served: Vec<(ExtensionConfig, Grants)> =
            manifest.extensions_served_by(Some(&args.name)).collect();
        let host = crate::run::start_host(served.iter().cloned(), &manifest, &IndexMap::new())
            .await?
            .map(Rc::new);
        let extensions: IndexMap<String, Caller> = host
            .iter()
            .flat_map(|host| host.extensions())
            .map(|extension| (extension.name().to_owned(), extension.caller()))
            .collect();
        let lifecycle = host.clone().map(|host| {
            let (requests, intake) = mpsc::channel(16);
            actix::spawn(run_lifecycle(host, served, intake));
            Arc::new(HostLifecycle { requests }) as Arc<dyn Lifecycle>
        });
        let nodes = manifest.nodes_served_by(&args.name).collect();
        let served = Server::start(spec, extensions, nodes, limits, lifecycle).await;
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
            "troupe serve: {} ready on {} serving [{}], nodes [{}]",
            server.name(),
            args.listen.join(", "),
            server.hello().extensions.join(", "),
            server.hello().nodes.join(", ")
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

/// A lifecycle request, carried to the actix system the extension host runs on.
enum Request {
    Stop(String, oneshot::Sender<Result<(), LifecycleError>>),
    Start(String, oneshot::Sender<Result<Caller, LifecycleError>>),
}

/// The lifecycle service's handler: hands each request to [`run_lifecycle`].
struct HostLifecycle {
    requests: mpsc::Sender<Request>,
}

impl HostLifecycle {
    fn ask<T: Send + 'static>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, LifecycleError>>) -> Request,
    ) -> LifecycleFuture<T> {
        let (done, answer) = oneshot::channel();
        let requests = self.requests.clone();
        let request = request(done);
        Box::pin(async move {
            requests
                .send(request)
                .await
                .map_err(|_| LifecycleError::Unavailable)?;
            answer.await.map_err(|_| LifecycleError::Unavailable)?
        })
    }
}

impl Lifecycle for HostLifecycle {
    fn stop(&self, extension: &str) -> LifecycleFuture<()> {
        let extension = extension.to_owned();
        self.ask(|done| Request::Stop(extension, done))
    }

    fn start(&self, extension: &str) -> LifecycleFuture<Caller> {
        let extension = extension.to_owned();
        self.ask(|done| Request::Start(extension, done))
    }
}

/// Stops and starts (again, from the manifest's `served` configurations) extensions on
/// `host`, one request at a time, until the handler is dropped.
async fn run_lifecycle(
    host: Rc<ExtensionHost>,
    served: Vec<(ExtensionConfig, Grants)>,
    mut requests: mpsc::Receiver<Request>,
) {
    while let Some(request) = requests.recv().await {
        match request {
            Request::Stop(name, done) => {
                let stopped = host.stop_extension(&name).await;
                eprintln!("[{name}] stopped (lifecycle request)");
                let _ = done.send(if stopped {
                    Ok(())
                } else {
                    Err(LifecycleError::NotRunning)
                });
            }
            Request::Start(name, done) => {
                let Some((config, grants)) = served.iter().find(|(c, _)| c.name == name) else {
                    let _ = done.send(Err(LifecycleError::NotServed));
                    continue;
                };
                let started = match host.add(config.clone(), grants.clone()).await {
                    Ok(extension) => {
                        eprintln!("[{name}] started (lifecycle request)");
                        Ok(extension.caller())
                    }
                    Err(AddError::Duplicate(_)) => Err(LifecycleError::Running),
                    Err(AddError::ShutDown) => Err(LifecycleError::Unavailable),
                    Err(error) => Err(LifecycleError::NotStarted(error.to_string())),
                };
                let _ = done.send(started);
            }
        }
    }
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
