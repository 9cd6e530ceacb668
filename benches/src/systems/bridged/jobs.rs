//! The lab's side: its extensions, its host service, and how each job is timed.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc;
use troupe_bridge_python::env::{self, EnvCache};
use troupe_bridge_python::extension::{self, ExtensionConfig, ExtensionRef, NoRoutes};
use troupe_bridge_python::process::SandboxLevel;
use troupe_bridge_python::{Venv, provision};
#[cfg(feature = "cuda")]
use troupe_cuda::{CudaBuffer, CudaDevice, DeviceMemory};
use troupe_host::extension_host::{ExtensionHost, Grants};
use troupe_protocol::SHM_THRESHOLD;
use troupe_runtime::supervision::{Backoff, RestartLimit, RestartPolicy, RestartSpec};
use troupe_runtime::{ActorBuilder, Call, CallResult, Caller};
use troupe_shm::pool::Pool;
use troupe_value::{Array, Buffer, CallError, DType, Value};

use super::{Answer, MODULE, SystemError};
use crate::scenarios::through_python_node;

/// What one sample measures.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Job {
    /// One call: a no-op (payload 0) or an echo of `payload` bytes.
    Call {
        /// Bytes echoed; 0 for the no-op.
        payload: usize,
    },
    /// Nanoseconds per call over a run of `calls` no-op calls with `in_flight` outstanding.
    Flight {
        /// Calls outstanding at any time.
        in_flight: usize,
        /// Calls per run.
        calls: usize,
    },
    /// One nested chain host -> ext -> host -> ... of `depth` calls.
    Nested {
        /// Calls in the chain.
        depth: i64,
    },
    /// Spawning a fresh extension process (venv ready) to its first answered call, in the
    /// sandbox `sandbox` (the default level, or off).
    ColdStart {
        /// The level.
        sandbox: SandboxLevel,
    },
    /// The `crasher` extension's crash to the first call its replacement answers.
    Restart,
    /// One echo of an f32 array of `bytes` bytes in the host's shared-memory pool (made
    /// once per size), host -> Python -> host.
    Array {
        /// The array's size.
        bytes: usize,
    },
    /// One echo of a CUDA device buffer of `bytes` bytes (made once per size on device 0),
    /// host -> Python (a `troupe.CudaArray`) -> host (the host's own buffer again).
    #[cfg(feature = "cuda")]
    DeviceArray {
        /// The buffer's size.
        bytes: usize,
    },
    /// Nanoseconds per item of a run of `items` through a source and a python node.
    PythonNode {
        /// Items per run.
        items: usize,
    },
}

type Inbox = mpsc::UnboundedReceiver<(Job, usize, std_mpsc::Sender<Answer>)>;

