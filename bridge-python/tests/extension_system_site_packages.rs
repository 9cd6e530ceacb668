//! `system_site_packages`: a venv that sees its interpreter's own packages (a GPU machine's
//! system torch and cupy, where no package index can be reached) installs nothing and
//! imports from there; a default venv does not see them.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::cache;
use troupe_bridge_python::env::{self, EnvSpec};
use troupe_bridge_python::extension::{self, ExtensionConfig, NoRoutes};
use troupe_bridge_python::provision;
use troupe_value::Value;

const MODULE: &str = r#"
import os
import site
import sys

import troupe


class Site(troupe.Extension):
    def base_site(self):
        """[whether the interpreter's own site-packages exist, whether sys.path has them]"""
        base = [p for p in site.getsitepackages([sys.base_prefix]) if os.path.isdir(p)]
        return [bool(base), any(p in sys.path for p in base)]
"#;

/// `[base site-packages exist, they are on sys.path]` in an extension whose venv was made
/// with `system_site_packages`.
async fn base_site(system_site_packages: bool) -> Vec<bool> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site_probe.py"), MODULE).unwrap();
    let config = ExtensionConfig::new("site", "site_probe")
        .path(dir.path())
        .system_site_packages(system_site_packages);
    let spec: EnvSpec = config.env.clone();
    assert_eq!(spec.system_site_packages, system_site_packages);
    let venv = actix_rt::task::spawn_blocking(move || {
        let venv = cache().ensure(&spec, &env::quiet).unwrap();
        provision::provision(&venv).unwrap();
        venv
    })
    .await
    .unwrap();
    let ext = extension::start(config, venv, Arc::new(NoRoutes));
    let status = ext.ready_within(Duration::from_secs(60)).await;
    assert!(status.is_ok(), "{status:?}");
    let seen = ext.call("base_site", vec![]).await.unwrap();
    ext.stop().await;
    match seen {
        Value::List(items) => items
            .into_iter()
            .map(|v| matches!(v, Value::Bool(true)))
            .collect(),
        other => panic!("expected a list, got {other:?}"),
    }
}

#[test]
fn only_a_system_site_packages_venv_sees_the_interpreters_packages() {
    actix::System::new().block_on(async {
        let with = base_site(true).await;
        assert!(
            with[0],
            "the base interpreter has no site-packages directory"
        );
        assert!(with[1], "system site-packages not on sys.path");
        let without = base_site(false).await;
        assert_eq!(without, vec![true, false]);
    });
}
