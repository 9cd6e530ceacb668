//! What the tests with `troupe serve` children share: loopback ports and signals.

use std::net::TcpListener;
use std::process::Child;

/// A TCP port free on loopback now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Sends `signal` (`STOP`, `CONT`, ...) to `child`.
pub(crate) fn signal(child: &Child, signal: &str) {
    let sent = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{signal}");
}
