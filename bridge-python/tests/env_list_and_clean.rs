//! `list` shows what the cache holds; `clean` and `remove` delete it.

use std::fs;

use troupe_bridge_python::env::{self, EnvCache, EnvKey, EnvSpec};

#[test]
fn list_describes_venvs_and_clean_removes_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = EnvCache::new(tmp.path());
    assert!(cache.list().expect("empty list").is_empty());

    let six = cache
        .ensure(&EnvSpec::new(["Six == 1.16.0"]), &env::quiet)
        .expect("six");
    let bare = cache
        .ensure(&EnvSpec::default(), &env::quiet)
        .expect("bare");
    let crashed = cache.venvs_dir().join("cpython-311-0123456789abcdef");
    fs::create_dir_all(&crashed).expect("mkdir");

    let listed = cache.list().expect("list");
    assert_eq!(listed.len(), 3);
    let entry = listed
        .iter()
        .find(|e| e.key == six.key)
        .expect("six listed");
    assert!(entry.complete);
    assert_eq!(entry.path, six.root);
    assert_eq!(entry.dependencies, ["six==1.16.0"]);
    assert!(
        entry.packages.iter().any(|p| p == "six==1.16.0"),
        "{:?}",
        entry.packages
    );
    assert!(entry.size_bytes > 10_000, "{}", entry.size_bytes);
    assert!(entry.created.is_some() && entry.last_used.is_some());
    assert!(entry.python_version.is_some());
    let half = listed
        .iter()
        .find(|e| e.path == crashed)
        .expect("crashed listed");
    assert!(!half.complete);

    let removed = cache.clean(|e| !e.complete).expect("clean");
    assert_eq!(removed.len(), 1);
    assert!(!crashed.exists());

    assert!(cache.remove(&six.key).expect("remove"));
    assert!(!cache.remove(&six.key).expect("remove again"));
    assert!(!six.root.exists());
    let keys: Vec<EnvKey> = cache
        .list()
        .expect("list")
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, [bare.key]);

    assert_eq!(cache.clean(|_| true).expect("clean all").len(), 1);
    assert!(cache.list().expect("list").is_empty());
    // Reuse after removal rebuilds.
    let again = cache
        .ensure(&EnvSpec::default(), &env::quiet)
        .expect("rebuilt");
    assert!(again.python.exists());
}
