//! A raw host for child-side tests: spawns `<venv>/bin/python -m troupe` with its
//! connection (`troupe_bridge_python::process::spawn`), and exchanges frames directly on the
//! link, without the extension actor. Each test binary shares its venvs through one cache directory under
//! cargo's target tmpdir, so they are built once.

#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use troupe_bridge_python::env::{self, EnvCache, EnvSpec};
use troupe_bridge_python::process::{self, ChildProcess, LaunchSpec, Link, LinkLimits, Process};
use troupe_bridge_python::{Venv, provision};
use troupe_protocol::{CallFrame, Envelope, StartInfo, Target, ToChild, ToHost};
use troupe_value::{CallError, Map, Value};

/// How long any single wait of the driver may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A venv for `dependencies` with the child side provisioned, shared by the tests of this
/// binary (and later runs).
pub fn venv(dependencies: &[&str]) -> Venv {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("troupe-child-venvs");
    let cache = EnvCache::new(root);
    let venv = cache
        .ensure(&EnvSpec::new(dependencies.iter().copied()), &env::quiet)
        .expect("test venv");
    provision::provision(&venv).expect("provision");
    venv
}

/// Writes `source` as module `name` in a fresh directory and returns the directory.
pub fn module_dir(name: &str, source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(format!("{name}.py")), source).expect("module");
    dir
}

/// One child process and the host's end of its link.
pub struct Driver {
    pub process: Arc<ChildProcess>,
    pub pid: u32,
    pub hello: ToHost,
    link: Option<Arc<Link>>,
    next_id: RefCell<u64>,
    stashed: RefCell<HashMap<u64, Result<Value, CallError>>>,
}

/// What serves the child's calls: `(driver, target, call) -> result`.
pub type Handler<'a> = &'a dyn Fn(&Driver, &Target, &CallFrame) -> Result<Value, CallError>;

/// A handler for children that make no calls.
pub fn no_calls(_: &Driver, target: &Target, call: &CallFrame) -> Result<Value, CallError> {
    panic!("unexpected call {target}.{}", call.method)
}

impl Driver {
    /// Spawns the child in `venv` and waits for its hello.
    pub fn spawn(venv: &Venv) -> Driver {
        let spec = LaunchSpec {
            name: "raw".into(),
            python: venv.python.clone(),
            venv: venv.root.clone(),
            env: vec![("PYTHONDONTWRITEBYTECODE".into(), "1".into())],
            cwd: None,
            sys_path: Vec::new(),
            memory_limit: None,
            // The tests' modules live in temp dirs of their own.
            sandbox: process::SandboxConfig::default().read(std::env::temp_dir()),
            connect_timeout: PATIENCE,
            limits: LinkLimits::default(),
        };
        let (process, link) = process::spawn(&spec).expect("spawn python");
        let pid = process.pid();
        let mut driver = Driver {
            process,
            pid,
            hello: ToHost::ShutdownDone,
            link: Some(link),
            next_id: RefCell::new(1),
            stashed: RefCell::default(),
        };
        driver.hello = driver.next();
        driver
    }

    fn link(&self) -> &Link {
        self.link.as_ref().expect("not hung up")
    }

    /// Drops the host's end of the connection, as a dying host would.
    pub fn hang_up(&mut self) {
        if let Some(link) = self.link.take() {
            link.close();
        }
    }

    /// Sends one frame (the releases this driver owes ride along, or follow on their own).
    pub fn send(&self, frame: ToChild) {
        self.link().send(frame).expect("send to child");
    }

    /// How many slots of the host's pool the child holds.
    pub fn lent(&self) -> usize {
        self.link().lent()
    }

    /// The next frame from the child. Like a host, it applies (and skips) the child's
    /// releases.
    pub fn next(&self) -> ToHost {
        loop {
            let link = self.link();
            let frame = match link.wait_frame(PATIENCE) {
                Ok(Some(frame)) => frame,
                Ok(None) => panic!("no frame from the child in {PATIENCE:?}"),
                Err(e) => panic!("the child's connection ended: {e}"),
            };
            let envelope: Envelope<ToHost> = link
                .open(&frame.bytes, frame.fds)
                .expect("child frame decodes");
            match envelope.body {
                ToHost::ReleaseSlots { slots } => link.release_slots(&slots),
                frame => return frame,
            }
        }
    }

    /// Sends `Start` for `module` (found in `dir`) and returns what the child answered.
    pub fn start(&self, dir: &Path, module: &str, class: Option<&str>) -> ToHost {
        self.send(ToChild::Start(StartInfo {
            name: module.to_owned(),
            module: module.to_owned(),
            class: class.map(str::to_owned),
            sys_path: vec![dir.display().to_string()],
            host_calls: true,
        }));
        self.next()
    }

    /// Spawns, starts and expects `Started`; returns the driver and the methods.
    pub fn started(venv: &Venv, dir: &Path, module: &str) -> (Driver, Vec<String>) {
        let driver = Driver::spawn(venv);
        match driver.start(dir, module, None) {
            ToHost::Started { methods } => (driver, methods),
            other => panic!("start failed: {other:?}"),
        }
    }

    /// Sends a call and returns its id, without waiting.
    pub fn send_call(&self, method: &str, args: Vec<Value>, kwargs: Map) -> u64 {
        let id = {
            let mut next = self.next_id.borrow_mut();
            *next += 1;
            *next
        };
        self.send(ToChild::Call(CallFrame {
            id,
            method: method.to_owned(),
            args,
            kwargs,
        }));
        id
    }

    /// Calls `method` and waits for the answer, serving the child's calls with `handler`
    /// meanwhile (re-entrantly: the handler may call the child again).
    pub fn call_with(
        &self,
        method: &str,
        args: Vec<Value>,
        handler: Handler<'_>,
    ) -> Result<Value, CallError> {
        let id = self.send_call(method, args, Map::new());
        self.wait_reply(id, handler)
    }

    /// [`Driver::call_with`] for children that make no calls.
    pub fn call(&self, method: &str, args: Vec<Value>) -> Result<Value, CallError> {
        self.call_with(method, args, &no_calls)
    }

    /// Waits for the reply to call `id`, serving calls from the child meanwhile.
    pub fn wait_reply(&self, id: u64, handler: Handler<'_>) -> Result<Value, CallError> {
        loop {
            if let Some(result) = self.stashed.borrow_mut().remove(&id) {
                return result;
            }
            match self.next() {
                ToHost::Reply { id: got, result } if got == id => return result,
                ToHost::Reply { id: other, result } => {
                    self.stashed.borrow_mut().insert(other, result);
                }
                ToHost::Call { target, call } => {
                    let result = handler(self, &target, &call);
                    self.send(ToChild::Reply {
                        id: call.id,
                        result,
                    });
                }
                ToHost::Cancel { .. } => {}
                other => panic!("unexpected frame while waiting for reply {id}: {other:?}"),
            }
        }
    }

    /// Waits for the process to end.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        self.process
            .wait_timeout(within)
            .unwrap_or_else(|| panic!("child still running after {within:?}"))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.process.kill();
    }
}

/// `Value::Str`.
pub fn s(text: &str) -> Value {
    Value::Str(text.to_owned())
}

/// `Value::Int`.
pub fn i(n: i64) -> Value {
    Value::Int(n)
}
