//! The host side of Python extensions: the [`extension_host`] prepares each extension's venv,
//! starts the extensions as bridged actors, routes their calls per their grants and makes
//! python pipeline nodes of their methods; [`singleton`]s are the shared actors extensions
//! (and any other actor) may be granted.
//!
//! ```
//! use troupe_host::singleton::{SingletonKinds, SingletonSpec};
//! use troupe_runtime::{Call, Registry};
//! use troupe_value::{Map, Value};
//!
//! actix::System::new().block_on(async {
//!     let registry = Registry::new();
//!     let store = SingletonSpec { name: "store".into(), kind: "kv".into(), params: Map::new() };
//!     SingletonKinds::builtin().start_all([&store], &registry).unwrap();
//!     let kv = registry.caller("store").unwrap();
//!     kv.call(Call::new("put", vec!["hits".into(), Value::Int(1)])).await.unwrap();
//!     let hits = kv.call(Call::new("incr", vec!["hits".into()])).await;
//!     assert_eq!(hits, Ok(Value::Int(2)));
//! });
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod extension_host;
pub mod singleton;
