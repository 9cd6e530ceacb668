//! Running the example manifests of `examples/` from tests (included with `#[path]`).

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use troupe_host::extension_host::ExtensionHost;
use troupe_host::singleton::SingletonKinds;
use troupe_manifest::Manifest;
use troupe_pipeline::RunSummary;
use troupe_runtime::Registry;

/// The path of `examples/NAME`.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// Runs pipeline `pipeline` of `examples/MANIFEST` with the variables `vars` set (and no
/// others), and prints its summary.
pub fn run_example(manifest: &str, pipeline: &str, vars: &[(&str, &Path)]) -> RunSummary {
    let path = example(manifest);
    let text = std::fs::read_to_string(&path).unwrap();
    let manifest = Manifest::parse_with_env(&text, &path, |name| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| value.display().to_string())
    })
    .unwrap();
    let summary = actix::System::new().block_on(async {
        // Python nodes run in the manifest's extensions (real venvs, real processes).
        let host = if manifest.extensions.is_empty() {
            None
        } else {
            let singletons = Registry::new();
            SingletonKinds::builtin()
                .start_all(manifest.singletons.values(), &singletons)
                .unwrap();
            let host = ExtensionHost::builder()
                .singletons(singletons)
                .extensions(manifest.extensions_with_grants())
                .start()
                .await;
            assert!(host.failed().is_empty(), "{:?}", host.failed());
            Some(host)
        };
        let mut loader = manifest.loader();
        if let Some(host) = &host {
            loader = loader.python_nodes(host.python_nodes());
        }
        let summary = loader.build(pipeline).unwrap().run().await.unwrap();
        if let Some(host) = host {
            host.shutdown().await;
        }
        summary
    });
    println!("{summary}");
    summary
}
