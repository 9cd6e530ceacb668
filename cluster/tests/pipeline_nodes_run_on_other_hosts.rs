//! Built-in pipeline nodes placed on another host (`host = "w"` on a node), with the host
//! and the pipeline in one process over loopback TCP: the outputs are those of the same
//! nodes run here, flush included; a batch sent again is answered once; a batch out of
//! sequence or of a session the host does not hold is refused.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use indexmap::IndexMap;
use support::{endpoint, free_port};
use troupe_cluster::{HostSpec, Limits, ListenSpec, RemoteHost, Server};
use troupe_manifest::Manifest;
use troupe_nodes::{Emitter, Node, NodeError, Source, SourceState};
use troupe_runtime::{Call, CallError, Value};
use troupe_value::Audio;

/// Resample 44.1 -> 16 kHz, then re-cut into 1000-frame chunks (the remainder at flush):
/// both stateful, both on host `w` when `on_w` is set.
fn manifest(port: u16, on_w: bool) -> Manifest {
    let host = if on_w { "host = \"w\"\n" } else { "" };
    let text = format!(
        r#"
[hosts.w]
connect = ["tcp/127.0.0.1:{port}"]
call_timeout_ms = 5000

[pipelines.p]

[[pipelines.p.nodes]]
id = "input"
type = "host.input"

[[pipelines.p.nodes]]
id = "resample"
type = "audio.resample"
{host}params = {{ rate = 16000 }}

[[pipelines.p.nodes]]
id = "chunker"
type = "audio.chunker"
{host}params = {{ frames = 1000 }}

[[pipelines.p.nodes]]
id = "out"
type = "host.node"

[[pipelines.p.edges]]
from = "input"
to = "resample"

[[pipelines.p.edges]]
from = "resample"
to = "chunker"

[[pipelines.p.edges]]
from = "chunker"
to = "out"
"#
    );
    Manifest::parse(&text, "remote_nodes.toml").expect("manifest")
}

/// 200 chunks of 441 frames of a deterministic signal at 44.1 kHz.
struct Tone {
    chunk: usize,
}

impl Source for Tone {
    fn type_name(&self) -> &'static str {
        "test.tone"
    }

    fn pull(&mut self, out: &mut Emitter) -> Result<SourceState, NodeError> {
        if self.chunk == 200 {
            return Ok(SourceState::Done);
        }
        let start = self.chunk * 441;
        let samples = (start..start + 441)
            .map(|i| ((i as f32) * 0.031).sin() * 0.5)
            .collect();
        let audio = Audio::from_interleaved(samples, 44_100, 1, 0).expect("audio");
        out.emit(Value::Audio(audio));
        self.chunk += 1;
        Ok(SourceState::More)
    }
}

/// Keeps what reaches it.
struct Collect(Arc<Mutex<Vec<Value>>>);

impl Node for Collect {
    fn type_name(&self) -> &'static str {
        "test.collect"
    }

    fn process(&mut self, input: Value, _: &mut Emitter) -> Result<(), NodeError> {
        self.0.lock().expect("collected").push(input);
        Ok(())
    }
}

/// Runs pipeline `p` of `manifest`, its remote nodes through `remote`: each output's
/// frames and samples.
async fn run(manifest: &Manifest, remote: &troupe_cluster::Bound) -> Vec<(usize, Vec<f32>)> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let pipeline = manifest
        .loader()
        .remote_nodes(remote.node_maker())
        .builder("p")
        .expect("builder")
        .source("input", Box::new(Tone { chunk: 0 }))
        .node("out", Box::new(Collect(got.clone())))
        .build()
        .expect("builds");
    pipeline.run().await.expect("runs to the end");
    let got = got.lock().expect("collected");
    got.iter()
        .map(|value| match value {
            Value::Audio(audio) => (
                audio.frames(),
                audio.samples().as_slice::<f32>().expect("f32").to_vec(),
            ),
            other => panic!("not audio: {other:?}"),
        })
        .collect()
}

async fn serve(port: u16, manifest: &Manifest) -> Server {
    let listen = ListenSpec::new("w", vec![endpoint(port)]);
    let nodes = manifest.nodes_served_by("w").collect();
    Server::start(listen, IndexMap::new(), nodes, Limits::default(), None)
        .await
        .expect("serves")
}

