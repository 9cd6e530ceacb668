//! The child side (`python -m troupe` with `troupe._native`) against a raw driver that
//! speaks the frames directly: lifecycle, sync and async calls, errors both ways,
//! unsupported values, cancellation, nesting, calls from other threads, shutdown.

mod child_support;

use std::time::Duration;

use child_support::{Driver, Handler, i, module_dir, s};
use troupe_protocol::{CallFrame, PROTOCOL_VERSION, Target, ToChild, ToHost};
use troupe_value::{Array, CallError, Map, RemoteException, Value};

const PROBE: &str = r#"
import asyncio
import threading

import troupe

EVENTS = []


class MyError(Exception):
    pass


class Probe(troupe.Extension):
    CONSTANT = 3

    def __init__(self):
        EVENTS.append("init")
        self.cancelled = False

    def before_module_loaded(self):
        EVENTS.append("before_module_loaded")

    def on_module_loaded(self, module):
        EVENTS.append(f"on_module_loaded:{module.__name__}")

    async def initialize(self):
        EVENTS.append("initialize on " + threading.current_thread().name)
        EVENTS.append(await troupe.host.aio.hello("initialize"))

    def prepare_shutdown(self):
        print("prepare_shutdown ran")
        troupe.host.goodbye()

    @property
    def prop(self):
        return 1

    def _private(self):
        return "private"

    def events(self):
        return EVENTS

    def noop(self):
        return None

    def add(self, a, b=0):
        return a + b

    def echo(self, *args, **kwargs):
        return [list(args), kwargs]

    async def slow_echo(self, x, delay=0.01):
        await asyncio.sleep(delay)
        return [x, threading.current_thread().name]

    def fail(self):
        raise ValueError("boom")

    def fail_custom(self):
        raise MyError("custom")

    async def fail_async(self):
        await asyncio.sleep(0)
        raise KeyError("k")

    def return_set(self):
        return {1, 2}

    def return_big_int(self):
        return 2**70

    def send_set(self):
        try:
            troupe.host.take(1, {"x": [{3}]})
        except TypeError as e:
            return str(e)
        return "sent?"

    def down(self, n):
        return troupe.host.down(n) if n > 0 else 0

    async def down_async(self, n):
        return await troupe.host.aio.down_async(n) if n > 0 else 0

    async def sleep_forever(self):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    def was_cancelled(self):
        return self.cancelled

    async def from_thread(self, x):
        return await asyncio.to_thread(troupe.host.double, x)

    async def blocking_on_loop(self):
        try:
            troupe.host.double(1)
        except RuntimeError as e:
            return str(e)
        return "blocked?"

    def host_raises(self):
        try:
            troupe.host.explode()
        except troupe.RemoteExceptionError as e:
            return [type(e).__name__, e.type_name, e.remote_message, e.remote_traceback]

    def host_denies(self):
        try:
            troupe.singleton("secret").get()
        except troupe.PermissionDeniedError as e:
            return [e.caller, e.target, isinstance(e, troupe.RemoteError)]
"#;

/// Serves what the probe calls on the host.
fn host(driver: &Driver, target: &Target, call: &CallFrame) -> Result<Value, CallError> {
    let arg = |n: usize| call.args.get(n).cloned().unwrap_or_default();
    match (target, call.method.as_str()) {
        (Target::Host, "hello") => Ok(s(&format!("hello {}", arg(0).as_str().unwrap_or("?")))),
        (Target::Host, "goodbye") => Ok(Value::Null),
        (Target::Host, "double") => Ok(i(arg(0).as_int().expect("int") * 2)),
        (Target::Host, "down") => {
            let n = arg(0).as_int().expect("int");
            let inner = driver.call_with("down", vec![i(n - 1)], &host)?;
            Ok(i(inner.as_int().expect("int") + 1))
        }
        (Target::Host, "down_async") => {
            let n = arg(0).as_int().expect("int");
            let inner = driver.call_with("down_async", vec![i(n - 1)], &host)?;
            Ok(i(inner.as_int().expect("int") + 1))
        }
        (Target::Host, "explode") => Err(CallError::Remote(RemoteException {
            type_name: "host::Explosion".into(),
            message: "kaboom".into(),
            traceback: "host backtrace".into(),
        })),
        (Target::Singleton(name), _) => Err(CallError::PermissionDenied {
            caller: "extension:probe".into(),
            target: format!("singleton:{name}"),
        }),
        _ => Err(CallError::UnknownMethod {
            method: call.method.clone(),
        }),
    }
}

const HOST: Handler<'static> = &host;

fn probe() -> (Driver, Vec<String>, tempfile::TempDir) {
    let venv = child_support::venv(&[]);
    let dir = module_dir("probe", PROBE);
    let driver = Driver::spawn(&venv);
    let started = driver.start(dir.path(), "probe", None);
    // initialize() awaits a host call: serve it.
    let started = match started {
        ToHost::Call { target, call } => {
            let result = host(&driver, &target, &call);
            driver.send(ToChild::Reply {
                id: call.id,
                result,
            });
            driver.next()
        }
        other => other,
    };
    let ToHost::Started { methods } = started else {
        panic!("not started: {started:?}")
    };
    (driver, methods, dir)
}

