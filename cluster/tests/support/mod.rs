//! What the cluster tests share: loopback endpoints.

use std::net::TcpListener;

/// A TCP port free on loopback now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `tcp/127.0.0.1:PORT`.
pub(crate) fn endpoint(port: u16) -> troupe_cluster::Endpoint {
    format!("tcp/127.0.0.1:{port}").parse().expect("endpoint")
}