#[actix_rt::test]
async fn nodes_on_another_host_give_what_they_give_here() {
    let port = free_port();
    let remote_manifest = manifest(port, true);
    let server = serve(port, &remote_manifest).await;
    assert_eq!(server.hello().nodes, vec!["p/resample", "p/chunker"]);

    let here = run(&manifest(port, false), &Default::default()).await;
    let remote = troupe_cluster::bind(&remote_manifest).await.expect("binds");
    assert_eq!(remote.nodes.len(), 2);
    let there = run(&remote_manifest, &remote).await;

    // 200 x 441 frames at 44.1 kHz are 32000 frames at 16 kHz: 32 chunks of 1000.
    assert!(here.len() >= 31, "{} chunks", here.len());
    assert_eq!(here.iter().map(|(f, _)| f).sum::<usize>(), 32_000);
    assert_eq!(there.len(), here.len());
    assert!(
        there == here,
        "the same chunks, in order, to the last sample"
    );

    // Without a connection to the host, such a pipeline does not build.
    let unbound = remote_manifest.loader().builder("p");
    assert!(
        unbound.is_err_and(|e| e.to_string().contains("need a connection")),
        "refused"
    );
}

#[actix_rt::test]
async fn a_batch_sent_again_runs_once_and_bad_ones_are_refused() {
    let port = free_port();
    let manifest = manifest(port, true);
    let _server = serve(port, &manifest).await;
    let mut spec = HostSpec::new("w", vec![endpoint(port)]);
    spec.call_timeout = Duration::from_secs(5);
    let host = RemoteHost::connect(spec).await.expect("connects");
    assert!(host.node("p", "input").is_err(), "not placed on w");
    let chunker = host.node("p", "chunker").expect("served");

    let chunk = |frames: usize| {
        Value::Audio(Audio::from_interleaved(vec![0.25; frames], 16_000, 1, 0).expect("audio"))
    };
    let batch = |session: i64, seq: i64, items: Vec<Value>, end: bool| {
        Call::new(
            "batch",
            vec![
                Value::Int(session),
                Value::Int(seq),
                Value::List(items),
                Value::Bool(end),
            ],
        )
    };
    let frames_out = |answer: Value| -> Vec<Vec<usize>> {
        let Value::List(outcomes) = answer else {
            panic!("not a list: {answer:?}")
        };
        outcomes
            .into_iter()
            .map(|outcome| {
                let Value::Map(map) = outcome else {
                    panic!("not a map")
                };
                let Some(Value::List(outputs)) = map.get("out") else {
                    panic!("no outputs: {map:?}")
                };
                outputs
                    .iter()
                    .map(|v| match v {
                        Value::Audio(a) => a.frames(),
                        other => panic!("{other:?}"),
                    })
                    .collect()
            })
            .collect()
    };

    // 1500 frames: one chunk of 1000 out, 500 kept.
    let first = chunker
        .call(batch(7, 0, vec![chunk(1500)], false))
        .await
        .expect("answered");
    assert_eq!(frames_out(first.clone()), vec![vec![1000]]);
    // Sent again (its answer lost, say): the kept answer, and the node did not run again.
    let again = chunker
        .call(batch(7, 0, vec![chunk(1500)], false))
        .await
        .expect("answered");
    assert_eq!(again, first);
    // Out of sequence: refused.
    let skipped = chunker.call(batch(7, 5, vec![chunk(10)], false)).await;
    assert!(
        matches!(skipped, Err(CallError::BadArguments { .. })),
        "{skipped:?}"
    );
    // The end: the flush gives the 500 kept (1000 had the first batch run twice).
    let end = chunker
        .call(batch(7, 1, vec![], true))
        .await
        .expect("answered");
    assert_eq!(frames_out(end), vec![vec![500]]);
    // A session the host does not hold (it restarted, say): not found.
    let unknown = chunker.call(batch(99, 3, vec![chunk(10)], false)).await;
    assert!(
        matches!(unknown, Err(CallError::NotFound { .. })),
        "{unknown:?}"
    );
    // A bad batch: a typed error, and the host goes on.
    let bad = chunker
        .call(Call::new("batch", vec![Value::Int(8), Value::Int(0)]))
        .await;
    assert!(bad.is_err(), "{bad:?}");
    let fresh = chunker
        .call(batch(8, 0, vec![chunk(1000)], false))
        .await
        .expect("answered");
    assert_eq!(frames_out(fresh), vec![vec![1000]]);
}
