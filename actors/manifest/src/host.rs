//! `[hosts.NAME]`: a remote host that serves extensions (`troupe serve`), and how to reach it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::document::{Document, KeyPath};
use crate::error::{ManifestError, ManifestErrorKind};
use crate::raw::RawHost;

/// A remote host as the manifest declares it. Extensions with `host = "NAME"` are called
/// there instead of being started here.
#[derive(Clone, PartialEq, Eq)]
pub struct HostManifest {
    /// Its name (the table's key), the `--name` it is served under.
    pub name: String,
    /// Endpoints to reach it, e.g. `tcp/10.0.0.2:7447`; never `tls/` (refused).
    pub connect: Vec<String>,
    /// How long a call to it waits when its caller set no deadline.
    pub call_timeout: Option<Duration>,
    /// The link lease this side announces (`lease_ms`): how long the host waits, hearing
    /// nothing, before it drops this client's link (and a reconnect after a cut is taken).
    pub lease: Option<Duration>,
    /// User and password for its user/password authentication (from `${ENV}`, say).
    pub credentials: Option<(String, String)>,
    /// Mutual TLS for its `quic/` endpoints (`tls = { root_ca, cert, key }`, PEM files
    /// relative to the manifest): the authority its certificate must be signed by, and this
    /// side's certificate and key.
    pub tls: Option<HostTls>,
}

/// The files of mutual TLS, as `[hosts.NAME] tls` names them (and as `troupe serve
/// --tls-*` gives them: `troupe_cluster::TlsFiles` is this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTls {
    /// The certificate authority (PEM).
    pub root_ca: PathBuf,
    /// This side's certificate (PEM).
    pub cert: PathBuf,
    /// This side's private key (PEM).
    pub key: PathBuf,
}

impl fmt::Debug for HostManifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostManifest")
            .field("name", &self.name)
            .field("connect", &self.connect)
            .field("call_timeout", &self.call_timeout)
            .field("lease", &self.lease)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish()
    }
}

impl HostManifest {
    /// Checks `raw` (found at `path`).
    pub(crate) fn from_raw(
        name: &str,
        raw: RawHost,
        path: &KeyPath,
        base: &Path,
        document: &Document,
    ) -> Result<HostManifest, ManifestError> {
        let invalid = |key: KeyPath, reason: String| {
            document.error(&key, ManifestErrorKind::Invalid { reason })
        };
        if raw.connect.is_empty() {
            return Err(invalid(
                path.key("connect"),
                "needs at least one endpoint, e.g. `tcp/10.0.0.2:7447`".to_owned(),
            ));
        }
        for (i, endpoint) in raw.connect.iter().enumerate() {
            if let Some(reason) = endpoint_problem(endpoint) {
                return Err(invalid(path.key("connect").index(i), reason));
            }
        }
        if raw.call_timeout_ms == Some(0) {
            return Err(invalid(
                path.key("call_timeout_ms"),
                "must be positive".to_owned(),
            ));
        }
        if raw.lease_ms.is_some_and(|ms| ms < 100) {
            return Err(invalid(
                path.key("lease_ms"),
                "must be at least 100".to_owned(),
            ));
        }
        let quic = raw.connect.iter().any(|e| e.starts_with("quic/"));
        if quic && raw.tls.is_none() {
            return Err(invalid(
                path.key("connect"),
                "a quic/ endpoint needs `tls = { root_ca, cert, key }` (mutual TLS)".to_owned(),
            ));
        }
        let tls = raw.tls.map(|tls| HostTls {
            root_ca: base.join(tls.root_ca),
            cert: base.join(tls.cert),
            key: base.join(tls.key),
        });
        let credentials = match (raw.user, raw.password) {
            (Some(user), Some(password)) => Some((user, password)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(path.key("user"), "needs a `password`".to_owned()));
            }
            (None, Some(_)) => {
                return Err(invalid(path.key("password"), "needs a `user`".to_owned()));
            }
        };
        Ok(HostManifest {
            name: name.to_owned(),
            connect: raw.connect,
            call_timeout: raw.call_timeout_ms.map(Duration::from_millis),
            lease: raw.lease_ms.map(Duration::from_millis),
            credentials,
            tls,
        })
    }
}

/// What is wrong with `endpoint`, if anything: `tls/` is refused (zenoh's tls link loses
/// calls under load); anything else must read `LINK/HOST:PORT` (which links a build has is
/// checked where the cluster runs).
fn endpoint_problem(endpoint: &str) -> Option<String> {
    let Some((link, address)) = endpoint.split_once('/') else {
        return Some(format!(
            "`{endpoint}` is not an endpoint; write tcp/HOST:PORT"
        ));
    };
    if link == "tls" {
        return Some(format!(
            "`{endpoint}`: tls/ endpoints are refused (zenoh's tls link loses calls under load); use quic/ with mutual TLS, or tcp/ inside a private network with user and password"
        ));
    }
    let port_ok = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if link.is_empty() || !port_ok {
        return Some(format!(
            "`{endpoint}` is not an endpoint; write tcp/HOST:PORT"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_link_host_port_and_never_tls() {
        assert_eq!(endpoint_problem("tcp/127.0.0.1:7447"), None);
        assert_eq!(endpoint_problem("quic/[::1]:7447"), None);
        assert!(endpoint_problem("tls/127.0.0.1:7447").is_some_and(|p| p.contains("refused")));
        for bad in ["127.0.0.1:7447", "tcp/127.0.0.1", "/h:1", "tcp/:1"] {
            assert!(endpoint_problem(bad).is_some(), "{bad}");
        }
    }
}
