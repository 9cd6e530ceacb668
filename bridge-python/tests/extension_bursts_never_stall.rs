//! The bridge under load never stalls: bursts of 1,000 and 5,000 concurrent calls, each from
//! its own task, to `def` and `async def` methods, with 0 B, 16 KiB and 1 MiB arguments, 30
//! rounds each, every round under a watchdog; and a child that stops reading altogether
//! (busy, or stopped by SIGSTOP): every call still ends at its deadline, and the arbiter the
//! extension lives on keeps serving its other actors meanwhile.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{plugins, venv};
use troupe_bridge_python::extension::{self, ExtensionConfig, ExtensionRef, NoRoutes};
use troupe_runtime::{ActorBuilder, Call, Caller};
use troupe_shm::pool::Pool;
use troupe_value::{Array, Buffer, CallError, DType, Value};

/// Rounds per burst size and payload.
const ROUNDS: usize = 30;
/// A round that takes longer than this has stalled.
const WATCHDOG: Duration = Duration::from_secs(5);

async fn start(
    name: &str,
    config: impl FnOnce(ExtensionConfig) -> ExtensionConfig,
) -> ExtensionRef {
    // numpy, for the array payload.
    let venv = actix_rt::task::spawn_blocking(|| venv(&["numpy>=2,<3"]))
        .await
        .unwrap();
    let config = config(ExtensionConfig::new(name, "bursts").path(plugins()));
    let ext = extension::start(config, venv, Arc::new(NoRoutes));
    let status = ext.ready_within(Duration::from_secs(60)).await;
    assert!(status.is_ok(), "{status:?}");
    ext
}

/// The payloads of each round: none, 16 KiB of bytes (travels inline, copied), a 1 MiB
/// array (a slot of the host's pool: travels as a descriptor, and reaches Python as a
/// read-only numpy view of the same memory).
fn payloads() -> Vec<(&'static str, Value)> {
    let array = Array::from_vec(vec![7u8; 1 << 20]);
    let pooled = Pool::global()
        .copy_from_slice(array.data().as_slice())
        .unwrap();
    let array = Array::new(DType::U8, vec![1 << 20], Buffer::from(pooled)).unwrap();
    vec![
        ("0 B", Value::Null),
        ("16 KiB", Value::Bytes(Buffer::from(vec![3u8; 16 << 10]))),
        ("1 MiB", Value::Array(array)),
    ]
}

/// `n` concurrent calls of `method(i, payload)`, each from its own task; every one must
/// answer `i`, and the whole burst within the watchdog.
async fn burst(ext: &ExtensionRef, method: &'static str, n: usize, payload: &Value) {
    let caller = ext.caller();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let caller = caller.clone();
            let payload = payload.clone();
            actix_rt::spawn(async move {
                caller
                    .call(Call::new(method, vec![Value::Int(i as i64), payload]))
                    .await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), Ok(Value::Int(i as i64)), "call {i}");
    }
}

fn bursts_of(method: &'static str, n: usize) {
    actix::System::new().block_on(async {
        let ext = start(&format!("{method}-{n}"), |c| c).await;
        for (size, payload) in payloads() {
            let began = Instant::now();
            for round in 0..ROUNDS {
                let round_began = Instant::now();
                if tokio::time::timeout(WATCHDOG, burst(&ext, method, n, &payload))
                    .await
                    .is_err()
                {
                    panic!(
                        "round {round} of {n} {method} calls with {size} stalled for {WATCHDOG:?} \
                         ({:?} in flight, {:?})",
                        ext.call_counts(),
                        ext.status()
                    );
                }
                assert!(round_began.elapsed() < WATCHDOG);
            }
            settles(&ext, 0).await;
            eprintln!(
                "{n} {method} calls with {size}: {ROUNDS} rounds in {:?}",
                began.elapsed()
            );
        }
        ext.stop().await;
    });
}

#[test]
fn bursts_of_a_thousand_sync_calls_never_stall() {
    bursts_of("work", 1000);
}

#[test]
fn bursts_of_five_thousand_sync_calls_never_stall() {
    bursts_of("work", 5000);
}

#[test]
fn bursts_of_a_thousand_async_calls_never_stall() {
    bursts_of("work_async", 1000);
}

#[test]
fn bursts_of_five_thousand_async_calls_never_stall() {
    bursts_of("work_async", 5000);
}

/// A local actor on the extension's arbiter: its answers show the arbiter is not blocked.
struct Ping;

impl actix::Actor for Ping {
    type Context = actix::Context<Self>;
}

