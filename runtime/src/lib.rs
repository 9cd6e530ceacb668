//! troupe's actor foundations on actix.
//!
//! - [`ActorBuilder`] starts actors behind a bounded [`Address`] with a priority lane, plain
//!   or [supervised](supervision).
//! - [`Call`] is the dynamic message every actor kind can answer, so local actors and bridged
//!   Python extensions sit behind the same [`Caller`].
//! - [`Registry`] finds actors by name; [`telemetry`] sets up tracing; [`resource`] watches
//!   processes' memory and CPU.
//!
//! ```
//! use actix::prelude::*;
//! use troupe_runtime::{ActorBuilder, Call, CallResult};
//! use troupe_value::Value;
//!
//! struct Echo;
//! impl Actor for Echo { type Context = Context<Self>; }
//! impl Handler<Call> for Echo {
//!     type Result = CallResult;
//!     fn handle(&mut self, call: Call, _: &mut Context<Self>) -> CallResult {
//!         match call.method() {
//!             "echo" => call.arg::<Value>(0),
//!             _ => Err(call.unknown_method()),
//!         }
//!     }
//! }
//!
//! actix::System::new().block_on(async {
//!     let echo = ActorBuilder::new("echo").spawn(Echo).caller();
//!     let reply = echo.call(Call::new("echo", vec![Value::from("hi")])).await;
//!     assert_eq!(reply, Ok(Value::from("hi")));
//! });
//! ```

#![warn(missing_docs, unreachable_pub)]

mod address;
mod call;
mod mailbox;
pub mod metrics;
mod registry;
pub mod resource;
mod spawn;
pub mod stream;
pub mod supervision;
pub mod telemetry;

pub use address::{
    Address, Caller, Lane, MailboxError, PendingCall, Reply, TrySendError, WeakAddress, WeakCaller,
};
pub use call::{Abandoned, Call, CallResult};
pub use mailbox::{
    DEFAULT_CAPACITY, DEFAULT_CONTROL_CAPACITY, Intake, MAX_CAPACITY, MailboxConfig,
};
pub use registry::{Registry, RegistryError};
pub use spawn::ActorBuilder;
pub use stream::{CallStream, ItemSink};
pub use troupe_value::{CallError, Value};
