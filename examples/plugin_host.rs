//! Three Python extensions with conflicting dependencies, one Rust singleton, calls in every
//! direction.
//!
//! `cargo run --release --example plugin_host`
//!
//! - `legacy` is pinned to numpy 1.26, `modern` to numpy 2.x, `pure` has no dependencies:
//!   each runs in its own venv (built once with uv, then reused) and reports what it sees.
//! - A Rust key-value singleton `kv` is called by all three from Python.
//! - The host sends numpy arrays to both numpy extensions and gets arrays back.
//! - `modern` calls `pure` through the host (granted in its `Grants`).
//! - `pure` is not granted `legacy`: that call is refused with a permission error.

use std::path::Path;
use std::time::{Duration, Instant};

use actix::prelude::*;
use troupe::bridge::env::EnvProgress;
use troupe::bridge::extension::ExtensionConfig;
use troupe::extension_host::{ExtensionHost, Grants};
use troupe::singleton::KeyValue;
use troupe::supervision::SupervisorStatus;
use troupe::{ActorBuilder, Array, Call, CallResult, Registry, Value};

fn progress(extension: &str, step: EnvProgress) {
    if let Some(line) = step.summary() {
        println!("  [{extension}] {line}");
    }
}

fn main() {
    if let Err(e) = troupe::telemetry::init() {
        eprintln!("logging stays off: {e}");
    }
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins");
    actix::System::new().block_on(async move {
        let registry = Registry::new();
        // troupe's key-value singleton (`put`, `get`, `incr`, `items`, ...).
        let kv = ActorBuilder::new("kv").spawn(KeyValue::default());
        registry
            .register_callable("kv", kv.clone())
            .expect("kv registered");

        println!("preparing three extensions:");
        let began = Instant::now();
        let host = ExtensionHost::builder()
            .singletons(registry)
            .on_progress(progress)
            .extension(
                ExtensionConfig::new("legacy", "legacy_stats")
                    .path(&plugins)
                    .dependencies(["numpy==1.26.4"]),
                Grants::host_only().singletons(["kv"]),
            )
            .extension(
                ExtensionConfig::new("modern", "modern_stats")
                    .path(&plugins)
                    .dependencies(["numpy>=2,<3"]),
                Grants::host_only().singletons(["kv"]).extensions(["pure"]),
            )
            .extension(
                ExtensionConfig::new("pure", "pure_text").path(&plugins),
                Grants::host_only().singletons(["kv"]),
            )
            .start()
            .await;
        for (name, error) in host.failed() {
            println!("  [{name}] NOT started: {error}");
        }
        for (name, status) in host.ready().await {
            let pid = host.extension(&name).and_then(|ext| ext.pid());
            match (status, pid) {
                (SupervisorStatus::Running { .. }, Some(pid)) => {
                    println!("  [{name}] running, pid {pid}")
                }
                (other, _) => println!("  [{name}] not running: {other:?}"),
            }
        }
        println!("all up in {:.2} s\n", began.elapsed().as_secs_f64());

        println!("what each extension sees:");
        for ext in host.extensions() {
            match ext.call("describe", vec![]).await {
                Ok(Value::Map(seen)) => println!(
                    "  {:<7} python {}  numpy {}",
                    ext.name(),
                    seen.get("python").and_then(Value::as_str).unwrap_or("?"),
                    seen.get("numpy").and_then(Value::as_str).unwrap_or("?")
                ),
                other => println!("  {:<7} {other:?}", ext.name()),
            }
        }

        let matrix = Array::from_slice(&[4.0f64, 3.0, 6.0, 3.0], vec![2, 2]).expect("2x2");
        println!("\ncomputing with the matrix [[4, 3], [6, 3]]:");
        if let Some(legacy) = host.extension("legacy") {
            let det = legacy
                .call("determinant", vec![Value::Array(matrix.clone())])
                .await;
            println!("  legacy (numpy 1.26) determinant -> {}", show(&det));
            let samples = Array::from_vec(vec![0.5f32, -2.0, 1.0, 0.25]);
            let normalized = legacy.call("normalize", vec![Value::Array(samples)]).await;
            println!(
                "  legacy normalize [0.5, -2, 1, 0.25] -> {}",
                show(&normalized)
            );
        }
        if let Some(modern) = host.extension("modern") {
            let norms = modern
                .call("row_norms", vec![Value::Array(matrix.clone())])
                .await;
            println!(
                "  modern (numpy 2.x, linalg.vecdot) row norms -> {}",
                show(&norms)
            );
            let values = Array::from_vec(vec![1.0f64, 4.0, 9.0, 16.0, 25.0]);
            let summary = modern.call("summary", vec![Value::Array(values)]).await;
            println!(
                "  modern asked pure, through the host -> {}",
                show(&summary)
            );
        }
        if let Some(pure) = host.extension("pure") {
            let refused = pure
                .call("describe_values", vec![Value::from("not a list")])
                .await;
            println!("  pure with a bad argument -> {}", show(&refused));
            let forbidden = pure.call("try_legacy", vec![]).await;
            println!(
                "  pure calling legacy (not granted) -> {}",
                show(&forbidden)
            );
        }

        println!("\nthe Rust kv singleton now holds:");
        if let Ok(Value::Map(entries)) = kv.call(Call::new("items", vec![])).await {
            for (key, value) in entries {
                println!("  {key} = {}", show(&Ok(value)));
            }
        }

        let stopping = Instant::now();
        tokio::time::timeout(Duration::from_secs(30), host.shutdown())
            .await
            .expect("extensions stop");
        println!(
            "\nstopped all extensions in {:.0} ms",
            stopping.elapsed().as_secs_f64() * 1e3
        );
        System::current().stop();
    });
}

fn show(result: &CallResult) -> String {
    match result {
        Ok(Value::Array(array)) => match array.to_vec::<f64>() {
            Some(values) => format!("{values:?}"),
            None => match array.to_vec::<f32>() {
                Some(values) => format!("{values:?}"),
                None => format!("{array:?}"),
            },
        },
        Ok(Value::Float(x)) => format!("{x:.3}"),
        Ok(Value::Int(n)) => n.to_string(),
        Ok(Value::Str(s)) => s.clone(),
        Ok(Value::List(items)) => {
            let items: Vec<String> = items.iter().map(|v| show(&Ok(v.clone()))).collect();
            format!("[{}]", items.join(", "))
        }
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("error: {e}"),
    }
}
