//! `call-roundtrip`: one call, one reply, nothing else in flight.
//!
//! `troupe-local` sends a dynamic [`Call`] carrying the payload as [`Value::Bytes`] through
//! a troupe [`Caller`] (bounded mailbox, priority lane, tracing span) to an actor that
//! returns it; `actix-raw` sends the same bytes with actix's own `Addr::send` to an actor that
//! returns them. Both run with the actor on the caller's arbiter and on another arbiter.
//!
//! Then the cross-process systems, each in its own child process: `uds-floor` and
//! `ipc-floor` echo 64- and 4096-byte frames (the floor any bridge pays), and pyisolate
//! answers a no-op call (payload 0) and echoes `bytes` of both sizes through its
//! documented API. `python-floor` times the same no-op call as `troupe-bridged` as raw frames
//! between one host thread and troupe's Python child (no actor, mailbox or reader thread):
//! what the Python side alone adds to `ipc-floor`. Their rows carry `ratio_to_ipc_floor`.

use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes_payload::Payload;
use serde_json::json;
use troupe_runtime::{ActorBuilder, Call, CallResult, Caller, Value};

use crate::systems::bridged::{Job, Lab, raw};
use crate::systems::floor::{self, Link};
use crate::systems::{CrossProcess, Outcome, Series, TROUPE_BRIDGED, pyisolate, python_host};
use crate::{Effort, Measurement};

const SCENARIO: &str = "call-roundtrip";
const PAYLOADS: [usize; 2] = [64, 4096];

mod bytes_payload {
    use troupe_value::Buffer;

    /// The payload a raw actix message carries: the same buffer type troupe's values use.
    pub(super) struct Payload(pub(super) Buffer);

    impl actix::Message for Payload {
        type Result = Buffer;
    }
}

struct RawEcho;

impl Actor for RawEcho {
    type Context = Context<Self>;
}

impl Handler<Payload> for RawEcho {
    type Result = MessageResult<Payload>;
    fn handle(&mut self, Payload(bytes): Payload, _: &mut Context<Self>) -> Self::Result {
        MessageResult(bytes)
    }
}

/// Answers `echo(x)` with `x` (also served across hosts by `remote-call`).
pub(super) struct TroupeEcho;

impl Actor for TroupeEcho {
    type Context = Context<Self>;
}

impl Handler<Call> for TroupeEcho {
    type Result = CallResult;
    fn handle(&mut self, mut call: Call, _: &mut Context<Self>) -> CallResult {
        match call.method() {
            "echo" if !call.args.is_empty() => Ok(call.args.swap_remove(0)),
            _ => Err(call.unknown_method()),
        }
    }
}

#[derive(Clone, Copy)]
enum Placement {
    Same,
    Cross,
}

impl Placement {
    fn name(self) -> &'static str {
        match self {
            Placement::Same => "same-arbiter",
            Placement::Cross => "cross-arbiter",
        }
    }
}

/// Times `n` sequential round trips after `warmup` untimed ones.
async fn time_loop<F, Fut>(warmup: usize, n: usize, mut round_trip: F) -> Vec<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..warmup {
        round_trip().await;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        round_trip().await;
        samples.push(start.elapsed().as_nanos() as u64);
    }
    samples
}

async fn time_raw(
    addr: &Addr<RawEcho>,
    payload: &troupe_value::Buffer,
    warmup: usize,
    n: usize,
) -> Vec<u64> {
    time_loop(warmup, n, || async {
        let reply = addr
            .send(Payload(payload.clone()))
            .await
            .expect("raw echo answers");
        debug_assert_eq!(reply.len(), payload.len());
    })
    .await
}

async fn time_troupe(
    caller: &Caller,
    payload: &troupe_value::Buffer,
    warmup: usize,
    n: usize,
) -> Vec<u64> {
    time_loop(warmup, n, || async {
        let reply = caller
            .call(Call::new("echo", vec![Value::Bytes(payload.clone())]))
            .await;
        debug_assert!(matches!(reply, Ok(Value::Bytes(_))));
    })
    .await
}

