//! Link endpoints (`tcp/HOST:PORT`, `quic/HOST:PORT`), checked before zenoh sees them.
//!
//! zenoh silently ignores settings of a link it was built without, and its `tls/` link loses
//! calls under load (it reads and writes one stream concurrently). So only the links this
//! crate compiles in are accepted (`tcp/` with user/password inside a private network,
//! `quic/` with mutual TLS anywhere), and `tls/` never is.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The links compiled into this build.
pub const LINKS: &[&str] = &["tcp", "quic"];

/// Why an endpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EndpointError {
    /// A `tls/` endpoint: refused for good (use `quic/` with mutual TLS, or `tcp/` inside a
    /// private network with user/password).
    #[error(
        "`{0}`: tls/ endpoints are refused (zenoh's tls link loses calls under load); use quic/ with mutual TLS, or tcp/ inside a private network with user/password"
    )]
    Tls(String),
    /// A link this build does not have (e.g. `udp/`): its settings would be ignored.
    #[error(
        "`{endpoint}`: the {link}/ link is not compiled into this troupe (it has: tcp/, quic/)"
    )]
    NotCompiled {
        /// The endpoint as given.
        endpoint: String,
        /// Its link.
        link: String,
    },
    /// Not `LINK/HOST:PORT`, or with zenoh options (`#...`, `?...`) troupe does not pass on.
    #[error("`{0}`: not an endpoint; write tcp/HOST:PORT")]
    Malformed(String),
}

/// A checked `tcp/HOST:PORT` endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint(String);

impl Endpoint {
    /// The endpoint as zenoh takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is a `quic/` endpoint (which needs TLS files).
    pub fn is_quic(&self) -> bool {
        self.0.starts_with("quic/")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(text: &str) -> Result<Endpoint, EndpointError> {
        let malformed = || EndpointError::Malformed(text.to_owned());
        let (link, address) = text.split_once('/').ok_or_else(malformed)?;
        if link == "tls" {
            return Err(EndpointError::Tls(text.to_owned()));
        }
        if !LINKS.contains(&link) {
            if link.is_empty() || !link.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(malformed());
            }
            return Err(EndpointError::NotCompiled {
                endpoint: text.to_owned(),
                link: link.to_owned(),
            });
        }
        if address.contains(['#', '?', '/', ' ']) {
            return Err(malformed());
        }
        let (host, port) = address.rsplit_once(':').ok_or_else(malformed)?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(malformed());
        }
        Ok(Endpoint(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tcp_and_quic_endpoints_pass() {
        assert!("tcp/127.0.0.1:7447".parse::<Endpoint>().is_ok());
        assert!(
            "quic/127.0.0.1:7447"
                .parse::<Endpoint>()
                .is_ok_and(|e| e.is_quic())
        );
        assert!("tcp/[::1]:0".parse::<Endpoint>().is_ok());
        assert!("tcp/gpu1.local:7447".parse::<Endpoint>().is_ok());
        assert!(matches!(
            "tls/127.0.0.1:7447".parse::<Endpoint>(),
            Err(EndpointError::Tls(_))
        ));
        assert!(matches!(
            "udp/127.0.0.1:7447".parse::<Endpoint>(),
            Err(EndpointError::NotCompiled { link, .. }) if link == "udp"
        ));
        for bad in [
            "127.0.0.1:7447",
            "tcp/127.0.0.1",
            "tcp/:7447",
            "tcp/127.0.0.1:99999",
            "tcp/127.0.0.1:7447#iface=lo",
            "tcp/127.0.0.1:7447?x=1",
            "/127.0.0.1:7447",
        ] {
            assert!(
                matches!(bad.parse::<Endpoint>(), Err(EndpointError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
