//! `remote-call`: a troupe remote call beside a raw Zenoh query of the same bytes, one in
//! flight, in the same run.
//!
//! `troupe-remote` calls an echo actor through the `Caller` a `troupe_cluster::RemoteHost`
//! gives, served by a `troupe_cluster::Server` in this process over loopback TCP: the call
//! frame (a 64-byte `Value::Bytes`), the actor hop on each side, the cluster runtime's task
//! hand-offs, the reply frame. `zenoh-raw` sends the very bytes of that call frame as a
//! query from a client session to a peer session whose queryable replies with them from its
//! callback: the floor troupe's remote call stands on. The two alternate in rounds so that
//! machine noise hits both alike; troupe's row carries `ratio_to_zenoh_raw`.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix::System;
use indexmap::IndexMap;
use troupe_cluster::{HostSpec, Limits, ListenSpec, RemoteHost, Server};
use troupe_runtime::{ActorBuilder, Call, Caller, Value};
use troupe_value::{Buffer, Map};
use zenoh::Wait;

use super::call_roundtrip::TroupeEcho;
use crate::{BenchError, Effort, Measurement};

const SCENARIO: &str = "remote-call";
const PAYLOAD: usize = 64;

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
        let client = self.client.as_ref().ok_or_else(|| failed("no client"))?;
        self.runtime.block_on(async {
            let mut samples = Vec::with_capacity(n);
            for i in 0..warmup + n {
                let start = Instant::now();
                let replies = client
                    .get("bench/echo")
                    .payload(frame.to_vec())
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
        })
    }
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

/// Runs the scenario.
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
        Some(troupe_cluster::DEFAULT_CALL_TIMEOUT),
    )
    .map_err(failed)?;
    let raw_pair = RawPair::start()?;
    let system = System::new();
    let port = free_port()?;
    let endpoint: troupe_cluster::Endpoint =
        format!("tcp/127.0.0.1:{port}").parse().map_err(failed)?;
    let (server, host, caller) = system.block_on(async {
        let mut extensions = IndexMap::new();
        extensions.insert(
            "echo".to_owned(),
            ActorBuilder::new("echo").spawn(TroupeEcho).caller(),
        );
        let listen = ListenSpec {
            name: "bench".into(),
            listen: vec![endpoint.clone()],
            users: None,
        };
        let server = Server::start(listen, extensions, Limits::default())
            .await
            .map_err(failed)?;
        let host = RemoteHost::connect(HostSpec::new("bench", vec![endpoint]))
            .await
            .map_err(failed)?;
        let caller = host.extension("echo").map_err(failed)?;
        Ok::<_, BenchError>((server, host, caller))
    })?;
    let (mut raw, mut troupe) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..rounds {
        raw.extend(raw_pair.time(&frame, n / rounds / 10, n / rounds)?);
        troupe.extend(system.block_on(time_troupe(&caller, &payload, n / rounds / 10, n / rounds)));
    }
    drop((caller, host, server));
    drop(raw_pair);
    let raw_row = Measurement::from_samples(SCENARIO, "zenoh-raw", frame.len() as u64, 1, &mut raw)
        .with("payload", "the call frame's bytes");
    let troupe_row =
        Measurement::from_samples(SCENARIO, "troupe-remote", PAYLOAD as u64, 1, &mut troupe)
            .with_ratio("ratio_to_zenoh_raw", raw_row.median_ns, 2);
    Ok(vec![raw_row, troupe_row])
}
