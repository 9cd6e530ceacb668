//! zenoh sessions as troupe opens them: explicit endpoints only (no multicast or gossip
//! scouting, which break in containers and relay nothing since zenoh 1.9), and only settings
//! this build compiles in.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use zenoh::{Config, Session};

use crate::endpoint::Endpoint;
use crate::error::ClusterError;
use crate::runtime::OnCluster;

/// A user name and password for zenoh's user/password authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// A remote host as a client reaches it (a manifest's `[hosts.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// Its name (`troupe serve --name`).
    pub name: String,
    /// Where it listens; the first that answers is used.
    pub connect: Vec<Endpoint>,
    /// How long a call waits when its caller set no deadline.
    pub call_timeout: Duration,
    /// How long the start-up probe (session and hello) may take.
    pub probe_timeout: Duration,
    /// Its user/password, if it asks for them.
    pub credentials: Option<Credentials>,
    /// The link lease this client announces: how long the host waits, hearing nothing from
    /// it, before it drops the link (a reconnect after a cut is taken once it has).
    pub lease: Duration,
    /// Mutual TLS, for `quic/` endpoints.
    pub tls: Option<TlsFiles>,
}

/// How long a call waits when neither its caller nor the manifest says.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the start-up probe of a host may take by default.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

impl HostSpec {
    /// Host `name` at `connect`, with the default timeouts and no credentials.
    pub fn new(name: impl Into<String>, connect: Vec<Endpoint>) -> HostSpec {
        HostSpec {
            name: name.into(),
            connect,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            credentials: None,
            lease: DEFAULT_LEASE,
            tls: None,
        }
    }

    /// Checks what [`RemoteHost::connect`](crate::RemoteHost::connect) would refuse before
    /// it connects (no endpoint, `quic/` without TLS files, a TLS file that is not there).
    pub fn check(&self) -> Result<(), ClusterError> {
        client_config(self).map(drop)
    }
}

/// The files of mutual TLS (what a `quic/` link needs, on both sides): the certificate
/// authority both sides' certificates are checked against, and this side's certificate and
/// private key (PEM). The manifest's `[hosts.NAME] tls` table is one.
pub use troupe_manifest::HostTls as TlsFiles;

/// How a serving host listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// Its name.
    pub name: String,
    /// Where it listens.
    pub listen: Vec<Endpoint>,
    /// A file of `user:password` lines: when given, only those may connect.
    pub users: Option<PathBuf>,
    /// The link lease it announces: a client that hears nothing from it for this long (it
    /// froze, or the network split) drops the link and sees the host lost.
    pub lease: Duration,
    /// Extensions only some users (of `users`) may call; the others may be called by all.
    pub acl: Vec<Acl>,
    /// The users (of `users`) who may stop and start its extensions (its lifecycle
    /// service). With a users file, nobody else may; without one, anyone who reaches it.
    pub operators: Vec<String>,
    /// Mutual TLS, for `quic/` endpoints: only clients with a certificate signed by its
    /// authority connect.
    pub tls: Option<TlsFiles>,
}

/// Who may call one served extension: only `users` (names of the users file). The others
/// never see it: their calls fail as calls to an extension the host does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// The extension.
    pub extension: String,
    /// The users who may call it.
    pub users: Vec<String>,
}

/// Zenoh's default link lease.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

impl ListenSpec {
    /// Host `name` listening at `listen`, open to anyone who reaches it, with the default
    /// lease.
    pub fn new(name: impl Into<String>, listen: Vec<Endpoint>) -> ListenSpec {
        ListenSpec {
            name: name.into(),
            listen,
            users: None,
            lease: DEFAULT_LEASE,
            acl: Vec::new(),
            operators: Vec::new(),
            tls: None,
        }
    }

    /// Checks what [`Server::start`](crate::Server::start) would refuse before it listens
    /// (no endpoint, an access list or operators without a users file or naming a user not
    /// in it), so
    /// a host can refuse before it starts its extensions.
    pub fn check(&self) -> Result<(), ClusterError> {
        server_config(self).map(drop)
    }
}

/// A session that is closed on the cluster runtime when the last handle drops.
pub(crate) type SharedSession = std::sync::Arc<OnCluster<Session>>;

fn insert(config: &mut Config, key: &str, value: &serde_json::Value) -> Result<(), ClusterError> {
    config
        .insert_json5(key, &value.to_string())
        .map_err(|e| ClusterError::Config {
            key: key.to_owned(),
            reason: e.to_string(),
        })
}

