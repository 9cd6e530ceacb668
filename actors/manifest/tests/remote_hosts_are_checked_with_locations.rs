//! `[hosts.NAME]` and `host = "NAME"`: an unknown host, a `tls/` endpoint and half a
//! credential are errors naming their line and key; a remote extension is not started here.

use troupe_manifest::{Manifest, ManifestErrorKind};

const TEXT: &str = r#"
[hosts.gpu1]
connect = ["tcp/127.0.0.1:7447"]
call_timeout_ms = 2000
user = "${GPU_USER}"
password = "${GPU_PASSWORD:-secret}"

[extensions.local]
module = "local_plugin"

[extensions.asr]
module = "asr_plugin"
host = "gpu1"
"#;

fn parse(text: &str) -> Result<Manifest, troupe_manifest::ManifestError> {
    Manifest::parse_with_env(text, "remote.toml", |name| {
        (name == "GPU_USER").then(|| "troupe".to_owned())
    })
}

#[test]
fn remote_extensions_are_bound_to_their_host_and_not_started_here() {
    let manifest = parse(TEXT).expect("valid");
    let gpu1 = &manifest.hosts["gpu1"];
    assert_eq!(gpu1.connect, ["tcp/127.0.0.1:7447"]);
    assert_eq!(
        gpu1.credentials,
        Some(("troupe".to_owned(), "secret".to_owned()))
    );
    assert!(
        !format!("{gpu1:?}").contains("secret"),
        "no password in Debug"
    );
    let here: Vec<_> = manifest
        .extensions_with_grants()
        .map(|(config, _)| config.name.clone())
        .collect();
    assert_eq!(here, ["local"]);
    let served: Vec<_> = manifest
        .extensions_served_by(Some("gpu1"))
        .map(|(config, _)| config.name.clone())
        .collect();
    assert_eq!(served, ["local", "asr"]);
    let remote: Vec<_> = manifest
        .remote_extensions()
        .map(|(extension, hosts)| (extension.name.as_str(), hosts[0].name.as_str()))
        .collect();
    assert_eq!(remote, [("asr", "gpu1")]);
}

#[test]
fn fail_over_hosts_and_idempotent_methods_are_checked() {
    let two = format!("{TEXT}\n[hosts.gpu2]\nconnect = [\"tcp/127.0.0.1:7448\"]\n").replace(
        "host = \"gpu1\"",
        "hosts = [\"gpu1\", \"gpu2\"]\nidempotent = [\"transcribe\"]",
    );
    let manifest = parse(&two).expect("valid");
    let asr = &manifest.extensions["asr"];
    assert_eq!(asr.hosts, ["gpu1", "gpu2"]);
    assert_eq!(asr.idempotent, ["transcribe"]);
    let (_, hosts) = manifest.remote_extensions().next().expect("remote");
    let names: Vec<_> = hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["gpu1", "gpu2"]);
    let served: Vec<_> = manifest
        .extensions_served_by(Some("gpu2"))
        .map(|(config, _)| config.name.clone())
        .collect();
    assert_eq!(served, ["local", "asr"], "each host of the list serves it");

    for (from, to, key, says) in [
        (
            "hosts = [\"gpu1\", \"gpu2\"]",
            "hosts = [\"gpu1\", \"gpu3\"]",
            "extensions.asr.hosts[1]",
            "gpu3",
        ),
        (
            "hosts = [\"gpu1\", \"gpu2\"]",
            "hosts = [\"gpu1\", \"gpu1\"]",
            "extensions.asr.hosts[1]",
            "named twice",
        ),
        (
            "hosts = [\"gpu1\", \"gpu2\"]",
            "hosts = []",
            "extensions.asr.hosts",
            "at least one host",
        ),
        (
            "hosts = [\"gpu1\", \"gpu2\"]",
            "host = \"gpu1\"\nhosts = [\"gpu2\"]",
            "extensions.asr.hosts",
            "not both",
        ),
    ] {
        let error = parse(&two.replace(from, to)).unwrap_err();
        assert_eq!(error.location.key, key, "{error}");
        assert!(error.to_string().contains(says), "{error}");
    }
    let local_retry = TEXT.replace(
        "module = \"local_plugin\"",
        "module = \"local_plugin\"\nidempotent = [\"m\"]",
    );
    let error = parse(&local_retry).unwrap_err();
    assert_eq!(error.location.key, "extensions.local.idempotent");

    let quic = TEXT.replace(
        "connect = [\"tcp/127.0.0.1:7447\"]",
        "connect = [\"quic/127.0.0.1:7447\"]\ntls = { root_ca = \"tls/ca.pem\", cert = \"tls/me.pem\", key = \"tls/me.key\" }",
    );
    let manifest = parse(&quic).expect("valid");
    let tls = manifest.hosts["gpu1"].tls.as_ref().expect("tls");
    assert!(tls.root_ca.ends_with("tls/ca.pem") && tls.key.ends_with("tls/me.key"));

    let restricted = TEXT.replace(
        "module = \"asr_plugin\"",
        "module = \"asr_plugin\"\nusers = [\"alice\"]",
    );
    let manifest = parse(&restricted).expect("valid");
    assert_eq!(
        manifest.extensions["asr"].users,
        Some(vec!["alice".to_owned()])
    );
    let error = parse(&restricted.replace("[\"alice\"]", "[]")).unwrap_err();
    assert_eq!(error.location.key, "extensions.asr.users");
}

