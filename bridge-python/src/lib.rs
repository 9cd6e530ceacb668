//! troupe's process bridge to Python extensions: each extension runs as a child process
//! inside its own virtualenv.
//!
//! - [`env`] finds or builds the venv for an extension's dependency set, once per
//!   (interpreter, dependencies, troupe version), shared by every host on the machine.
//!
//! ```no_run
//! use troupe_bridge_python::env::{self, EnvCache, EnvSpec};
//!
//! let cache = EnvCache::from_env()?;
//! let venv = cache.ensure(&EnvSpec::new(["six==1.16.0"]), &env::quiet)?;
//! println!("run {}", venv.python.display());
//! # Ok::<(), troupe_bridge_python::env::EnvError>(())
//! ```

pub mod env;
pub mod extension;
pub mod process;
pub mod provision;
#[cfg(feature = "testing")]
pub mod testing;

pub use env::{EnvCache, EnvError, EnvSpec, Venv};
