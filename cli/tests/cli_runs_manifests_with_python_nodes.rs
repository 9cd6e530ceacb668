//! The `troupe` binary as a user runs it: `run` on the audio example (a numpy extension as
//! a python node, a kv singleton), and `check` on broken manifests (exit code 2, file, line
//! and key in the message).

use std::path::Path;

mod support;

use support::troupe;

#[test]
fn run_writes_one_line_per_speech_segment_and_a_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("segments.jsonl");
    let run = troupe()
        .args(["run", "examples/audio_vad.toml"])
        .env("TROUPE_AUDIO_OUT", &out)
        .output()
        .expect("troupe runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("features  python"),
        "the summary lists the python node: {stdout}"
    );
    // And how each extension fared: its restarts and status.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("features") && l.ends_with("0  running")),
        "the summary lists the extension: {stdout}"
    );
    let text = std::fs::read_to_string(&out).expect("output written");
    let lines: Vec<&str> = text.lines().collect();
    // examples/data/speech.wav has 4 bursts; the extension's flush adds a summary line.
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].contains("\"spectral_centroid_hz\""),
        "{}",
        lines[0]
    );
    assert!(lines[4].contains("\"segments_in_store\":4"), "{}", lines[4]);
    // A reader of the output that goes away at once (`troupe run ... | head`) is no panic.
    let mut piped = troupe()
        .args(["run", "examples/audio_vad.toml"])
        .env("TROUPE_AUDIO_OUT", dir.path().join("again.jsonl"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("troupe runs");
    drop(piped.stdout.take());
    let status = piped.wait().expect("troupe ends");
    assert!(status.success(), "{status:?}");
}

#[test]
fn check_flags_an_extension_whose_code_is_not_where_it_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("plugins")).expect("mkdir");
    for (extension, problem) in [
        ("path = \"nowhere\"\nmodule = \"m\"", "is not a directory"),
        (
            "path = \"plugins\"\nmodule = \"absent.mod\"",
            "module `absent.mod` is not in",
        ),
    ] {
        let manifest = dir.path().join("app.toml");
        std::fs::write(&manifest, format!("[extensions.x]\n{extension}\n")).expect("write");
        let check = troupe()
            .arg("check")
            .arg(&manifest)
            .output()
            .expect("troupe runs");
        let stderr = String::from_utf8_lossy(&check.stderr);
        assert_eq!(check.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(problem), "{stderr}");
    }
    std::fs::write(dir.path().join("plugins/present.py"), "").expect("write");
    let manifest = dir.path().join("app.toml");
    std::fs::write(
        &manifest,
        "[extensions.x]\npath = \"plugins\"\nmodule = \"present\"\n",
    )
    .expect("write");
    let check = troupe().arg("check").arg(&manifest).output().expect("runs");
    assert!(check.status.success(), "{check:?}");
}

#[test]
fn check_names_the_file_line_and_key_of_a_mistake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("broken.toml");
    std::fs::write(
        &manifest,
        "[[pipelines.p.nodes]]\nid = \"a\"\ntype = \"python\"\nextension = \"missing\"\nmethod = \"f\"\n",
    )
    .expect("write");
    let check = troupe()
        .arg("check")
        .arg(&manifest)
        .output()
        .expect("troupe runs");
    assert_eq!(check.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&check.stderr);
    let name = Path::new("broken.toml");
    assert!(
        stderr.contains(&format!("{}:4", name.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("pipelines.p.nodes[0].extension"),
        "{stderr}"
    );
    assert!(stderr.contains("missing"), "{stderr}");
}

#[test]
fn check_without_a_manifest_prints_what_sandboxes_get_here() {
    let check = troupe().arg("check").output().expect("troupe runs");
    assert!(check.status.success(), "{check:?}");
    let stdout = String::from_utf8_lossy(&check.stdout);
    for layer in ["landlock:", "seccomp:", "bubblewrap:", "cgroup:"] {
        assert!(stdout.contains(layer), "{layer} missing: {stdout}");
    }
}

#[test]
fn run_shows_what_extensions_print_and_counts_their_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins");
    let marker = dir.path().join("crashed-once");
    let manifest = dir.path().join("noisy.toml");
    std::fs::write(
        &manifest,
        format!(
            "[extensions.noisy]\npath = \"{plugins}\"\nmodule = \"noisy\"\n\
             sandbox = {{ level = \"default\", write = [\"{dir}\"] }}\n\
             [pipelines.p]\nerror_policy = \"skip_item\"\n\
             [[pipelines.p.nodes]]\nid = \"numbers\"\ntype = \"data.jsonl_source\"\n\
             params = {{ path = \"{input}\" }}\n\
             [[pipelines.p.nodes]]\nid = \"py\"\ntype = \"python\"\nextension = \"noisy\"\n\
             method = \"handle\"\nparams = {{ marker = \"{marker}\" }}\n\
             [[pipelines.p.edges]]\nfrom = \"numbers\"\nto = \"py\"\n",
            plugins = plugins.display(),
            dir = dir.path().display(),
            input = dir.path().join("in.jsonl").display(),
            marker = marker.display(),
        ),
    )
    .expect("write");
    std::fs::write(dir.path().join("in.jsonl"), "0\n1\n2\n3\n4\n5\n6\n").expect("write");
    let run = troupe()
        .arg("run")
        .arg(&manifest)
        .output()
        .expect("troupe runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    // print(), logging and the skipped input's exception, each tagged with the extension.
    assert!(stderr.contains("noisy: ready"), "{stderr}");
    assert!(stderr.contains("handled 1"), "{stderr}");
    assert!(stderr.contains("two is not welcome"), "{stderr}");
    assert!(stderr.contains("extension=noisy"), "{stderr}");
    // Two inputs lost (the exception, the crash); the process restarted once.
    let py = stdout
        .lines()
        .find(|l| l.starts_with("py "))
        .expect("py row");
    let counts: Vec<&str> = py.split_whitespace().collect();
    assert_eq!(&counts[2..5], ["7", "5", "2"], "in, out, errors: {py}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("noisy") && l.contains(" 1  running")),
        "one restart: {stdout}"
    );
}
