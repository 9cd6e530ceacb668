//! Methods of a real Python extension (its own venv, its own process) as pipeline nodes:
//! generators, async methods, flush, errors under the skip policy, a crash of the process
//! mid-run, audio and video as numpy arrays.

#![allow(clippy::unwrap_used)]

// The pipeline tests' nodes, from their one place.
#[path = "../../pipeline/tests/pipeline_support.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, SystemTime};

use support::{Collect, Range, Seen};
use troupe_bridge_python::extension::ExtensionConfig;
use troupe_bridge_python::process::SandboxConfig;
use troupe_host::extension_host::{
    ExtensionHost, Grants, PythonNode, PythonNodeSpec, STREAM_WINDOW,
};
use troupe_nodes::{Emitter, Source, SourceState};
use troupe_pipeline::{ErrorPolicy, PipelineBuilder, RunSummary};
use troupe_runtime::supervision::RestartSpec;
use troupe_value::{Audio, Map, PixelFormat, Value, VideoFrame};

async fn host() -> ExtensionHost {
    host_writing(None).await
}

/// The host, its extension's sandbox letting it write to `dir` too.
async fn host_writing(dir: Option<&Path>) -> ExtensionHost {
    let mut sandbox = SandboxConfig::default();
    if let Some(dir) = dir {
        sandbox = sandbox.write(dir);
    }
    host_with(|config| config.sandbox(sandbox)).await
}

/// The host, its extension configured by `configure` too.
async fn host_with(configure: impl FnOnce(ExtensionConfig) -> ExtensionConfig) -> ExtensionHost {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins");
    let config = ExtensionConfig::new("nodes", "nodes")
        .path(plugins)
        .dependencies(["numpy>=1.26,<3"])
        .restart(RestartSpec::default());
    let config = configure(config);
    let host = ExtensionHost::builder()
        .extension(config, Grants::host_only())
        .start()
        .await;
    assert!(host.failed().is_empty(), "{:?}", host.failed());
    host
}

fn spec(method: &str, generator: bool, flush: bool, params: Map) -> PythonNodeSpec {
    PythonNodeSpec {
        node: "py".into(),
        extension: "nodes".into(),
        method: method.into(),
        generator,
        flush,
        concurrency: 1,
        params,
    }
}

/// source -> python node -> collect; returns what reached the sink and the summary.
async fn run(
    host: &ExtensionHost,
    source: Box<dyn Source>,
    spec: PythonNodeSpec,
    policy: ErrorPolicy,
) -> (Vec<Value>, RunSummary) {
    let (seen, summary) = run_into(host, source, spec, policy, Duration::ZERO).await;
    (seen.items, summary)
}

/// [`run`] into a sink that takes `delay` per item; returns all the sink saw.
async fn run_into(
    host: &ExtensionHost,
    source: Box<dyn Source>,
    spec: PythonNodeSpec,
    policy: ErrorPolicy,
    delay: Duration,
) -> (Seen, RunSummary) {
    let node = PythonNode::new(host.extension("nodes").unwrap().caller(), &spec);
    let (sink, seen) = Collect::sink(delay);
    let summary = PipelineBuilder::new()
        .source("src", source)
        .node("py", Box::new(node))
        .node("sink", sink)
        .edge("src", "py")
        .edge("py", "sink")
        .error_policy("py", policy)
        .capacity("sink", SINK_CAPACITY)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (seen, summary)
}

/// The sink's mailbox (and so its edge's buffer): small, so that a slow sink pushes back.
const SINK_CAPACITY: usize = 4;

/// Seconds since the epoch: Python's `time.time()`.
fn epoch_seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The `t` (when it was yielded, `time.time()` in the child) of each output.
fn yield_times(items: &[Value]) -> Vec<f64> {
    items
        .iter()
        .map(|item| match item {
            Value::Map(map) => match map.get("t") {
                Some(Value::Float(t)) => *t,
                other => panic!("no time in {other:?}"),
            },
            other => panic!("not a map: {other:?}"),
        })
        .collect()
}

