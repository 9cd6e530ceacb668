//! An extension host started from a manifest: an extension whose dependencies cannot be
//! installed is reported with its name and the resolver's message, and the others start;
//! grants between extensions hold.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use troupe_host::extension_host::{ExtensionHost, HostError};
use troupe_manifest::Manifest;
use troupe_value::Value;

const MANIFEST: &str = r#"
[extensions.broken]
module = "greeter"
path = "plugins"
dependencies = ["troupe-surely-not-a-package-4417==0.0.1"]

[extensions.friendly]
module = "greeter"
path = "plugins"
grants = { extensions = ["shy"] }

[extensions.shy]
module = "greeter"
path = "plugins"
"#;

#[test]
fn a_failed_install_is_reported_and_the_others_start() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/extension_host.toml");
    let manifest = Manifest::parse(MANIFEST, &file).unwrap();
    actix::System::new().block_on(async {
        let host = ExtensionHost::builder()
            .extensions(manifest.extensions_with_grants())
            .start()
            .await;

        let failed: Vec<&String> = host.failed().keys().collect();
        assert_eq!(failed, ["broken"]);
        match &host.failed()["broken"] {
            error @ HostError::Env { extension, .. } => {
                assert_eq!(extension, "broken");
                let text = format!("{error}: {:?}", std::error::Error::source(error));
                assert!(text.contains("troupe-surely-not-a-package-4417"), "{text}");
            }
            other => panic!("expected an environment error, got {other:?}"),
        }

        for (name, status) in host.ready().await {
            assert!(status.is_running(), "{name}: {status:?}");
        }
        let friendly = host.extension("friendly").unwrap();
        let shy = host.extension("shy").unwrap();
        assert_eq!(
            friendly
                .call("ask", vec!["shy".into(), "troupe".into()])
                .await,
            Ok(Value::from("hello, troupe"))
        );
        // shy was granted nothing: its call to friendly is refused, and says who and what.
        let refused = shy
            .call("ask", vec!["friendly".into(), "troupe".into()])
            .await;
        let Ok(Value::Str(text)) = refused else {
            panic!("expected a refusal text, got {refused:?}");
        };
        assert!(
            text.starts_with("refused:") && text.contains("friendly"),
            "{text}"
        );
        host.shutdown().await;
    });
}
