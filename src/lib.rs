//! troupe: an actor-system runtime where Rust actors and Python extensions (bridged actors
//! in their own processes and virtualenvs) sit behind the same kind of address, supervised,
//! with bounded mailboxes and zero-copy data.
//!
//! This facade re-exports the public API of the workspace crates:
//! - [`value`]: the value model ([`Value`], [`Array`], [`Audio`], [`VideoFrame`], [`Buffer`])
//!   and its encoding; [`shm`]: shared memory between processes (regions, the pool);
//!   [`protocol`]: the frames a host and a bridged child exchange, and their transport.
//! - [`runtime`]: actors on actix: [`ActorBuilder`], [`Address`], [`Call`], [`Caller`],
//!   [`Registry`], [`supervision`], [`telemetry`], [`resource`].
//! - [`bridge`]: Python extensions as bridged actors ([`bridge::extension`]), their venvs
//!   ([`bridge::env`]) and child processes.
//! - [`pipeline`]: directed acyclic graphs of node actors (sources, processing nodes) with
//!   per-edge backpressure or drop policies, error policies and a run summary.
//! - [`nodes`]: the built-in pipeline nodes (audio, video, text, data) and their catalog.
//! - [`extension_host`]: starts Python extensions with their grants and makes python
//!   pipeline nodes of their methods; [`singleton`]: shared actors (`kv`, or kinds a host
//!   registers) that extensions may be granted.
//! - [`manifest`]: the TOML manifest of extensions, singletons and pipelines, checked before
//!   anything runs; it builds pipelines and feeds the extension host.
//!
//! ```
//! use actix::prelude::*;
//! use troupe::{ActorBuilder, Call, CallResult, Value};
//! use troupe::supervision::RestartSpec;
//!
//! struct Greeter;
//! impl Actor for Greeter { type Context = Context<Self>; }
//! impl Handler<Call> for Greeter {
//!     type Result = CallResult;
//!     fn handle(&mut self, call: Call, _: &mut Context<Self>) -> CallResult {
//!         let name: String = call.arg(0)?;
//!         Ok(Value::from(format!("hello, {name}")))
//!     }
//! }
//!
//! actix::System::new().block_on(async {
//!     let greeter = ActorBuilder::new("greeter").supervise(RestartSpec::default(), || Greeter);
//!     let reply = greeter.address().call(Call::new("greet", vec!["troupe".into()])).await;
//!     assert_eq!(reply, Ok(Value::from("hello, troupe")));
//! });
//! ```

#![warn(missing_docs, unreachable_pub)]

pub use troupe_bridge_python as bridge;
pub use troupe_host::{extension_host, singleton};
pub use troupe_manifest as manifest;
pub use troupe_nodes as nodes;
pub use troupe_pipeline as pipeline;
pub use troupe_protocol as protocol;
pub use troupe_runtime as runtime;
pub use troupe_runtime::{
    ActorBuilder, Address, Call, CallError, CallResult, Caller, Lane, MailboxConfig, MailboxError,
    Registry, RegistryError, TrySendError, resource, supervision, telemetry,
};
pub use troupe_shm as shm;
pub use troupe_value as value;
pub use troupe_value::{Array, Audio, Buffer, DType, Map, PixelFormat, Value, VideoFrame};
