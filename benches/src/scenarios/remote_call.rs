//! `remote-call`: a troupe remote call beside a raw Zenoh query of the same bytes, in the
//! same run: one in flight (latency), then 100 (throughput).
//!
//! `troupe-remote` calls an echo actor through the `Caller` a `troupe_cluster::RemoteHost`
//! gives, served by a `troupe_cluster::Server` in this process over loopback TCP: the call
//! frame (a 64-byte `Value::Bytes`), the actor hop on each side, the cluster runtime's task
//! hand-offs, the reply frame. `zenoh-raw` sends the very bytes of that call frame as a
//! query from a client session to a peer session whose queryable replies with them from its
//! callback: the floor troupe's remote call stands on. `tcp-raw` sends the same bytes over a
//! plain loopback TCP connection to a thread that writes them back (the floor under zenoh).
//! The three alternate in rounds so that machine noise hits them alike; troupe's row
//! carries `ratio_to_zenoh_raw`. The 100-in-flight
//! rows carry `calls_per_s`, troupe's also `throughput_vs_zenoh_raw`.
//!
//! The pipeline-edge rows run a pipeline `count -> echo -> end` whose `echo` is a python
//! node (`PythonNode`, [`EDGE_CONCURRENCY`] calls in flight) on the same echo actor, once
//! through the remote caller (`troupe-remote-edge`: every item crosses the link and back)
//! and once through the local one (`troupe-local-edge`): `items_per_s`, and the remote
//! edge's throughput over the raw query's at 100 in flight (`throughput_vs_zenoh_raw`) and
//! over the local edge's (`vs_local`). A median is of the per-item time of whole runs.
//!
//! The node-edge rows run `count -> pass`, `pass` a built-in `data.passthrough` node: once
//! served by the same host and reached through a `RemoteNode` (`troupe-remote-node-edge`:
//! the items cross in numbered batches, a window of them in flight), once here
//! (`troupe-local-node-edge`); the same two ratios.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix::System;
use indexmap::IndexMap;
use troupe_cluster::edge::RemoteNode;
use troupe_cluster::{HostSpec, Limits, ListenSpec, RemoteHost, Server};
use troupe_manifest::ServedNode;
use troupe_nodes::Node;
use troupe_runtime::{ActorBuilder, Call, Caller, Value};
use troupe_value::{Buffer, Map};
use zenoh::Wait;

use super::call_roundtrip::TroupeEcho;
use super::{through_node, through_python_node};
use crate::{BenchError, Effort, Measurement};

const SCENARIO: &str = "remote-call";
const PAYLOAD: usize = 64;
/// Calls in flight in the throughput rows.
const IN_FLIGHT: usize = 100;
/// Calls in flight of the pipeline-edge rows' python node.
const EDGE_CONCURRENCY: usize = 100;

fn failed(reason: impl ToString) -> BenchError {
    BenchError::Scenario {
        scenario: SCENARIO,
        reason: reason.to_string(),
    }
}

fn free_port() -> Result<u16, BenchError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(failed)
}

/// The raw pair: a peer session answering `bench/echo` from its callback, and a client
/// session of it, explicit endpoints only (as troupe's).
struct RawPair {
    runtime: tokio::runtime::Runtime,
    client: Option<zenoh::Session>,
    peer: Option<zenoh::Session>,
    _queryable: Option<zenoh::query::Queryable<()>>,
}

