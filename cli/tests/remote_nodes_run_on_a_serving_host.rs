//! Built-in pipeline nodes on another host, with real processes: `troupe serve` runs the
//! resampler and the VAD that one manifest places on it, `troupe run` of that manifest
//! sends them the audio in batches, and the segments are those of the same pipeline run on
//! one host, to the byte. Frozen by SIGSTOP for longer than a call's timeout, the host gets
//! the unanswered batches again once it wakes, and runs each once: nothing lost, nothing
//! doubled.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

mod remote_support;
mod support;

use remote_support::{free_port, serve, signal};
use support::troupe;

/// The VAD pipeline over examples/data/speech.wav into `out`, its resampler and VAD on host
/// `worker` at `port` when `remote`.
fn manifest(dir: &Path, port: u16, remote: bool, out: &Path) -> std::path::PathBuf {
    let host = if remote { "host = \"worker\"\n" } else { "" };
    let speech = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/speech.wav");
    let text = format!(
        r#"
[hosts.worker]
connect = ["tcp/127.0.0.1:{port}"]
call_timeout_ms = 300

[pipelines.vad]

[[pipelines.vad.nodes]]
id = "input"
type = "audio.file_source"
params = {{ path = {speech:?}, chunk_frames = 2400 }}

[[pipelines.vad.nodes]]
id = "resample"
type = "audio.resample"
{host}params = {{ rate = 16000 }}

[[pipelines.vad.nodes]]
id = "vad"
type = "audio.vad"
{host}params = {{ method = "earshot", min_speech_ms = 150, min_silence_ms = 300 }}

[[pipelines.vad.nodes]]
id = "segments"
type = "data.jsonl_sink"
params = {{ path = {out:?} }}

[[pipelines.vad.edges]]
from = "input"
to = "resample"

[[pipelines.vad.edges]]
from = "resample"
to = "vad"

[[pipelines.vad.edges]]
from = "vad"
to = "segments"
"#,
        speech = speech.display().to_string(),
        out = out.display().to_string(),
    );
    let file = dir.join(if remote { "remote.toml" } else { "local.toml" });
    std::fs::write(&file, text).expect("write manifest");
    file
}

#[test]
fn remote_nodes_give_the_local_segments_and_survive_a_frozen_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let (local_out, remote_out) = (
        dir.path().join("local.jsonl"),
        dir.path().join("remote.jsonl"),
    );
    let local = manifest(dir.path(), port, false, &local_out);
    let remote = manifest(dir.path(), port, true, &remote_out);

    let ran = troupe().arg("run").arg(&local).output().expect("runs");
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let expected = std::fs::read_to_string(&local_out).expect("local segments");
    assert!(expected.lines().count() >= 2, "speech found: {expected}");

    let mut server = serve("worker", port, &remote, &[]);
    let mut run = troupe()
        .arg("run")
        .arg(&remote)
        .env("TROUPE_LOG", "troupe_cluster=debug,warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("troupe run starts");
    let mut stderr = BufReader::new(run.stderr.take().expect("stderr"));
    let mut said = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("reads") == 0 {
            panic!("troupe run ended before it connected: {said}");
        }
        said.push_str(&line);
        if line.contains("[worker] connected") {
            break;
        }
    }
    // Frozen past the 300 ms call timeout: its batches go unanswered and are sent again.
    signal(&server, "STOP");
    std::thread::sleep(Duration::from_millis(1500));
    signal(&server, "CONT");
    stderr.read_to_string(&mut said).expect("reads");
    let status = run.wait().expect("run ends");
    let _ = server.kill();
    let _ = server.wait();

    assert!(status.success(), "{said}");
    assert!(said.contains("batch resent"), "no batch was resent: {said}");
    let got = std::fs::read_to_string(&remote_out).expect("remote segments");
    assert!(got == expected, "the same segments as on one host");
}