impl actix::Handler<Call> for Ping {
    type Result = troupe_runtime::CallResult;

    fn handle(&mut self, _: Call, _: &mut actix::Context<Self>) -> Self::Result {
        Ok(Value::from("pong"))
    }
}

/// Floods `ext` (whose child does not read) with `n` calls carrying 16 KiB each, under a
/// deadline of `deadline`, while pinging a local actor on the same arbiter. Every call must
/// end with `Timeout` close to its deadline, and every ping must be answered at once.
async fn flood_a_child_that_does_not_read(ext: &ExtensionRef, n: usize, deadline: Duration) {
    let ping: Caller = ActorBuilder::new("ping").spawn(Ping).caller();
    let payload = Value::Bytes(Buffer::from(vec![1u8; 16 << 10]));
    let began = Instant::now();
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let caller = ext.caller();
            let payload = payload.clone();
            actix_rt::spawn(async move {
                caller
                    .call_timeout(
                        Call::new("work", vec![Value::Int(i as i64), payload]),
                        deadline,
                    )
                    .await
            })
        })
        .collect();
    let mut slowest_ping = Duration::ZERO;
    while began.elapsed() < deadline {
        let sent = Instant::now();
        let pong = tokio::time::timeout(WATCHDOG, ping.call(Call::new("ping", vec![])))
            .await
            .expect("the arbiter answers its other actors");
        assert_eq!(pong, Ok(Value::from("pong")));
        slowest_ping = slowest_ping.max(sent.elapsed());
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    for (i, call) in calls.into_iter().enumerate() {
        let result = tokio::time::timeout(WATCHDOG, call)
            .await
            .unwrap_or_else(|_| panic!("call {i} outlived its deadline by {WATCHDOG:?}"))
            .unwrap();
        assert_eq!(result, Err(CallError::Timeout(deadline)), "call {i}");
    }
    let all_done = began.elapsed();
    assert!(
        all_done < deadline + Duration::from_secs(2),
        "every call ended near its deadline: {all_done:?}"
    );
    assert!(
        slowest_ping < Duration::from_millis(500),
        "the arbiter stayed responsive: slowest ping {slowest_ping:?}"
    );
    // Each call's own task in the extension sees its caller gone a moment later (the busy
    // child's own call stays in flight).
}

/// Waits (a little) until no call waits and `in_flight` are in the child.
async fn settles(ext: &ExtensionRef, in_flight: usize) {
    let began = Instant::now();
    loop {
        let counts = ext.call_counts();
        if (counts.waiting, counts.in_flight) == (0, in_flight) {
            return;
        }
        assert!(
            began.elapsed() < WATCHDOG,
            "calls left behind: {counts:?}, expected {in_flight} in flight"
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn a_busy_child_that_stops_reading_leaves_every_call_to_its_deadline() {
    actix::System::new().block_on(async {
        // Never killed for its cancelled calls: this is about a child left to itself.
        let ext = start("busy", |c| {
            c.stop_timeout(Duration::from_millis(200))
                .cancel_grace(None)
        })
        .await;
        let hang = {
            let ext = ext.caller();
            actix_rt::spawn(async move {
                ext.call_timeout(
                    Call::new("hang", vec![Value::Float(60.0)]),
                    Duration::from_secs(60),
                )
                .await
            })
        };
        actix_rt::time::sleep(Duration::from_millis(200)).await;
        flood_a_child_that_does_not_read(&ext, 5000, Duration::from_secs(2)).await;
        settles(&ext, 1).await;
        ext.stop().await;
        assert!(matches!(hang.await.unwrap(), Err(CallError::ActorStopped)));
    });
}

#[test]
fn a_stopped_child_leaves_every_call_to_its_deadline_and_recovers_when_continued() {
    actix::System::new().block_on(async {
        let ext = start("frozen", |c| c.cancel_grace(None)).await;
        let pid = libc::pid_t::try_from(ext.pid().unwrap()).unwrap();
        // SAFETY: signalling the child this test started.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        flood_a_child_that_does_not_read(&ext, 5000, Duration::from_secs(2)).await;
        settles(&ext, 0).await;
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        // What queued for it drains (cancels of the timed-out calls included), and it serves
        // again.
        let answer = ext
            .caller()
            .call_timeout(
                Call::new("work", vec![Value::Int(42), Value::Null]),
                Duration::from_secs(20),
            )
            .await;
        assert_eq!(answer, Ok(Value::Int(42)));
        ext.stop().await;
    });
}