/// The lab thread: starts the extensions, says so on `ready`, then serves jobs until the
/// channel closes.
pub(super) fn serve(
    plugins: PathBuf,
    dependencies: Vec<String>,
    mut inbox: Inbox,
    ready: std_mpsc::Sender<Result<(), SystemError>>,
) {
    actix::System::new().block_on(async move {
        let lab = match Extensions::start(&plugins, &dependencies).await {
            Ok(lab) => {
                let _ = ready.send(Ok(()));
                lab
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        while let Some((job, n, reply)) = inbox.recv().await {
            let _ = reply.send(lab.run(job, n).await);
        }
        lab.host.shutdown().await;
    });
}

struct Extensions {
    host: ExtensionHost,
    bench: ExtensionRef,
    crasher: ExtensionRef,
    config: ExtensionConfig,
    venv: Venv,
    /// The array of each size, made once: a fresh one per round would time the child's
    /// unmapping of the last one (the pool gives idle memory back past its bound).
    arrays: std::cell::RefCell<std::collections::HashMap<usize, Array>>,
    /// The device buffer of each size, made once.
    #[cfg(feature = "cuda")]
    device_buffers: std::cell::RefCell<std::collections::HashMap<usize, CudaBuffer>>,
}

fn failed(context: &str, error: impl std::fmt::Display) -> SystemError {
    SystemError::Unsupported(format!("{context}: {error}"))
}

impl Extensions {
    async fn start(plugins: &Path, dependencies: &[String]) -> Result<Extensions, SystemError> {
        let config = ExtensionConfig::new("bench", MODULE)
            .path(plugins)
            .dependencies(dependencies.iter().cloned())
            .call_timeout(Duration::from_secs(60));
        // The crasher comes back at once, however often it dies.
        let crasher = ExtensionConfig::new("crasher", MODULE)
            .path(plugins)
            .restart(RestartSpec {
                policy: RestartPolicy::Permanent,
                limit: RestartLimit {
                    max_restarts: 1_000_000,
                    within: Duration::from_secs(1),
                },
                backoff: Backoff {
                    initial: Duration::ZERO,
                    max: Duration::ZERO,
                    multiplier: 1.0,
                    jitter: 0.0,
                },
            });
        let chain = HostChain::default();
        let slot = chain.extension.clone();
        let host = ExtensionHost::builder()
            .host(ActorBuilder::new("bench-host").spawn(chain).caller())
            .extension(config.clone(), Grants::host_only())
            .extension(crasher, Grants::host_only())
            .start()
            .await;
        if let Some((name, error)) = host.failed().iter().next() {
            return Err(failed(name, error));
        }
        for (name, status) in host.ready().await {
            if !status.is_running() {
                return Err(failed(&name, format!("{status:?}")));
            }
        }
        let pick = |name: &str| host.extension(name).ok_or_else(|| failed(name, "missing"));
        let (bench, crasher) = (pick("bench")?, pick("crasher")?);
        let _ = slot.set(bench.caller());
        let spec = config.env.clone();
        let venv = actix_rt::task::spawn_blocking(move || -> Result<Venv, SystemError> {
            let venv = EnvCache::from_env()?.ensure(&spec, &env::quiet)?;
            provision::provision(&venv).map_err(|e| failed("provisioning", e))?;
            Ok(venv)
        })
        .await
        .map_err(|e| failed("venv task", e))??;
        Ok(Extensions {
            host,
            bench,
            crasher,
            config,
            venv,
            arrays: Default::default(),
            #[cfg(feature = "cuda")]
            device_buffers: Default::default(),
        })
    }

    async fn run(&self, job: Job, n: usize) -> Answer {
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            samples.push(self.sample(job).await?);
        }
        Ok(samples)
    }

    /// The f32 array of `bytes` bytes: in the pool when large enough for shared memory,
    /// inline otherwise.
    fn array_of(&self, bytes: usize) -> Result<Array, SystemError> {
        if let Some(array) = self.arrays.borrow().get(&bytes) {
            return Ok(array.clone());
        }
        let data = if bytes >= SHM_THRESHOLD {
            Pool::global()
                .alloc_with(bytes, |b| b.fill(0x3f))
                .map(Buffer::from)
                .map_err(|e| failed("pool", e))?
        } else {
            Buffer::copy_from_slice(&vec![0x3f; bytes])
        };
        let array =
            Array::new(DType::F32, vec![bytes / 4], data).map_err(|e| failed("array", e))?;
        self.arrays.borrow_mut().insert(bytes, array.clone());
        Ok(array)
    }

    /// The device buffer of `bytes` bytes on device 0.
    #[cfg(feature = "cuda")]
    fn device_buffer_of(&self, bytes: usize) -> Result<CudaBuffer, SystemError> {
        if let Some(buffer) = self.device_buffers.borrow().get(&bytes) {
            return Ok(buffer.clone());
        }
        let device = CudaDevice::shared(0).map_err(|e| failed("cuda", e))?;
        let buffer = CudaBuffer::alloc(&device, DType::U8, &[bytes as u64])
            .map_err(|e| failed("cuda", e))?;
        self.device_buffers
            .borrow_mut()
            .insert(bytes, buffer.clone());
        Ok(buffer)
    }

    async fn sample(&self, job: Job) -> Result<u64, SystemError> {
        let started = Instant::now();
        let per = |count: usize| elapsed_ns(started) / count.max(1) as u64;
        match job {
            Job::Call { payload: 0 } => {
                expect(self.bench.call("noop", Vec::new()).await, Value::Null)?;
            }
            Job::Call { payload } => {
                let data = Value::Bytes(vec![0xAB; payload].into());
                let echoed = self.bench.call("echo", vec![data]).await;
                match echoed {
                    Ok(Value::Bytes(b)) if b.len() == payload => {}
                    other => return Err(failed("echo", format!("{other:?}"))),
                }
            }
            Job::Flight { in_flight, calls } => {
                let per_task = calls.div_ceil(in_flight.max(1));
                let tasks: Vec<_> = (0..in_flight)
                    .map(|_| {
                        let bench = self.bench.clone();
                        actix_rt::spawn(async move {
                            for _ in 0..per_task {
                                bench.call("noop", Vec::new()).await?;
                            }
                            Ok::<(), CallError>(())
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await
                        .map_err(|e| failed("caller task", e))?
                        .map_err(|e| failed("noop", e))?;
                }
                return Ok(per(per_task * in_flight));
            }
            Job::Nested { depth } => {
                let reached = self.bench.call("down", vec![Value::Int(depth)]).await;
                expect(reached, Value::Int(depth))?;
            }
            Job::ColdStart { sandbox } => {
                let config = self.config.clone().sandbox(sandbox);
                let ext = extension::start(config, self.venv.clone(), Arc::new(NoRoutes));
                let answered = ext.call("noop", Vec::new()).await;
                let took = elapsed_ns(started);
                ext.stop().await;
                expect(answered, Value::Null)?;
                return Ok(took);
            }
            Job::Restart => {
                match self.crasher.call("crash", Vec::new()).await {
                    Err(CallError::Crashed(_)) => {}
                    other => return Err(failed("crash", format!("{other:?}"))),
                }
                expect(self.crasher.call("noop", Vec::new()).await, Value::Null)?;
            }
            Job::Array { bytes } => {
                // The same slot must come back (no copy either way) for a pool array.
                let array = self.array_of(bytes)?;
                let key = array.data().pool_key();
                let started = Instant::now();
                let echoed = self.bench.call("echo", vec![Value::Array(array)]).await;
                let took = elapsed_ns(started);
                return match echoed {
                    Ok(Value::Array(back)) if back.data().len() == bytes => {
                        if key.is_some() && back.data().pool_key() != key {
                            return Err(failed("echo", "the array came back as a copy"));
                        }
                        Ok(took)
                    }
                    other => Err(failed("echo", format!("{other:?}"))),
                };
            }
            #[cfg(feature = "cuda")]
            Job::DeviceArray { bytes } => {
                let buffer = self.device_buffer_of(bytes)?;
                let sent = buffer.to_device_array().map_err(|e| failed("cuda", e))?;
                let started = Instant::now();
                let echoed = self
                    .bench
                    .call("echo", vec![Value::DeviceArray(sent)])
                    .await;
                let took = elapsed_ns(started);
                let back = match echoed {
                    Ok(Value::DeviceArray(back)) => back,
                    other => return Err(failed("echo", format!("{other:?}"))),
                };
                // The host's own buffer must come back: a copy fails the row.
                return match DeviceMemory::of(&back) {
                    Ok(DeviceMemory::Owned(own)) if own.device_ptr() == buffer.device_ptr() => {
                        Ok(took)
                    }
                    other => Err(failed(
                        "echo",
                        format!("the device buffer came back as {other:?}"),
                    )),
                };
            }
            Job::PythonNode { items } => {
                through_python_node(self.bench.caller(), "item", items, 1)
                    .await
                    .map_err(|e| failed("pipeline", e))?;
                return Ok(per(items));
            }
        }
        Ok(elapsed_ns(started))
    }
}

fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn expect(result: CallResult, want: Value) -> Result<(), SystemError> {
    match result {
        Ok(value) if value == want => Ok(()),
        other => Err(failed("call", format!("expected {want:?}, got {other:?}"))),
    }
}

/// The host's half of the nested chain: `down(d)` calls the extension's `down(d - 1)`.
#[derive(Default)]
struct HostChain {
    extension: Arc<OnceLock<Caller>>,
}

impl Actor for HostChain {
    type Context = Context<Self>;
}

impl Handler<Call> for HostChain {
    type Result = ResponseFuture<CallResult>;

    fn handle(&mut self, call: Call, _: &mut Context<Self>) -> Self::Result {
        let extension = self.extension.get().cloned();
        Box::pin(async move {
            if call.method() != "down" {
                return Err(call.unknown_method());
            }
            let depth: i64 = call.arg(0)?;
            if depth <= 1 {
                return Ok(Value::Int(1));
            }
            let extension = extension.ok_or(CallError::ActorStopped)?;
            let below = extension
                .call(Call::new("down", vec![Value::Int(depth - 1)]))
                .await?;
            let below = below
                .as_int()
                .ok_or_else(|| CallError::bad_argument("result", "expected int"))?;
            Ok(Value::Int(below + 1))
        })
    }
}