/// Runs the scenario; rows carry `placement`, and troupe's rows `ratio_to_actix_raw`.
pub(super) fn run(effort: Effort) -> Vec<Measurement> {
    let n = effort.pick(20_000, 200_000);
    let warmup = n / 10;
    let mut rows = Vec::new();
    for payload_bytes in PAYLOADS {
        let payload = troupe_value::Buffer::from(vec![0xA5; payload_bytes]);
        for placement in [Placement::Same, Placement::Cross] {
            let system = System::new();
            let (mut raw, mut troupe) = system.block_on(async {
                let arbiter = Arbiter::new();
                let (raw_addr, caller) = match placement {
                    Placement::Same => (
                        RawEcho.start(),
                        ActorBuilder::new("echo").spawn(TroupeEcho).caller(),
                    ),
                    Placement::Cross => (
                        RawEcho::start_in_arbiter(&arbiter.handle(), |_| RawEcho),
                        ActorBuilder::new("echo")
                            .spawn_on(&arbiter.handle(), TroupeEcho)
                            .caller(),
                    ),
                };
                // Interleave the two systems in rounds so that machine noise hits both alike.
                let (mut raw, mut troupe) = (Vec::with_capacity(n), Vec::with_capacity(n));
                let rounds = 10;
                for _ in 0..rounds {
                    raw.extend(time_raw(&raw_addr, &payload, warmup / rounds, n / rounds).await);
                    troupe
                        .extend(time_troupe(&caller, &payload, warmup / rounds, n / rounds).await);
                }
                arbiter.stop();
                (raw, troupe)
            });
            let raw_row =
                Measurement::from_samples(SCENARIO, "actix-raw", payload_bytes as u64, 1, &mut raw)
                    .with("placement", placement.name());
            let troupe_row = Measurement::from_samples(
                SCENARIO,
                "troupe-local",
                payload_bytes as u64,
                1,
                &mut troupe,
            )
            .with("placement", placement.name())
            .with_ratio("ratio_to_actix_raw", raw_row.median_ns, 2);
            rows.push(raw_row);
            rows.push(troupe_row);
        }
    }
    rows.extend(CrossProcessRoundTrip::run(effort));
    rows
}

/// The cross-process systems of the scenario.
struct CrossProcessRoundTrip;

impl CrossProcess for CrossProcessRoundTrip {
    const SCENARIO: &'static str = SCENARIO;

    fn floor<L: Link>(effort: Effort) -> Outcome {
        let n = effort.pick(5_000, 50_000);
        PAYLOADS
            .iter()
            .map(|&bytes| {
                let sampler = floor::sequential::<L>(bytes, 1, n / 10)?;
                Ok(Series::new(L::SYSTEM, bytes, 1, n, sampler))
            })
            .collect()
    }

    /// The slot for troupe's bridged extension host: a no-op Python method (payload 0)
    /// and an echo of `bytes` at each of [`PAYLOADS`], one series each (a sample per
    /// call), with the extra `call` set to `noop` or `echo` as pyisolate's rows have it.
    fn troupe_bridged(effort: Effort) -> Outcome {
        let n = effort.pick(3_000, 30_000);
        let lab = Lab::start()?;
        lab.sample(Job::Call { payload: 0 }, n / 10)?;
        let noop = Series::new(
            TROUPE_BRIDGED,
            0,
            1,
            n,
            lab.sampler(Job::Call { payload: 0 }),
        );
        let mut rows = vec![noop.with("call", "noop")];
        match raw::noop_sampler(lab.plugins(), n / 10) {
            Ok(sampler) => {
                rows.push(Series::new(raw::SYSTEM, 0, 1, n, sampler).with("call", "noop"))
            }
            Err(e) => tracing::warn!(error = %e, "no python-floor row"),
        }
        for bytes in PAYLOADS {
            let echo = lab.sampler(Job::Call { payload: bytes });
            rows.push(Series::new(TROUPE_BRIDGED, bytes, 1, n, echo).with("call", "echo"));
        }
        Ok(rows)
    }

    fn pyisolate(effort: Effort) -> Outcome {
        let n = effort.pick(300, 3_000);
        let params = json!({ "n": n, "warmup": n / 10, "payloads": PAYLOADS });
        pyisolate::measure(SCENARIO, params, Duration::from_secs(300))
    }

    /// Blocking calls from a Python program's main thread through `troupe.Host`, as many
    /// as `troupe-bridged` makes.
    fn troupe_python_host(effort: Effort) -> Option<Outcome> {
        let n = effort.pick(3_000, 30_000);
        let params = json!({ "n": n, "warmup": n / 10, "payloads": PAYLOADS });
        Some(python_host::measure(
            SCENARIO,
            params,
            Duration::from_secs(300),
        ))
    }
}