#[test]
fn each_yielded_value_goes_downstream_when_it_is_yielded() {
    actix::System::new().block_on(async {
        let host = host().await;
        for method in ["ticks", "ticks_async"] {
            let params = Map::from_iter([
                ("n".to_owned(), Value::Int(5)),
                ("gap".to_owned(), Value::Float(0.3)),
            ]);
            let (seen, summary) = run_into(
                &host,
                Range::boxed(0, 1),
                spec(method, true, false, params),
                ErrorPolicy::FailPipeline,
                Duration::ZERO,
            )
            .await;
            assert_eq!(seen.items.len(), 5, "{method}");
            assert_eq!(summary.node("py").unwrap().items_out, 5);
            let yielded = yield_times(&seen.items);
            let lags: Vec<f64> = seen
                .arrived
                .iter()
                .zip(&yielded)
                .map(|(arrived, yielded)| epoch_seconds(*arrived) - yielded)
                .collect();
            eprintln!(
                "{method}: yield -> sink lags (ms): {:?}",
                lags.iter().map(|l| (l * 1e3).round()).collect::<Vec<_>>()
            );
            for (k, lag) in lags.iter().enumerate() {
                assert!(
                    *lag < 0.05,
                    "{method}: value {k} reached the sink {lag:.3} s after its yield"
                );
            }
        }
        host.shutdown().await;
    });
}

#[test]
fn a_generator_waiting_for_credit_holds_up_no_other_call_and_stops_when_dropped() {
    actix::System::new().block_on(async {
        let host = host().await;
        let nodes = host.extension("nodes").unwrap().clone();
        let call = troupe_runtime::Call::new("forever", vec![Value::Int(0)]);
        let mut stream = nodes.call_stream(call, None, 2);
        assert_eq!(stream.next().await, Some(Ok(Value::Int(1))));
        // Not read further: the generator waits for credit, and the extension serves on.
        let answer = actix_rt::time::timeout(
            Duration::from_secs(5),
            nodes.call("evens", vec![Value::Int(4)]),
        )
        .await
        .expect("another call is not held up by the waiting generator");
        assert_eq!(answer, Ok(Value::Int(4)));
        let held = nodes
            .call_as::<i64>("yielded_so_far", vec![])
            .await
            .unwrap();
        assert!(held <= 4, "held at its yield by the window: {held}");
        // Dropped: the generator stops at its next yield.
        drop(stream);
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        let stopped = nodes
            .call_as::<i64>("yielded_so_far", vec![])
            .await
            .unwrap();
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            nodes
                .call_as::<i64>("yielded_so_far", vec![])
                .await
                .unwrap(),
            stopped
        );
        host.shutdown().await;
    });
}

#[test]
fn a_slow_consumer_holds_the_generator_at_its_yield() {
    actix::System::new().block_on(async {
        let host = host().await;
        let n = 120;
        let params = Map::from_iter([
            ("n".to_owned(), Value::Int(n)),
            ("gap".to_owned(), Value::Float(0.0)),
        ]);
        let (seen, _) = run_into(
            &host,
            Range::boxed(0, 1),
            spec("ticks", true, false, params),
            ErrorPolicy::FailPipeline,
            Duration::from_millis(10),
        )
        .await;
        assert_eq!(seen.items.len(), n as usize, "nothing is lost");
        let yielded = yield_times(&seen.items);
        // Between the generator and the sink at most: the stream's window, what the python
        // node holds, the sink's edge buffer and mailbox, and the item in its hands.
        let lead = STREAM_WINDOW as usize + 2 * SINK_CAPACITY + 4;
        for (k, (yielded, took)) in yielded.iter().skip(lead).zip(&seen.arrived).enumerate() {
            let sink_took = epoch_seconds(*took);
            assert!(
                yielded + 0.005 >= sink_took,
                "value {} was yielded {:.3} s before value {k} reached the sink",
                k + lead,
                sink_took - yielded
            );
        }
        host.shutdown().await;
    });
}