/// Which side of a link a session is.
#[derive(Clone, Copy)]
enum Side {
    /// A client: connects to its host, listens nowhere.
    Connect,
    /// A serving host: listens, connects to nobody.
    Listen,
}

impl Side {
    /// The name zenoh's configuration keys use for it (`connect/...`, `listen/...`).
    fn key(self) -> &'static str {
        match self {
            Side::Connect => "connect",
            Side::Listen => "listen",
        }
    }
}

/// What every troupe session has: explicit endpoints on `side` only (no multicast or gossip
/// scouting, nothing on the other side), zenoh's admin space off, the link lease announced,
/// and mutual TLS when an endpoint is `quic/`.
fn session_config(
    side: Side,
    name: &str,
    endpoints: &[Endpoint],
    lease: Duration,
    tls_files: Option<&TlsFiles>,
) -> Result<Config, ClusterError> {
    use serde_json::json;
    if endpoints.is_empty() {
        return Err(ClusterError::NoEndpoint {
            host: name.to_owned(),
        });
    }
    let (mode, other) = match side {
        Side::Connect => ("client", Side::Listen),
        Side::Listen => ("peer", Side::Connect),
    };
    let mut config = Config::default();
    insert(&mut config, "mode", &json!(mode))?;
    insert(&mut config, "scouting/multicast/enabled", &json!(false))?;
    insert(&mut config, "scouting/gossip/enabled", &json!(false))?;
    // Nothing of troupe's own goes through zenoh's admin space.
    insert(&mut config, "adminspace/enabled", &json!(false))?;
    let endpoints_json: serde_json::Value =
        endpoints.iter().map(|e| e.as_str().to_owned()).collect();
    insert(
        &mut config,
        &format!("{}/endpoints", side.key()),
        &endpoints_json,
    )?;
    insert(
        &mut config,
        &format!("{}/exit_on_failure", side.key()),
        &json!(true),
    )?;
    insert(
        &mut config,
        &format!("{}/endpoints", other.key()),
        &json!([]),
    )?;
    insert(
        &mut config,
        "transport/link/tx/lease",
        &json!(millis(lease).max(100)),
    )?;
    tls(&mut config, name, endpoints, tls_files, side)?;
    Ok(config)
}

/// The configuration of a client session to `host`: client mode, its endpoints only, one
/// connect attempt that fails `open` (never a retry loop) when nothing answers.
pub(crate) fn client_config(host: &HostSpec) -> Result<Config, ClusterError> {
    use serde_json::json;
    let mut config = session_config(
        Side::Connect,
        &host.name,
        &host.connect,
        host.lease,
        host.tls.as_ref(),
    )?;
    insert(
        &mut config,
        "connect/timeout_ms",
        &json!(millis(host.probe_timeout)),
    )?;
    if let Some(credentials) = &host.credentials {
        insert(
            &mut config,
            "transport/auth/usrpwd/user",
            &json!(credentials.user),
        )?;
        insert(
            &mut config,
            "transport/auth/usrpwd/password",
            &json!(credentials.password),
        )?;
    }
    Ok(config)
}

/// The configuration of a serving host: peer mode, listening on its endpoints, connecting to
/// nobody.
pub(crate) fn server_config(spec: &ListenSpec) -> Result<Config, ClusterError> {
    use serde_json::json;
    let mut config = session_config(
        Side::Listen,
        &spec.name,
        &spec.listen,
        spec.lease,
        spec.tls.as_ref(),
    )?;
    if let Some(users) = &spec.users {
        insert(
            &mut config,
            "transport/auth/usrpwd/dictionary_file",
            &json!(users.display().to_string()),
        )?;
    }
    let restricted = spec.users.is_some() || !spec.acl.is_empty() || !spec.operators.is_empty();
    if restricted {
        insert(&mut config, "access_control", &access_control(spec)?)?;
    }
    Ok(config)
}