impl RawPair {
    fn start() -> Result<RawPair, BenchError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(failed)?;
        let endpoint = format!("tcp/127.0.0.1:{}", free_port()?);
        let (peer, client, queryable) = runtime.block_on(async {
            let peer = zenoh::open(config("peer", "listen/endpoints", &endpoint)?)
                .await
                .map_err(failed)?;
            let queryable = peer
                .declare_queryable("bench/echo")
                .callback(|query| {
                    let bytes = query.payload().map(|p| p.to_bytes().into_owned());
                    let _ = query
                        .reply(query.key_expr().clone(), bytes.unwrap_or_default())
                        .wait();
                })
                .await
                .map_err(failed)?;
            let client = zenoh::open(config("client", "connect/endpoints", &endpoint)?)
                .await
                .map_err(failed)?;
            Ok::<_, BenchError>((peer, client, queryable))
        })?;
        Ok(RawPair {
            runtime,
            client: Some(client),
            peer: Some(peer),
            _queryable: Some(queryable),
        })
    }

    /// Times `n` queries of `frame` after `warmup` untimed ones.
    fn time(&self, frame: &[u8], warmup: usize, n: usize) -> Result<Vec<u64>, BenchError> {
        let client = self.client.clone().ok_or_else(|| failed("no client"))?;
        self.runtime
            .block_on(raw_loop(client, frame.to_vec(), warmup, n))
    }

    /// [`IN_FLIGHT`] loops of `per_loop` queries each at once: every query's time, and the
    /// whole run's.
    fn time_many(&self, frame: &[u8], per_loop: usize) -> Result<(Vec<u64>, Duration), BenchError> {
        let client = self.client.clone().ok_or_else(|| failed("no client"))?;
        self.runtime.block_on(async move {
            let start = Instant::now();
            let loops: Vec<_> = (0..IN_FLIGHT)
                .map(|_| tokio::spawn(raw_loop(client.clone(), frame.to_vec(), 0, per_loop)))
                .collect();
            let mut samples = Vec::with_capacity(IN_FLIGHT * per_loop);
            for one in loops {
                samples.extend(one.await.map_err(failed)??);
            }
            drop(client);
            Ok((samples, start.elapsed()))
        })
    }
}

/// A loopback TCP echo: a thread writing back every frame it reads (length-prefixed).
struct TcpEcho {
    client: std::net::TcpStream,
}

impl TcpEcho {
    fn start() -> Result<TcpEcho, BenchError> {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").map_err(failed)?;
        let address = listener.local_addr().map_err(failed)?;
        std::thread::Builder::new()
            .name("tcp-echo".into())
            .spawn(move || {
                let Ok((mut peer, _)) = listener.accept() else {
                    return;
                };
                let _ = peer.set_nodelay(true);
                let mut buffer = Vec::new();
                loop {
                    let mut len = [0u8; 4];
                    if peer.read_exact(&mut len).is_err() {
                        return;
                    }
                    buffer.resize(u32::from_le_bytes(len) as usize, 0);
                    if peer.read_exact(&mut buffer).is_err()
                        || peer.write_all(&len).is_err()
                        || peer.write_all(&buffer).is_err()
                    {
                        return;
                    }
                }
            })
            .map_err(failed)?;
        let client = std::net::TcpStream::connect(address).map_err(failed)?;
        client.set_nodelay(true).map_err(failed)?;
        Ok(TcpEcho { client })
    }

    /// Times `n` round trips of `frame` after `warmup` untimed ones.
    fn time(&mut self, frame: &[u8], warmup: usize, n: usize) -> Result<Vec<u64>, BenchError> {
        use std::io::{Read, Write};
        let len = u32::try_from(frame.len()).map_err(failed)?.to_le_bytes();
        let mut back = vec![0u8; frame.len()];
        let mut samples = Vec::with_capacity(n);
        for i in 0..warmup + n {
            let start = Instant::now();
            self.client.write_all(&len).map_err(failed)?;
            self.client.write_all(frame).map_err(failed)?;
            let mut echoed = [0u8; 4];
            self.client.read_exact(&mut echoed).map_err(failed)?;
            self.client.read_exact(&mut back).map_err(failed)?;
            if i >= warmup {
                samples.push(start.elapsed().as_nanos() as u64);
            }
        }
        if back != frame {
            return Err(failed("the TCP echo did not answer in kind"));
        }
        Ok(samples)
    }
}

