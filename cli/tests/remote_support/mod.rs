//! What the tests with `troupe serve` children share: loopback ports, starting a serving
//! host, signals.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::troupe;

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

/// `troupe serve --name NAME --listen tcp/127.0.0.1:PORT --manifest MANIFEST ARGS...`, once
/// it says it is ready (killed, and the test failed, if it is not within 120 s).
pub(crate) fn serve(name: &str, port: u16, manifest: &Path, args: &[&str]) -> Child {
    let mut child = troupe()
        .args(["serve", "--name", name, "--listen"])
        .arg(format!("tcp/127.0.0.1:{port}"))
        .arg("--manifest")
        .arg(manifest)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("troupe serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(" ready on ") {
                let _ = ready_tx.send(());
            }
        }
    });
    if ready_rx.recv_timeout(Duration::from_secs(120)).is_err() {
        let status = child.try_wait();
        let _ = child.kill();
        let _ = child.wait();
        panic!("troupe serve did not get ready: {status:?}");
    }
    child
}