#[test]
fn an_unknown_host_is_a_located_error() {
    let error = parse(&TEXT.replace("host = \"gpu1\"", "host = \"gpu2\"")).unwrap_err();
    assert!(
        matches!(error.kind(), ManifestErrorKind::UnknownHost { name } if name == "gpu2"),
        "{error}"
    );
    assert_eq!(error.location.key, "extensions.asr.host");
    assert_eq!(error.location.line, Some(13));
}

#[test]
fn tls_endpoints_and_half_credentials_are_located_errors() {
    let error = parse(&TEXT.replace("tcp/127", "tls/127")).unwrap_err();
    assert!(
        error.to_string().contains("tls/ endpoints are refused"),
        "{error}"
    );
    assert_eq!(error.location.key, "hosts.gpu1.connect[0]");
    assert_eq!(error.location.line, Some(3));

    let error = parse(&TEXT.replace("password = \"${GPU_PASSWORD:-secret}\"", "")).unwrap_err();
    assert_eq!(error.location.key, "hosts.gpu1.user");

    let error =
        parse(&TEXT.replace("connect = [\"tcp/127.0.0.1:7447\"]", "connect = []")).unwrap_err();
    assert_eq!(error.location.key, "hosts.gpu1.connect");
}

#[test]
fn nodes_on_other_hosts_are_built_in_processing_nodes_of_known_hosts() {
    let pipeline = |input_host: &str, vad_host: &str| {
        format!(
            "{TEXT}\n[pipelines.p]\n\
             [[pipelines.p.nodes]]\nid = \"input\"\ntype = \"host.input\"\n{input_host}\n\
             [[pipelines.p.nodes]]\nid = \"vad\"\ntype = \"audio.vad\"\n{vad_host}\n\
             [[pipelines.p.edges]]\nfrom = \"input\"\nto = \"vad\"\n"
        )
    };
    let manifest = parse(&pipeline("", "host = \"gpu1\"")).expect("valid");
    let remote: Vec<_> = manifest
        .remote_nodes()
        .map(|(node, host)| (node.pipeline, node.node, node.type_name, host.name.clone()))
        .collect();
    assert_eq!(
        remote,
        [(
            "p".to_owned(),
            "vad".to_owned(),
            "audio.vad",
            "gpu1".to_owned()
        )]
    );
    let served: Vec<_> = manifest
        .nodes_served_by("gpu1")
        .map(|node| node.node)
        .collect();
    assert_eq!(served, ["vad"]);
    assert!(manifest.nodes_served_by("elsewhere").next().is_none());
    let unbound = manifest.loader().builder("p").map(|_| ());
    assert!(
        matches!(&unbound, Err(e) if matches!(e.kind(), ManifestErrorKind::RemoteNodesNeedCluster)),
        "not built without a connection: {unbound:?}"
    );

    let unknown = parse(&pipeline("", "host = \"gpu9\"")).expect_err("unknown host");
    assert!(matches!(unknown.kind(), ManifestErrorKind::UnknownHost { name } if name == "gpu9"));
    assert!(unknown.to_string().contains("host"), "{unknown}");
    let source = parse(&pipeline("host = \"gpu1\"", "")).expect_err("a source");
    assert!(
        source
            .to_string()
            .contains("only built-in processing nodes"),
        "{source}"
    );
}