/// `warmup` untimed then `n` timed queries of `frame`, one at a time.
async fn raw_loop(
    client: zenoh::Session,
    frame: Vec<u8>,
    warmup: usize,
    n: usize,
) -> Result<Vec<u64>, BenchError> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let start = Instant::now();
        let replies = client
            .get("bench/echo")
            .payload(frame.clone())
            .consolidation(zenoh::query::ConsolidationMode::None)
            .timeout(Duration::from_secs(5))
            .await
            .map_err(failed)?;
        let reply = replies.recv_async().await.map_err(failed)?;
        let ok = reply
            .result()
            .is_ok_and(|s| s.payload().len() == frame.len());
        if !ok {
            return Err(failed("the raw echo did not answer in kind"));
        }
        if i >= warmup {
            samples.push(start.elapsed().as_nanos() as u64);
        }
    }
    Ok(samples)
}

impl Drop for RawPair {
    fn drop(&mut self) {
        // zenoh objects close on a multi-thread runtime, never on actix's.
        let (client, peer, queryable) =
            (self.client.take(), self.peer.take(), self._queryable.take());
        self.runtime.block_on(async move {
            drop(queryable);
            drop(client);
            drop(peer);
        });
    }
}

fn config(mode: &str, key: &str, endpoint: &str) -> Result<zenoh::Config, BenchError> {
    let mut config = zenoh::Config::default();
    for (k, v) in [
        ("mode", format!("{mode:?}")),
        ("scouting/multicast/enabled", "false".to_owned()),
        ("scouting/gossip/enabled", "false".to_owned()),
        (key, format!("[{endpoint:?}]")),
    ] {
        config.insert_json5(k, &v).map_err(failed)?;
    }
    Ok(config)
}

async fn time_troupe(caller: &Caller, payload: &Buffer, warmup: usize, n: usize) -> Vec<u64> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let start = Instant::now();
        let reply = caller
            .call(Call::new("echo", vec![Value::Bytes(payload.clone())]))
            .await;
        debug_assert!(matches!(reply, Ok(Value::Bytes(_))));
        if i >= warmup {
            samples.push(start.elapsed().as_nanos() as u64);
        }
    }
    samples
}

/// [`IN_FLIGHT`] callers of `per_loop` calls each at once: every call's time, and the
/// whole run's.
async fn time_troupe_many(
    caller: &Caller,
    payload: &Buffer,
    per_loop: usize,
) -> (Vec<u64>, Duration) {
    let start = Instant::now();
    let loops: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (caller, payload) = (caller.clone(), payload.clone());
            actix::spawn(async move { time_troupe(&caller, &payload, 0, per_loop).await })
        })
        .collect();
    let mut samples = Vec::with_capacity(IN_FLIGHT * per_loop);
    for one in loops {
        samples.extend(one.await.unwrap_or_default());
    }
    (samples, start.elapsed())
}

/// Runs `count -> py` of `items` items, `py` a python node calling `echo` of `caller` with
/// [`EDGE_CONCURRENCY`] calls in flight: the time per item.
async fn time_edge(caller: &Caller, items: usize) -> Result<u64, BenchError> {
    let start = Instant::now();
    through_python_node(caller.clone(), "echo", items, EDGE_CONCURRENCY)
        .await
        .map_err(failed)?;
    Ok((start.elapsed().as_nanos() / items.max(1) as u128) as u64)
}

/// The built-in node the node-edge rows pass items through.
const PASS: &str = "data.passthrough";

/// Runs `count -> pass` of `items` items through the node `make` gives: the time per item.
async fn time_node_edge(
    make: &dyn Fn() -> Result<Box<dyn Node>, BenchError>,
    items: usize,
) -> Result<u64, BenchError> {
    let node = make()?;
    let start = Instant::now();
    through_node(node, items).await.map_err(failed)?;
    Ok((start.elapsed().as_nanos() / items.max(1) as u128) as u64)
}

