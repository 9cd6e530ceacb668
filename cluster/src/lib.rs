//! troupe across hosts, over Zenoh.
//!
//! A serving host ([`Server`], `troupe serve`) runs the extensions its manifest names and
//! serves each as a zenoh queryable; a client reaches it as a [`RemoteHost`] and calls its
//! extensions through a [`Caller`](troupe_runtime::Caller), like local ones. Calls are at
//! most once; a missed deadline is `Timeout`, a lost host `HostLost` (see
//! `docs/semantics.md`, *Remote calls*).
//!
//! Only the `tcp/` link (with user/password authentication) and the `quic/` link (with
//! mutual TLS, [`TlsFiles`]) are compiled in; `tls/` is refused ([`EndpointError`]); scouting is off (explicit endpoints only); every host is probed at
//! start-up so an unreachable or wrong host is an error at once, not a retry loop.
//!
//! ```no_run
//! use troupe_cluster::{HostSpec, RemoteHost};
//! use troupe_runtime::Call;
//! use troupe_value::Value;
//!
//! actix::System::new().block_on(async {
//!     let spec = HostSpec::new("gpu1", vec!["tcp/127.0.0.1:7447".parse().unwrap()]);
//!     let host = RemoteHost::connect(spec).await.unwrap();
//!     let asr = host.extension("asr").unwrap();
//!     let text = asr.call(Call::new("transcribe", vec![Value::from("hello.wav")])).await;
//! });
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod admin;
pub mod bind;
pub mod edge;
mod endpoint;
mod error;
mod failover;
pub mod frame;
mod keys;
mod remote;
mod runtime;
mod serve;
mod session;

pub use bind::{Bound, bind, host_spec};
pub use endpoint::{Endpoint, EndpointError, LINKS};
pub use error::ClusterError;
pub use keys::BadName;
pub use remote::RemoteHost;
pub use serve::{Limits, MAX_STREAM_WINDOW, Server};
pub use session::{
    Acl, Credentials, DEFAULT_CALL_TIMEOUT, DEFAULT_LEASE, DEFAULT_PROBE_TIMEOUT, HostSpec,
    ListenSpec, TlsFiles,
};