fn remote(result: Result<Value, CallError>) -> RemoteException {
    match result {
        Err(CallError::Remote(e)) => e,
        other => panic!("expected a remote exception, got {other:?}"),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_list()
        .expect("list")
        .iter()
        .map(|v| v.as_str().expect("str").to_owned())
        .collect()
}

#[test]
fn hello_start_and_hooks_come_in_the_documented_order() {
    let (driver, methods, _dir) = probe();
    let ToHost::Hello {
        protocol,
        pid,
        python,
    } = &driver.hello
    else {
        panic!("first frame {:?}", driver.hello)
    };
    assert_eq!(*protocol, PROTOCOL_VERSION);
    assert_eq!(*pid, driver.pid);
    assert!(python.starts_with("3."), "{python}");

    let events = strings(&driver.call("events", vec![]).expect("events"));
    assert_eq!(
        events,
        [
            "init",
            "before_module_loaded",
            "on_module_loaded:probe",
            "initialize on troupe-asyncio",
            "hello initialize",
        ]
    );
    for public in ["add", "echo", "slow_echo", "down", "down_async", "noop"] {
        assert!(
            methods.iter().any(|m| m == public),
            "{public} in {methods:?}"
        );
    }
    for hidden in [
        "_private",
        "initialize",
        "before_module_loaded",
        "on_module_loaded",
        "prepare_shutdown",
        "prop",
        "CONSTANT",
    ] {
        assert!(
            !methods.iter().any(|m| m == hidden),
            "{hidden} in {methods:?}"
        );
    }
}

#[test]
fn sync_and_async_methods_answer_with_converted_values() {
    let (driver, _, _dir) = probe();
    assert_eq!(driver.call("add", vec![i(2), i(40)]), Ok(i(42)));
    assert_eq!(driver.call("noop", vec![]), Ok(Value::Null));

    let args = vec![
        Value::Null,
        Value::Bool(true),
        i(i64::MIN),
        Value::Float(0.25),
        s("täxt"),
        Value::Bytes(vec![0u8, 1, 2].into()),
        Value::List(vec![i(1), Value::map([("k", s("v"))])]),
    ];
    let mut kwargs = Map::new();
    kwargs.insert("key".into(), Value::List(vec![]));
    let id = driver.send_call("echo", args.clone(), kwargs.clone());
    let echoed = driver.wait_reply(id, HOST).expect("echo");
    assert_eq!(
        echoed,
        Value::List(vec![Value::List(args), Value::Map(kwargs)])
    );

    // Async calls overlap: the second finishes first.
    let slow = driver.send_call("slow_echo", vec![s("slow"), Value::Float(0.3)], Map::new());
    let fast = driver.send_call("slow_echo", vec![s("fast"), Value::Float(0.0)], Map::new());
    let ToHost::Reply { id: first, result } = driver.next() else {
        panic!("reply")
    };
    assert_eq!(first, fast);
    assert_eq!(
        result,
        Ok(Value::List(vec![s("fast"), s("troupe-asyncio")]))
    );
    assert_eq!(
        driver.wait_reply(slow, HOST),
        Ok(Value::List(vec![s("slow"), s("troupe-asyncio")]))
    );
}

#[test]
fn exceptions_reach_the_host_with_type_message_and_traceback() {
    let (driver, _, _dir) = probe();
    let e = remote(driver.call("fail", vec![]));
    assert_eq!(
        (e.type_name.as_str(), e.message.as_str()),
        ("ValueError", "boom")
    );
    assert!(e.traceback.contains("Traceback"), "{}", e.traceback);
    assert!(e.traceback.contains("probe.py"), "{}", e.traceback);
    assert!(
        e.traceback.contains("raise ValueError(\"boom\")"),
        "{}",
        e.traceback
    );

    let e = remote(driver.call("fail_custom", vec![]));
    assert_eq!(e.type_name, "probe.MyError");
    let e = remote(driver.call("fail_async", vec![]));
    assert_eq!(
        (e.type_name.as_str(), e.message.as_str()),
        ("KeyError", "'k'")
    );

    let e = remote(driver.call("add", vec![i(1), i(2), i(3)]));
    assert_eq!(
        e.type_name, "TypeError",
        "wrong arity is the method's TypeError"
    );

    assert_eq!(
        driver.call("nope", vec![]),
        Err(CallError::UnknownMethod {
            method: "nope".into()
        })
    );
    for hidden in ["_private", "initialize"] {
        assert!(matches!(
            driver.call(hidden, vec![]),
            Err(CallError::UnknownMethod { .. })
        ));
    }
}

#[test]
fn host_errors_reach_python_as_the_remote_error_hierarchy() {
    let (driver, _, _dir) = probe();
    let raised = driver
        .call_with("host_raises", vec![], HOST)
        .expect("caught");
    assert_eq!(
        strings(&raised),
        [
            "RemoteExceptionError",
            "host::Explosion",
            "kaboom",
            "host backtrace"
        ]
    );
    let denied = driver
        .call_with("host_denies", vec![], HOST)
        .expect("caught");
    assert_eq!(
        denied,
        Value::List(vec![
            s("extension:probe"),
            s("singleton:secret"),
            Value::Bool(true)
        ])
    );
}

#[test]
fn unsupported_values_are_refused_with_their_type_and_place() {
    let (driver, _, _dir) = probe();
    let e = remote(driver.call("return_set", vec![]));
    assert_eq!(e.type_name, "TypeError");
    assert_eq!(e.message, "result: unsupported type set");

    let e = remote(driver.call("return_big_int", vec![]));
    assert_eq!(e.type_name, "OverflowError");
    assert!(
        e.message.starts_with("result: int 1180591620717411303424"),
        "{}",
        e.message
    );

    let sent = driver.call_with("send_set", vec![], HOST).expect("caught");
    assert_eq!(sent, s("args[1]['x'][0]: unsupported type set"));

    // Without numpy in the venv an array arrives as a troupe.HostArray, and goes back as the
    // array it is.
    let array = Value::Array(Array::from_vec(vec![1.0f32, 2.0]));
    assert_eq!(
        driver.call("echo", vec![i(1), array.clone()]),
        Ok(Value::List(vec![
            Value::List(vec![i(1), array]),
            Value::Map(Map::new())
        ]))
    );
    assert_eq!(driver.call("add", vec![i(1)]), Ok(i(1)), "still serving");
}

#[test]
fn cancelling_an_async_call_cancels_its_coroutine() {
    let (driver, _, _dir) = probe();
    let id = driver.send_call("sleep_forever", vec![], Map::new());
    // Let the task start, then cancel it.
    std::thread::sleep(Duration::from_millis(50));
    driver.send(ToChild::Cancel { id });
    assert_eq!(driver.wait_reply(id, HOST), Err(CallError::Cancelled));
    assert_eq!(driver.call("was_cancelled", vec![]), Ok(Value::Bool(true)));

    // Cancelled before its task even ran: still answered.
    let id = driver.send_call("sleep_forever", vec![], Map::new());
    driver.send(ToChild::Cancel { id });
    assert_eq!(driver.wait_reply(id, HOST), Err(CallError::Cancelled));
}

#[test]
fn nested_calls_through_the_host_reach_depth_fifty() {
    let (driver, _, _dir) = probe();
    assert_eq!(driver.call_with("down", vec![i(50)], HOST), Ok(i(50)));
    assert_eq!(driver.call_with("down_async", vec![i(50)], HOST), Ok(i(50)));
}

#[test]
fn other_threads_block_on_calls_and_the_asyncio_thread_is_told_to_await() {
    let (driver, _, _dir) = probe();
    assert_eq!(
        driver.call_with("from_thread", vec![i(21)], HOST),
        Ok(i(42))
    );
    let refused = driver
        .call_with("blocking_on_loop", vec![], HOST)
        .expect("caught");
    let text = refused.as_str().expect("str");
    assert!(text.contains("await troupe.host.aio.double(...)"), "{text}");
}

#[test]
fn shutdown_runs_prepare_shutdown_then_says_done_and_exits() {
    let (mut driver, _, _dir) = probe();
    driver.send(ToChild::Shutdown);
    // prepare_shutdown calls the host.
    let ToHost::Call { call, .. } = driver.next() else {
        panic!("expected the goodbye call")
    };
    assert_eq!(call.method, "goodbye");
    driver.send(ToChild::Reply {
        id: call.id,
        result: Ok(Value::Null),
    });
    assert_eq!(driver.next(), ToHost::ShutdownDone);
    assert!(driver.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn the_child_exits_when_the_host_hangs_up() {
    let (mut driver, _, _dir) = probe();
    driver.hang_up();
    let status = driver.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_failing_start_is_reported_then_the_child_exits() {
    let venv = child_support::venv(&[]);
    let dir = module_dir(
        "broken",
        "import troupe\nraise RuntimeError('cannot load')\n",
    );
    let mut driver = Driver::spawn(&venv);
    let ToHost::StartFailed(e) = driver.start(dir.path(), "broken", None) else {
        panic!("expected StartFailed")
    };
    assert_eq!(
        (e.type_name.as_str(), e.message.as_str()),
        ("RuntimeError", "cannot load")
    );
    assert!(e.traceback.contains("broken.py"), "{}", e.traceback);
    assert_eq!(driver.wait_exit(Duration::from_secs(10)).code(), Some(1));

    let two = "import troupe\nclass A(troupe.Extension): pass\nclass B(troupe.Extension): pass\n";
    let dir = module_dir("two", two);
    let driver = Driver::spawn(&venv);
    let ToHost::StartFailed(e) = driver.start(dir.path(), "two", None) else {
        panic!("expected StartFailed")
    };
    assert_eq!(e.type_name, "LookupError");
    assert!(e.message.contains("A, B"), "{}", e.message);
    let driver = Driver::spawn(&venv);
    assert!(matches!(
        driver.start(dir.path(), "two", Some("B")),
        ToHost::Started { .. }
    ));
}