/// A pipeline-edge row of `samples` (time per item of whole runs), with `items_per_s`.
fn edge_row(system: &str, samples: &mut [u64]) -> Measurement {
    let row = Measurement::from_samples(SCENARIO, system, 8, EDGE_CONCURRENCY as u64, samples);
    let per_s = items_per_s(&row);
    row.with("items_per_s", per_s)
}

/// A local edge's row and a remote one's, the remote one with its throughput over the raw
/// query's at 100 in flight (`raw_cps`) and over the local edge's.
fn edge_rows(
    (local, local_samples): (&str, &mut [u64]),
    (remote, remote_samples): (&str, &mut [u64]),
    raw_cps: f64,
) -> (Measurement, Measurement) {
    let local_row = edge_row(local, local_samples);
    let local_per_s = items_per_s(&local_row);
    let remote_row = edge_row(remote, remote_samples);
    let remote_per_s = items_per_s(&remote_row);
    let remote_row = remote_row
        .with(
            "throughput_vs_zenoh_raw",
            (remote_per_s / raw_cps.max(1.0) * 100.0).round() / 100.0,
        )
        .with(
            "vs_local",
            (remote_per_s / local_per_s.max(1.0) * 1000.0).round() / 1000.0,
        );
    (local_row, remote_row)
}

/// Items per second of a row whose samples are the time per item.
fn items_per_s(row: &Measurement) -> f64 {
    (1e9 / row.median_ns.max(1) as f64).round()
}

fn calls_per_s(calls: usize, took: Duration) -> f64 {
    (calls as f64 / took.as_secs_f64()).round()
}