#[test]
fn generators_async_methods_and_flush_keep_order() {
    actix::System::new().block_on(async {
        let host = host().await;
        let params = Map::from_iter([("factor".to_owned(), Value::Int(100))]);
        let (items, summary) = run(
            &host,
            Range::boxed(0, 50),
            spec("explode", true, true, params),
            ErrorPolicy::FailPipeline,
        )
        .await;
        let mut want: Vec<Value> = (0..50i64)
            .flat_map(|i| [Value::Int(i), Value::Int(i * 100)])
            .collect();
        want.push(Value::map([("total", Value::Int((0..50).sum()))]));
        assert_eq!(items, want);
        assert_eq!(summary.node("py").unwrap().items_out, 101);

        // async def: answers take different times, order is still the input order.
        let (items, _) = run(
            &host,
            Range::boxed(0, 30),
            spec("slow_double", false, false, Map::new()),
            ErrorPolicy::FailPipeline,
        )
        .await;
        assert_eq!(
            items,
            (0..30i64).map(|i| Value::Int(i * 2)).collect::<Vec<_>>()
        );
        host.shutdown().await;
    });
}

#[test]
fn calling_a_host_without_a_service_is_a_clear_error() {
    actix::System::new().block_on(async {
        let host = host().await;
        let nodes = host.extension("nodes").unwrap();
        assert_eq!(
            nodes.call("ask_host", vec![Value::Null]).await,
            Ok(Value::from("TargetNotFoundError: host"))
        );
        host.shutdown().await;
    });
}

#[test]
fn a_node_naming_a_method_the_extension_lacks_fails_at_build_not_at_the_end() {
    actix::System::new().block_on(async {
        let host = host().await;
        let _ = host.ready().await;
        let make = host.python_nodes();
        for (method, flush, missing) in [
            ("slow_double", true, "slow_double_flush"),
            ("no_such_method", false, "no_such_method"),
        ] {
            match make(&spec(method, false, flush, Map::new())) {
                Err(troupe_nodes::NodeError::Call { method, source }) => {
                    assert_eq!(method, missing);
                    assert!(matches!(
                        *source,
                        troupe_value::CallError::UnknownMethod { .. }
                    ));
                }
                Err(other) => panic!("{other}"),
                Ok(_) => panic!("{method} built"),
            }
        }
        assert!(make(&spec("explode", true, true, Map::new())).is_ok());
        host.shutdown().await;
    });
}

#[test]
fn python_exceptions_follow_the_error_policy() {
    actix::System::new().block_on(async {
        let host = host().await;
        let (items, summary) = run(
            &host,
            Range::boxed(0, 10),
            spec("evens", false, false, Map::new()),
            ErrorPolicy::SkipItem,
        )
        .await;
        // 0 gives None (no output); odd inputs raise and are skipped.
        assert_eq!(items, [2i64, 4, 6, 8].map(Value::Int).to_vec());
        assert_eq!(summary.node("py").unwrap().errors, 5);

        let node = PythonNode::new(
            host.extension("nodes").unwrap().caller(),
            &spec("evens", false, false, Map::new()),
        );
        let failed = PipelineBuilder::new()
            .source("src", Range::boxed(0, 10))
            .node("py", Box::new(node))
            .edge("src", "py")
            .build()
            .unwrap()
            .run()
            .await
            .unwrap_err();
        let text = failed.to_string();
        assert!(
            text.contains("ValueError") && text.contains("1 is odd"),
            "{text}"
        );
        host.shutdown().await;
    });
}

#[test]
fn a_crashed_extension_costs_one_item_and_the_run_goes_on() {
    actix::System::new().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        // The marker lies outside the child's temp dir.
        let host = host_writing(Some(dir.path())).await;
        let marker = dir.path().join("crashed-once");
        let params = Map::from_iter([(
            "marker".to_owned(),
            Value::from(marker.to_string_lossy().into_owned()),
        )]);
        let (items, summary) = run(
            &host,
            Range::boxed(0, 8),
            spec("fragile", false, false, params),
            ErrorPolicy::SkipItem,
        )
        .await;
        assert!(marker.exists(), "the process crashed");
        assert_eq!(items, [0i64, 1, 2, 4, 5, 6, 7].map(Value::Int).to_vec());
        assert_eq!(summary.node("py").unwrap().errors, 1);
        host.shutdown().await;
    });
}

