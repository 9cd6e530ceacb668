//! A server and a client in one process, over loopback TCP: calls answer with the served
//! actor's values and errors, deadlines become `Timeout`, and start-up problems are typed
//! errors at once.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use indexmap::IndexMap;
use support::{endpoint, free_port};
use troupe_cluster::admin::{Lifecycle, LifecycleError, LifecycleFuture, LifecycleRequest};
use troupe_cluster::{ClusterError, HostSpec, Limits, ListenSpec, RemoteHost, Server};
use troupe_runtime::{ActorBuilder, Call, CallError, CallResult, Caller, Value};

struct Echo;

/// Items `count` has produced (streamed), and whether a `hold` call saw its cancel.
static PRODUCED: AtomicU64 = AtomicU64::new(0);
static HOLD_CANCELLED: AtomicBool = AtomicBool::new(false);

impl Actor for Echo {
    type Context = Context<Self>;
}

impl Handler<Call> for Echo {
    type Result = ResponseFuture<CallResult>;

    fn handle(&mut self, mut call: Call, ctx: &mut Context<Self>) -> Self::Result {
        if call.method() == "quit" {
            ctx.stop();
            return Box::pin(async { Ok(Value::Null) });
        }
        Box::pin(async move {
            match call.method() {
                "echo" => call.arg::<Value>(0),
                // Streams 0..n under its caller's credit.
                "count" => {
                    let n: i64 = call.arg(0)?;
                    let Some(sink) = call.take_items() else {
                        return Ok(Value::List((0..n).map(Value::Int).collect()));
                    };
                    for i in 0..n {
                        if !sink.send(Value::Int(i)).await {
                            return Err(CallError::Cancelled);
                        }
                        PRODUCED.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Value::Null)
                }
                // Waits until its caller lets go.
                "hold" => {
                    call.take_abandoned().await;
                    HOLD_CANCELLED.store(true, Ordering::SeqCst);
                    Ok(Value::Null)
                }
                "sleep_ms" => {
                    let ms: i64 = call.arg(0)?;
                    tokio::time::sleep(Duration::from_millis(ms as u64)).await;
                    Ok(Value::Null)
                }
                _ => Err(call.unknown_method()),
            }
        })
    }
}

/// Serves `Echo` as `echo` on host `name` at `port`, with `users` if given.
async fn serve_echo(name: &str, port: u16, users: Option<std::path::PathBuf>) -> Server {
    serve_echo_within(name, port, users, Limits::default()).await
}

async fn serve_echo_within(
    name: &str,
    port: u16,
    users: Option<std::path::PathBuf>,
    limits: Limits,
) -> Server {
    let mut extensions = IndexMap::new();
    extensions.insert(
        "echo".to_owned(),
        ActorBuilder::new("echo").spawn(Echo).caller(),
    );
    let mut listen = ListenSpec::new(name, vec![endpoint(port)]);
    listen.users = users;
    Server::start(listen, extensions, Vec::new(), limits, None)
        .await
        .expect("serves")
}

#[actix_rt::test]
async fn calls_deadlines_and_unknown_methods_cross_the_link() {
    let port = free_port();
    let server = serve_echo("h1", port, None).await;
    assert_eq!(server.hello().extensions, ["echo"]);

    let host = RemoteHost::connect(HostSpec::new("h1", vec![endpoint(port)]))
        .await
        .expect("connects");
    assert!(host.is_alive());
    let echo = host.extension("echo").expect("served");

    let answer = echo.call(Call::new("echo", vec![Value::from("hi")])).await;
    assert_eq!(answer, Ok(Value::from("hi")));

    let start = Instant::now();
    let mut samples = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        echo.call(Call::new("echo", vec![Value::Int(1)]))
            .await
            .expect("answer");
        samples.push(t.elapsed());
    }
    samples.sort();
    eprintln!(
        "remote echo: median {:?}, p90 {:?} ({:?} for 200)",
        samples[100],
        samples[180],
        start.elapsed()
    );

    let missing = echo.call(Call::new("nope", vec![])).await;
    assert!(
        matches!(missing, Err(CallError::UnknownMethod { .. })),
        "{missing:?}"
    );

    let late = echo
        .call_timeout(
            Call::new("sleep_ms", vec![Value::Int(2000)]),
            Duration::from_millis(200),
        )
        .await;
    assert!(matches!(late, Err(CallError::Timeout(_))), "{late:?}");

    assert!(matches!(
        host.extension("other"),
        Err(ClusterError::NotServed { .. })
    ));
    let health = host.health(Duration::from_secs(2)).await.expect("health");
    assert!(health.iter().all(|e| e.up));
    let stop = host
        .lifecycle(
            LifecycleRequest::Stop("echo".into()),
            Duration::from_secs(2),
        )
        .await;
    assert!(
        matches!(
            stop,
            Err(ClusterError::Lifecycle {
                source: LifecycleError::Unavailable,
                ..
            })
        ),
        "a host with no lifecycle handler: {stop:?}"
    );
    drop(server);
}

