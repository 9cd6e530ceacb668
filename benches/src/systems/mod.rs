//! The systems the cross-process scenarios measure: troupe's bridged extension host
//! (`troupe-bridged`), the physical floors (`uds-floor`, `ipc-floor`: a Rust child echoing
//! frames), the peer (`pyisolate`) and troupe's Python host (`troupe-python-host`).
//!
//! A cross-process scenario implements [`CrossProcess`]: one function per system, each
//! opening its rows ([`Series`]) or returning a [`SystemError`] that becomes a row-less
//! `skip` note. A system that cannot run (no network for the pyisolate venv, a child
//! that never connects) never fails the bench.

pub(crate) mod bridged;
mod cross;
mod driver;
mod error;
pub(crate) mod floor;
pub(crate) mod ipc_floor;
pub(crate) mod pyisolate;
pub(crate) mod python_host;
mod spawn;
pub(crate) mod uds_floor;

pub(crate) use cross::{CrossProcess, Outcome, Sampler, Series, with_rate};
pub(crate) use error::SystemError;
pub(crate) use spawn::child_main_if_requested;

/// The name of troupe's bridged extension host in rows.
pub(crate) const TROUPE_BRIDGED: &str = "troupe-bridged";