#[test]
fn a_hung_call_costs_one_item_and_a_new_process_takes_the_rest() {
    actix::System::new().block_on(async {
        let host = host_with(|config| {
            config
                .call_timeout(Duration::from_millis(1500))
                .cancel_grace(Some(Duration::from_millis(200)))
        })
        .await;
        let before = host.extension("nodes").unwrap().pid();
        let (items, summary) = run(
            &host,
            Range::boxed(0, 10),
            spec("hangs_on_three", false, false, Map::new()),
            ErrorPolicy::SkipItem,
        )
        .await;
        let want: Vec<Value> = (0..10i64).filter(|i| *i != 3).map(Value::Int).collect();
        assert_eq!(items, want, "only the hung item is lost");
        assert_eq!(summary.node("py").unwrap().errors, 1);
        assert_ne!(host.extension("nodes").unwrap().pid(), before);
        host.shutdown().await;
    });
}

/// Emits a few audio chunks, then a few video frames.
struct Media {
    left: Vec<Value>,
}

impl Source for Media {
    fn type_name(&self) -> &'static str {
        "test.media"
    }

    fn pull(&mut self, out: &mut Emitter) -> Result<SourceState, troupe_nodes::NodeError> {
        match self.left.pop() {
            Some(value) => {
                out.emit(value);
                Ok(SourceState::More)
            }
            None => Ok(SourceState::Done),
        }
    }
}

#[test]
fn audio_and_video_reach_python_as_numpy_arrays() {
    actix::System::new().block_on(async {
        let host = host().await;
        let chunks: Vec<Value> = (0..4)
            .map(|i| {
                let samples: Vec<f32> = (0..960).map(|n| (n as f32 * 0.001) - 0.4).collect();
                Value::Audio(Audio::from_interleaved(samples, 48_000, 2, i * 10_000_000).unwrap())
            })
            .collect();
        let (items, _) = run(
            &host,
            Box::new(Media {
                left: chunks.clone(),
            }),
            spec("louder", false, false, Map::new()),
            ErrorPolicy::FailPipeline,
        )
        .await;
        assert_eq!(items.len(), 4);
        for (got, sent) in items.iter().zip(chunks.iter().rev()) {
            let (Value::Audio(got), Value::Audio(sent)) = (got, sent) else {
                panic!("expected audio, got {got:?}");
            };
            assert_eq!(got.sample_rate(), 48_000);
            assert_eq!(got.channels(), 2);
            assert_eq!(got.timestamp_ns(), sent.timestamp_ns());
            let doubled: Vec<f32> = sent
                .samples()
                .to_vec::<f32>()
                .unwrap()
                .iter()
                .map(|s| s * 2.0)
                .collect();
            assert_eq!(got.samples().to_vec::<f32>().unwrap(), doubled);
        }

        let pixels: Vec<u8> = (0..16 * 8 * 3).map(|i| (i % 256) as u8).collect();
        let array = troupe_value::Array::from_slice(&pixels, vec![8, 16, 3]).unwrap();
        let frame = VideoFrame::new(array, 16, 8, PixelFormat::Rgb24, 7).unwrap();
        let (items, _) = run(
            &host,
            Box::new(Media {
                left: vec![Value::Video(frame)],
            }),
            spec("negative", false, false, Map::new()),
            ErrorPolicy::FailPipeline,
        )
        .await;
        let [Value::Video(negative)] = items.as_slice() else {
            panic!("expected one frame, got {items:?}");
        };
        assert_eq!(
            (negative.width(), negative.height(), negative.timestamp_ns()),
            (16, 8, 7)
        );
        let want: Vec<u8> = pixels.iter().map(|p| 255 - p).collect();
        assert_eq!(negative.pixels().to_vec::<u8>().unwrap(), want);
        host.shutdown().await;
    });
}