#[actix_rt::test]
async fn a_flooding_peer_does_not_starve_another() {
    let port = free_port();
    let limits = Limits {
        queue: 64,
        peers: 4,
        in_flight: 1,
    };
    let _server = serve_echo_within("fair", port, None, limits).await;
    let connect = || RemoteHost::connect(HostSpec::new("fair", vec![endpoint(port)]));
    let (flooder, other) = (connect().await.expect("one"), connect().await.expect("two"));
    let done = std::sync::Arc::new(AtomicU64::new(0));
    let flood: Vec<_> = (0..20)
        .map(|_| {
            let (echo, done) = (flooder.extension("echo").expect("served"), done.clone());
            actix::spawn(async move {
                let answer = echo.call(Call::new("sleep_ms", vec![Value::Int(30)])).await;
                done.fetch_add(1, Ordering::SeqCst);
                answer
            })
        })
        .collect();
    // The flood is queued (one call runs at a time) when the other peer calls.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let echo = other.extension("echo").expect("served");
    let answer = echo.call(Call::new("echo", vec![Value::Int(7)])).await;
    let before = done.load(Ordering::SeqCst);
    assert_eq!(answer, Ok(Value::Int(7)));
    eprintln!("the other peer's call ran after {before} of the flood's 20");
    assert!(
        before <= 6,
        "its turn came after {before} of 20 flood calls: the peers did not take turns"
    );
    for call in flood {
        assert_eq!(call.await.expect("joined"), Ok(Value::Null));
    }
}

/// Stops the served `Echo` and starts a new one, on the test's actix system.
struct EchoLifecycle {
    arbiter: actix::ArbiterHandle,
    current: std::sync::Arc<std::sync::Mutex<Caller>>,
}

impl Lifecycle for EchoLifecycle {
    fn stop(&self, _: &str) -> LifecycleFuture<()> {
        let current = self.current.lock().expect("lock").clone();
        Box::pin(async move {
            let _ = current.call(Call::new("quit", vec![])).await;
            Ok(())
        })
    }

    fn start(&self, _: &str) -> LifecycleFuture<Caller> {
        let (done, started) = tokio::sync::oneshot::channel();
        self.arbiter.spawn(async move {
            let _ = done.send(ActorBuilder::new("echo").spawn(Echo).caller());
        });
        let current = self.current.clone();
        Box::pin(async move {
            let caller = started.await.map_err(|_| LifecycleError::Unavailable)?;
            *current.lock().expect("lock") = caller.clone();
            Ok(caller)
        })
    }
}

