//! `quic/` links with mutual TLS, over loopback: a client with a certificate of the host's
//! authority calls it; a client without one, or with one of another authority, is refused
//! at start; `quic/` without TLS files is a typed error before anything listens.

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use actix::prelude::*;
use indexmap::IndexMap;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use troupe_cluster::{ClusterError, HostSpec, Limits, ListenSpec, RemoteHost, Server, TlsFiles};
use troupe_runtime::{ActorBuilder, Call, CallError, CallResult, Value};

struct Echo;

impl Actor for Echo {
    type Context = Context<Self>;
}

impl Handler<Call> for Echo {
    type Result = ResponseFuture<CallResult>;

    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> Self::Result {
        Box::pin(async move {
            match call.method() {
                "echo" => call.arg::<Value>(0),
                _ => Err(CallError::UnknownMethod {
                    method: call.method().to_owned(),
                }),
            }
        })
    }
}

/// A free UDP port (QUIC runs over UDP).
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A certificate authority, and certificates it signs, written as PEM files in `dir`.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
    ca: std::path::PathBuf,
}

impl Authority {
    fn new(dir: &Path, name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
        let ca = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca, issuer.pem()).expect("write");
        Authority { issuer, ca }
    }

    /// A certificate for `names` signed by this authority, with its key.
    fn files(&self, dir: &Path, who: &str, names: &[&str]) -> TlsFiles {
        let key = KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &self.issuer)
            .expect("signed");
        let (cert_path, key_path) = (
            dir.join(format!("{who}-cert.pem")),
            dir.join(format!("{who}-key.pem")),
        );
        std::fs::write(&cert_path, cert.pem()).expect("write");
        std::fs::write(&key_path, key.serialize_pem()).expect("write");
        TlsFiles {
            root_ca: self.ca.clone(),
            cert: cert_path,
            key: key_path,
        }
    }
}

#[actix_rt::test]
async fn quic_links_need_a_certificate_of_the_host_s_authority() {
    let dir = std::env::temp_dir().join(format!("troupe-quic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ours = Authority::new(&dir, "ours");
    let theirs = Authority::new(&dir, "theirs");
    let port = free_port();
    let endpoint: troupe_cluster::Endpoint =
        format!("quic/127.0.0.1:{port}").parse().expect("endpoint");

    let mut listen = ListenSpec::new("secure", vec![endpoint.clone()]);
    let no_tls = Server::start(
        listen.clone(),
        IndexMap::new(),
        Vec::new(),
        Limits::default(),
        None,
    )
    .await;
    assert!(
        matches!(&no_tls, Err(ClusterError::Config { key, .. }) if key == "tls"),
        "{no_tls:?}"
    );
    listen.tls = Some(ours.files(&dir, "host", &["localhost", "127.0.0.1"]));
    let mut extensions = IndexMap::new();
    extensions.insert(
        "echo".to_owned(),
        ActorBuilder::new("echo").spawn(Echo).caller(),
    );
    let _server = Server::start(listen, extensions, Vec::new(), Limits::default(), None)
        .await
        .expect("serves over quic");

    let spec = |tls: Option<TlsFiles>| {
        let mut spec = HostSpec::new("secure", vec![endpoint.clone()]);
        spec.probe_timeout = Duration::from_secs(3);
        spec.tls = tls;
        spec
    };
    let host = RemoteHost::connect(spec(Some(ours.files(&dir, "client", &["client"]))))
        .await
        .expect("a client of our authority connects");
    let echo = host.extension("echo").expect("served");
    assert_eq!(
        echo.call(Call::new("echo", vec![Value::from("over quic")]))
            .await,
        Ok(Value::from("over quic"))
    );

    let start = Instant::now();
    let stranger = RemoteHost::connect(spec(Some(theirs.files(&dir, "stranger", &["x"])))).await;
    assert!(
        matches!(stranger, Err(ClusterError::Open { .. })),
        "another authority's client: {stranger:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    let anonymous = RemoteHost::connect(spec(None)).await;
    assert!(
        matches!(&anonymous, Err(ClusterError::Config { key, .. }) if key == "tls"),
        "{anonymous:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