/// zenoh's access control for `spec`: everything allowed, except each restricted key (a
/// restricted extension's call queryable, and the lifecycle queryable) to every user of the
/// users file not allowed it (neither declared to them nor answering their queries).
fn access_control(spec: &ListenSpec) -> Result<serde_json::Value, ClusterError> {
    use serde_json::json;
    let refuse = |reason: String| ClusterError::Config {
        key: "acl".to_owned(),
        reason,
    };
    let Some(file) = &spec.users else {
        return Err(refuse(
            "restricting extensions or their lifecycle to some users needs a users file \
             (--users)"
                .to_owned(),
        ));
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| refuse(format!("cannot read {}: {e}", file.display())))?;
    let everyone: Vec<&str> = text
        .lines()
        .filter_map(|line| line.split_once(':').map(|(user, _)| user.trim()))
        .filter(|user| !user.is_empty())
        .collect();
    let restricted = spec
        .acl
        .iter()
        .map(|acl| {
            (
                format!("extension `{}`", acl.extension),
                crate::keys::extension_call(&spec.name, &acl.extension),
                &acl.users,
            )
        })
        .chain(std::iter::once((
            "operators".to_owned(),
            crate::keys::lifecycle(&spec.name),
            &spec.operators,
        )));
    let (mut rules, mut subjects, mut policies) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (what, key, allowed)) in restricted.enumerate() {
        if let Some(unknown) = allowed.iter().find(|u| !everyone.contains(&u.as_str())) {
            return Err(refuse(format!(
                "{what}: user `{unknown}` is not in {}",
                file.display()
            )));
        }
        let denied: Vec<&str> = everyone
            .iter()
            .copied()
            .filter(|user| !allowed.iter().any(|u| u == user))
            .collect();
        if denied.is_empty() {
            continue;
        }
        rules.push(json!({
            "id": format!("deny{i}"),
            "messages": ["query", "declare_queryable"],
            "flows": ["ingress", "egress"],
            "permission": "deny",
            "key_exprs": [key],
        }));
        subjects.push(json!({ "id": format!("denied{i}"), "usernames": denied }));
        policies.push(json!({
            "id": format!("policy{i}"),
            "rules": [format!("deny{i}")],
            "subjects": [format!("denied{i}")],
        }));
    }
    Ok(json!({
        "enabled": true,
        "default_permission": "allow",
        "rules": rules,
        "subjects": subjects,
        "policies": policies,
    }))
}

/// Mutual TLS for `side` (`connect` or `listen`): required with a `quic/` endpoint, each
/// file checked to be there (zenoh would otherwise say little).
fn tls(
    config: &mut Config,
    host: &str,
    endpoints: &[Endpoint],
    files: Option<&TlsFiles>,
    side: Side,
) -> Result<(), ClusterError> {
    use serde_json::json;
    let Some(files) = files else {
        return match endpoints.iter().find(|e| e.is_quic()) {
            Some(endpoint) => Err(ClusterError::Config {
                key: "tls".to_owned(),
                reason: format!(
                    "host {host}: `{endpoint}` needs mutual TLS: a certificate authority, a certificate and its key"
                ),
            }),
            None => Ok(()),
        };
    };
    for (what, path) in [
        ("root_ca", &files.root_ca),
        ("cert", &files.cert),
        ("key", &files.key),
    ] {
        if !path.is_file() {
            return Err(ClusterError::Config {
                key: format!("tls.{what}"),
                reason: format!("host {host}: {} is not a file", path.display()),
            });
        }
    }
    let path = |p: &PathBuf| json!(p.display().to_string());
    let side = side.key();
    insert(
        config,
        "transport/link/tls/root_ca_certificate",
        &path(&files.root_ca),
    )?;
    insert(
        config,
        &format!("transport/link/tls/{side}_certificate"),
        &path(&files.cert),
    )?;
    insert(
        config,
        &format!("transport/link/tls/{side}_private_key"),
        &path(&files.key),
    )?;
    insert(config, "transport/link/tls/enable_mtls", &json!(true))?;
    Ok(())
}

/// `duration` in whole milliseconds, as zenoh and troupe's frames take it (saturating).
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Opens a session with `config` (on the cluster runtime), as host `host` at `endpoints`.
pub(crate) async fn open(
    config: Config,
    host: &str,
    endpoints: &[Endpoint],
    timeout: Duration,
) -> Result<SharedSession, ClusterError> {
    let failed = |reason: String| ClusterError::Open {
        host: host.to_owned(),
        endpoints: endpoints
            .iter()
            .map(Endpoint::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        reason,
    };
    let opened = crate::runtime::spawn(async move {
        match tokio::time::timeout(timeout, zenoh::open(config)).await {
            Ok(Ok(session)) => Ok(std::sync::Arc::new(OnCluster::new(session))),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no session within {} ms", timeout.as_millis())),
        }
    })?;
    opened.await?.map_err(failed)
}