#[actix_rt::test]
async fn operators_stop_and_start_served_extensions() {
    let dir = std::env::temp_dir().join(format!("troupe-cluster-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let users = dir.join("users.txt");
    std::fs::write(&users, "alice:a-secret\nbob:b-secret\n").expect("users");
    let port = free_port();
    let echo = ActorBuilder::new("echo").spawn(Echo).caller();
    let lifecycle = std::sync::Arc::new(EchoLifecycle {
        arbiter: actix::Arbiter::current(),
        current: std::sync::Arc::new(std::sync::Mutex::new(echo.clone())),
    });
    let mut extensions = IndexMap::new();
    extensions.insert("echo".to_owned(), echo);
    let mut listen = ListenSpec::new("ops", vec![endpoint(port)]);
    listen.users = Some(users);
    listen.operators = vec!["alice".into()];
    let _server = Server::start(
        listen,
        extensions,
        Vec::new(),
        Limits::default(),
        Some(lifecycle.clone() as std::sync::Arc<dyn Lifecycle>),
    )
    .await
    .expect("serves");
    let as_user = |user: &str, password: &str| {
        let mut spec = HostSpec::new("ops", vec![endpoint(port)]);
        spec.credentials = Some(troupe_cluster::Credentials {
            user: user.into(),
            password: password.into(),
        });
        spec
    };
    let alice = RemoteHost::connect(as_user("alice", "a-secret"))
        .await
        .expect("alice connects");
    let echo = alice.extension("echo").expect("served");
    let wait = Duration::from_secs(5);
    let lifecycle_of = |request| alice.lifecycle(request, wait);
    let refused = |result: Result<(), ClusterError>| match result {
        Err(ClusterError::Lifecycle { source, .. }) => source,
        other => panic!("expected a typed refusal, got {other:?}"),
    };

    assert_eq!(
        echo.call(Call::new("echo", vec![Value::Int(1)])).await,
        Ok(Value::Int(1))
    );
    lifecycle_of(LifecycleRequest::Stop("echo".into()))
        .await
        .expect("alice stops it");
    let start = Instant::now();
    while alice.health(wait).await.expect("health")[0].up {
        assert!(start.elapsed() < wait, "still up after its stop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = echo.call(Call::new("echo", vec![Value::Int(2)])).await;
    assert_eq!(stopped, Err(CallError::ActorStopped));
    assert_eq!(
        refused(lifecycle_of(LifecycleRequest::Stop("echo".into())).await),
        LifecycleError::NotRunning
    );

    lifecycle_of(LifecycleRequest::Start("echo".into()))
        .await
        .expect("alice starts it again");
    assert_eq!(
        echo.call(Call::new("echo", vec![Value::Int(3)])).await,
        Ok(Value::Int(3)),
        "the same remote caller reaches the new actor"
    );
    assert!(alice.health(wait).await.expect("health")[0].up);
    assert_eq!(
        refused(lifecycle_of(LifecycleRequest::Start("echo".into())).await),
        LifecycleError::Running
    );
    assert_eq!(
        refused(lifecycle_of(LifecycleRequest::Start("other".into())).await),
        LifecycleError::NotServed
    );

    // bob may call, not stop: his lifecycle queries are not let through.
    let bob = RemoteHost::connect(as_user("bob", "b-secret"))
        .await
        .expect("bob connects");
    let denied = bob
        .lifecycle(
            LifecycleRequest::Stop("echo".into()),
            Duration::from_secs(1),
        )
        .await;
    assert!(
        matches!(denied, Err(ClusterError::Unanswered { .. })),
        "{denied:?}"
    );
    assert_eq!(
        bob.extension("echo")
            .expect("served")
            .call(Call::new("echo", vec![Value::Int(4)]))
            .await,
        Ok(Value::Int(4)),
        "still running, and bob may call it"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_rt::test]
async fn nothing_listening_is_a_typed_error_at_once() {
    let port = free_port();
    let start = Instant::now();
    let mut spec = HostSpec::new("nobody", vec![endpoint(port)]);
    spec.probe_timeout = Duration::from_secs(2);
    let error = RemoteHost::connect(spec).await.expect_err("nothing there");
    assert!(matches!(error, ClusterError::Open { .. }), "{error}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[actix_rt::test]
async fn tls_endpoints_are_refused() {
    let tls = "tls/127.0.0.1:7447".parse::<troupe_cluster::Endpoint>();
    assert!(matches!(tls, Err(troupe_cluster::EndpointError::Tls(_))));
}

#[actix_rt::test]
async fn wrong_credentials_are_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("troupe-cluster-users-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let users = dir.join("users.txt");
    std::fs::write(&users, "alice:s3cret\n").expect("users");
    let port = free_port();
    let _server = serve_echo("locked", port, Some(users)).await;

    let spec = |user: &str, password: &str| {
        let mut spec = HostSpec::new("locked", vec![endpoint(port)]);
        spec.probe_timeout = Duration::from_secs(2);
        spec.credentials = Some(troupe_cluster::Credentials {
            user: user.into(),
            password: password.into(),
        });
        spec
    };
    let host = RemoteHost::connect(spec("alice", "s3cret"))
        .await
        .expect("the right password connects");
    let echo = host.extension("echo").expect("served");
    assert_eq!(
        echo.call(Call::new("echo", vec![Value::Int(1)])).await,
        Ok(Value::Int(1))
    );

    let start = Instant::now();
    let wrong = RemoteHost::connect(spec("alice", "guess")).await;
    assert!(matches!(wrong, Err(ClusterError::Open { .. })), "{wrong:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    let mut anonymous = HostSpec::new("locked", vec![endpoint(port)]);
    anonymous.probe_timeout = Duration::from_secs(2);
    let refused = RemoteHost::connect(anonymous).await;
    assert!(refused.is_err(), "no credentials: refused");
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_rt::test]
async fn a_full_queue_answers_busy_at_once() {
    let port = free_port();
    let limits = Limits {
        queue: 1,
        peers: 1,
        in_flight: 1,
    };
    let _server = serve_echo_within("busy", port, None, limits).await;
    let host = RemoteHost::connect(HostSpec::new("busy", vec![endpoint(port)]))
        .await
        .expect("connects");
    let echo = host.extension("echo").expect("served");
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let echo = echo.clone();
            actix::spawn(async move {
                let start = Instant::now();
                let answer = echo
                    .call(Call::new("sleep_ms", vec![Value::Int(400)]))
                    .await;
                (answer, start.elapsed())
            })
        })
        .collect();
    let mut busy = 0;
    for call in calls {
        let (answer, took) = call.await.expect("joined");
        match answer {
            Ok(Value::Null) => {}
            Err(CallError::MailboxFull) => {
                busy += 1;
                assert!(took < Duration::from_millis(300), "busy at once: {took:?}");
            }
            other => panic!("{other:?}"),
        }
    }
    // One runs, one waits; the rest are refused.
    assert!(busy >= 3, "{busy} busy");
}

#[actix_rt::test]
async fn streamed_calls_flow_under_credit_and_cancels_reach_the_host() {
    let port = free_port();
    let _server = serve_echo("streams", port, None).await;
    let host = RemoteHost::connect(HostSpec::new("streams", vec![endpoint(port)]))
        .await
        .expect("connects");
    let echo = host.extension("echo").expect("served");

    // A slow reader: the producer over there stays within the windows of the two hops.
    let window = 4;
    let mut items = echo.call_stream(Call::new("count", vec![Value::Int(100)]), None, window);
    let mut taken = Vec::new();
    for _ in 0..10 {
        match items.next().await {
            Some(Ok(Value::Int(i))) => taken.push(i),
            other => panic!("{other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let produced = PRODUCED.load(Ordering::SeqCst);
    assert!(
        produced <= 10 + 2 * u64::from(window) + 1,
        "{produced} produced for 10 taken: no backpressure across the link"
    );
    while let Some(item) = items.next().await {
        match item {
            Ok(Value::Int(i)) => taken.push(i),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(taken, (0..100).collect::<Vec<_>>(), "all of them, in order");

    // A stream dropped half-way stops its producer over there.
    let mut items = echo.call_stream(Call::new("count", vec![Value::Int(1_000_000)]), None, 8);
    for _ in 0..5 {
        assert!(matches!(items.next().await, Some(Ok(_))));
    }
    drop(items);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped_at = PRODUCED.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        PRODUCED.load(Ordering::SeqCst),
        stopped_at,
        "the producer stopped"
    );

    // A plain call the caller stops waiting for is abandoned over there too.
    let held = tokio::time::timeout(
        Duration::from_millis(200),
        echo.call(Call::new("hold", vec![])),
    )
    .await;
    assert!(held.is_err(), "it holds until cancelled");
    let start = Instant::now();
    while !HOLD_CANCELLED.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the host never heard the cancel"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_rt::test]
async fn an_acl_keeps_an_extension_from_users_it_does_not_list() {
    let dir = std::env::temp_dir().join(format!("troupe-cluster-acl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let users = dir.join("users.txt");
    std::fs::write(&users, "alice:a-secret\nbob:b-secret\n").expect("users");
    let port = free_port();
    let mut extensions = IndexMap::new();
    extensions.insert(
        "echo".to_owned(),
        ActorBuilder::new("echo").spawn(Echo).caller(),
    );
    let mut listen = ListenSpec::new("acl", vec![endpoint(port)]);
    listen.users = Some(users);
    listen.acl = vec![troupe_cluster::Acl {
        extension: "echo".into(),
        users: vec!["alice".into()],
    }];
    let _server = Server::start(listen, extensions, Vec::new(), Limits::default(), None)
        .await
        .expect("serves");
    let as_user = |user: &str, password: &str| {
        let mut spec = HostSpec::new("acl", vec![endpoint(port)]);
        spec.call_timeout = Duration::from_secs(5);
        spec.credentials = Some(troupe_cluster::Credentials {
            user: user.into(),
            password: password.into(),
        });
        spec
    };
    let alice = RemoteHost::connect(as_user("alice", "a-secret"))
        .await
        .expect("alice connects");
    let echo = alice.extension("echo").expect("served");
    assert_eq!(
        echo.call(Call::new("echo", vec![Value::Int(1)])).await,
        Ok(Value::Int(1))
    );
    let bob = RemoteHost::connect(as_user("bob", "b-secret"))
        .await
        .expect("bob connects");
    let echo = bob.extension("echo").expect("listed in the hello");
    let start = Instant::now();
    let denied = echo.call(Call::new("echo", vec![Value::Int(1)])).await;
    eprintln!("bob: {denied:?} after {:?}", start.elapsed());
    assert!(
        matches!(denied, Err(CallError::NotFound { .. })),
        "{denied:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A raw zenoh client, as a hostile peer would have.
async fn raw_client(port: u16) -> zenoh::Session {
    let mut config = zenoh::Config::default();
    for (key, value) in [
        ("mode", "\"client\"".to_owned()),
        ("scouting/multicast/enabled", "false".to_owned()),
        ("scouting/gossip/enabled", "false".to_owned()),
        ("connect/endpoints", format!("[\"tcp/127.0.0.1:{port}\"]")),
    ] {
        config.insert_json5(key, &value).expect("config");
    }
    zenoh::open(config).await.expect("raw session")
}

#[test]
fn hostile_frames_and_control_messages_leave_the_host_serving() {
    let port = free_port();
    let system = actix::System::new();
    let (_server, echo) = system.block_on(async {
        let server = serve_echo("hostile", port, None).await;
        let host = RemoteHost::connect(HostSpec::new("hostile", vec![endpoint(port)]))
            .await
            .expect("connects");
        (server, host.extension("echo").expect("served"))
    });
    // zenoh is driven from a multi-thread runtime of the test's own.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let answers = runtime.block_on(async {
        let raw = raw_client(port).await;
        let control = "troupe/host/hostile/control";
        let call = "troupe/host/hostile/ext/echo/call";
        // Garbage, an oversized message, credit and cancels for calls that do not exist.
        for payload in [
            vec![],
            vec![0xff; 7],
            vec![0u8; 1 << 20],
            troupe_cluster::frame::encode_control(&troupe_cluster::frame::Control::Credit {
                caller: "nobody".into(),
                call: 1,
                items: u32::MAX,
            })
            .expect("encoded"),
        ] {
            raw.put(control, payload).await.expect("put");
        }
        // Garbage call frames each get a typed error, never a crash or a hang.
        let mut answers = Vec::new();
        for payload in [vec![], vec![0xde, 0xad], vec![7u8; 1 << 16]] {
            let replies = raw
                .get(call)
                .payload(payload)
                .timeout(Duration::from_secs(5))
                .await
                .expect("query");
            let reply = replies.recv_async().await.expect("a reply");
            let bytes = reply
                .result()
                .expect("ok")
                .payload()
                .to_bytes()
                .into_owned();
            answers.push(troupe_cluster::frame::decode_reply(&bytes).expect("a reply frame"));
        }
        raw.close().await.expect("close");
        answers
    });
    assert_eq!(answers.len(), 3);
    for answer in &answers {
        eprintln!("hostile frame answered: {answer:?}");
        assert!(
            matches!(answer, Err(CallError::BadArguments { path, .. }) if path == "frame"),
            "{answer:?}"
        );
    }
    // And the host still serves everyone else.
    let after = system.block_on(echo.call(Call::new("echo", vec![Value::from("still here")])));
    assert_eq!(after, Ok(Value::from("still here")));
}
