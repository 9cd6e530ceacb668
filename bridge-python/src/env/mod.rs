//! The venv cache: one virtualenv per distinct (interpreter version, dependency set,
//! `system_site_packages`, troupe version), built once and reused across runs and processes.
//!
//! Layout under the cache root ([`EnvCache::default_root`]: `$TROUPE_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/troupe`, else `~/.cache/troupe`):
//!
//! ```text
//! venvs/<key>/                  a venv; ready only once venvs/<key>/.troupe-complete exists
//! venvs/<key>.lock              serialises building <key> across threads and processes
//! tools/uv-venv/bin/uv          troupe's own uv, installed with pip when none is found
//! ```
//!
//! The marker `.troupe-complete` is written last and atomically, so a venv directory
//! without it is the remains of a crash and is rebuilt. Venvs are built with `uv` when one
//! is found (see [`InstallerChoice`]) and with `python -m venv` + `pip` otherwise.
//!
//! A failure building one venv leaves nothing behind that affects the next [`EnvCache::ensure`]:
//! a host can report it and go on starting its other extensions.

mod bootstrap;
mod cache;
mod command;
mod error;
mod installer;
mod interpreter;
mod inventory;
mod key;
mod lock;
mod marker;
mod progress;
mod spec;

pub use cache::{EnvCache, Venv};
pub use error::EnvError;
pub use installer::{InstallerChoice, InstallerKind};
pub use inventory::CachedEnv;
pub use key::EnvKey;
pub use progress::{EnvProgress, quiet};
pub use spec::EnvSpec;