/// Runs the scenario: one call in flight (latency), then [`IN_FLIGHT`] (throughput, rows
/// with `calls_per_s`; troupe's with `throughput_vs_zenoh_raw`).
pub(super) fn run(effort: Effort) -> Result<Vec<Measurement>, BenchError> {
    let n = effort.pick(2_000, 20_000);
    let rounds = 10;
    let payload = Buffer::from(vec![0xA5; PAYLOAD]);
    // The bytes troupe's frame has for this call (its deadline field included).
    let frame = troupe_cluster::frame::encode_call(
        1,
        "echo",
        &[Value::Bytes(payload.clone())],
        &Map::new(),
        troupe_cluster::frame::CallOptions {
            caller: "0123456789abcdef0123456789abcdef",
            deadline: Some(troupe_cluster::DEFAULT_CALL_TIMEOUT),
            window: None,
        },
    )
    .map_err(failed)?;
    let raw_pair = RawPair::start()?;
    let mut tcp = TcpEcho::start()?;
    let system = System::new();
    let port = free_port()?;
    let endpoint: troupe_cluster::Endpoint =
        format!("tcp/127.0.0.1:{port}").parse().map_err(failed)?;
    let (server, host, caller, local) = system.block_on(async {
        let local = ActorBuilder::new("echo").spawn(TroupeEcho).caller();
        let mut extensions = IndexMap::new();
        extensions.insert("echo".to_owned(), local.clone());
        let listen = ListenSpec::new("bench", vec![endpoint.clone()]);
        let pass = ServedNode {
            pipeline: "bench".into(),
            node: "pass".into(),
            type_name: PASS,
            params: Map::new(),
        };
        let server = Server::start(listen, extensions, vec![pass], Limits::default(), None)
            .await
            .map_err(failed)?;
        let host = RemoteHost::connect(HostSpec::new("bench", vec![endpoint]))
            .await
            .map_err(failed)?;
        let caller = host.extension("echo").map_err(failed)?;
        Ok::<_, BenchError>((server, host, caller, local))
    })?;
    let pass_caller = system
        .block_on(async { host.node("bench", "pass") })
        .map_err(failed)?;
    let remote_pass = || -> Result<Box<dyn Node>, BenchError> {
        Ok(Box::new(RemoteNode::new(
            pass_caller.clone(),
            "bench/pass".into(),
            "bench".into(),
            PASS,
        )))
    };
    let local_pass = || -> Result<Box<dyn Node>, BenchError> {
        match troupe_nodes::catalog::build(PASS, Map::new()).map_err(failed)? {
            troupe_nodes::catalog::Built::Node(node) => Ok(node),
            troupe_nodes::catalog::Built::Source(_) => Err(failed("a source")),
        }
    };
    let (mut raw, mut troupe) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut tcp_samples = Vec::with_capacity(n);
    for _ in 0..rounds {
        tcp_samples.extend(tcp.time(&frame, n / rounds / 10, n / rounds)?);
        raw.extend(raw_pair.time(&frame, n / rounds / 10, n / rounds)?);
        troupe.extend(system.block_on(time_troupe(&caller, &payload, n / rounds / 10, n / rounds)));
    }
    let per_loop = n / IN_FLIGHT;
    let (mut raw_many, raw_took) = raw_pair.time_many(&frame, per_loop)?;
    let (mut troupe_many, troupe_took) =
        system.block_on(time_troupe_many(&caller, &payload, per_loop));
    let edge_items = effort.pick(2_000, 20_000);
    let (mut remote_edge, mut local_edge) = (Vec::new(), Vec::new());
    let (mut remote_node_edge, mut local_node_edge) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        remote_edge.push(system.block_on(time_edge(&caller, edge_items))?);
        local_edge.push(system.block_on(time_edge(&local, edge_items))?);
        remote_node_edge.push(system.block_on(time_node_edge(&remote_pass, edge_items))?);
        local_node_edge.push(system.block_on(time_node_edge(&local_pass, edge_items))?);
    }
    drop((caller, local, pass_caller, host, server));
    drop(raw_pair);
    let raw_cps = calls_per_s(raw_many.len(), raw_took);
    let troupe_cps = calls_per_s(troupe_many.len(), troupe_took);
    let raw_many_row = Measurement::from_samples(
        SCENARIO,
        "zenoh-raw",
        frame.len() as u64,
        IN_FLIGHT as u64,
        &mut raw_many,
    )
    .with("calls_per_s", raw_cps);
    let troupe_many_row = Measurement::from_samples(
        SCENARIO,
        "troupe-remote",
        PAYLOAD as u64,
        IN_FLIGHT as u64,
        &mut troupe_many,
    )
    .with("calls_per_s", troupe_cps)
    .with(
        "throughput_vs_zenoh_raw",
        (troupe_cps / raw_cps.max(1.0) * 100.0).round() / 100.0,
    );
    let raw_row = Measurement::from_samples(SCENARIO, "zenoh-raw", frame.len() as u64, 1, &mut raw)
        .with("payload", "the call frame's bytes");
    let troupe_row =
        Measurement::from_samples(SCENARIO, "troupe-remote", PAYLOAD as u64, 1, &mut troupe)
            .with_ratio("ratio_to_zenoh_raw", raw_row.median_ns, 2);
    let (local_edge_row, remote_edge_row) = edge_rows(
        ("troupe-local-edge", &mut local_edge),
        ("troupe-remote-edge", &mut remote_edge),
        raw_cps,
    );
    let (local_node_row, remote_node_row) = edge_rows(
        ("troupe-local-node-edge", &mut local_node_edge),
        ("troupe-remote-node-edge", &mut remote_node_edge),
        raw_cps,
    );
    let tcp_row =
        Measurement::from_samples(SCENARIO, "tcp-raw", frame.len() as u64, 1, &mut tcp_samples)
            .with("payload", "the call frame's bytes");
    let troupe_row = troupe_row.with_ratio("ratio_to_tcp_raw", tcp_row.median_ns, 2);
    Ok(vec![
        tcp_row,
        raw_row,
        troupe_row,
        raw_many_row,
        troupe_many_row,
        local_edge_row,
        remote_edge_row,
        local_node_row,
        remote_node_row,
    ])
}
