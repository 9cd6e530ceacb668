//! Builds the child side's extension module (`child/`, `troupe._native`) so the bridge can
//! embed it and write it into every venv: nothing to build beyond cargo.
//!
//! The child crate is built with the same cargo, in release mode, into its own target
//! directory under `OUT_DIR` (so its PyO3 features never unify with anything else), and the
//! library is copied to `OUT_DIR/_native.abi3.so` for `include_bytes!`. Cargo's own
//! fingerprints make a rerun with unchanged sources a no-op. The child gets the `cuda`
//! feature when the bridge has it, and only then.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The file `src/provision.rs` embeds.
const EMBEDDED: &str = "_native.abi3.so";

fn main() -> ExitCode {
    match build_child() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: troupe-bridge-python: {message}");
            ExitCode::FAILURE
        }
    }
}

fn var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|_| format!("cargo did not set {name}"))
}

fn build_child() -> Result<(), String> {
    let manifest_dir = PathBuf::from(var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .ok_or("the bridge crate has no parent directory")?;
    let child = manifest_dir.join("child");
    // Cargo sets it for a build script when the package's feature is on.
    let cuda = env::var_os("CARGO_FEATURE_CUDA").is_some();
    let mut sources = vec![
        child.join("src"),
        child.join("Cargo.toml"),
        manifest_dir.join("pyvalue/src"),
        manifest_dir.join("pyvalue/Cargo.toml"),
        workspace.join("runtime/shm/src"),
        workspace.join("runtime/shm/Cargo.toml"),
        workspace.join("runtime/value/src"),
        workspace.join("runtime/value/Cargo.toml"),
        manifest_dir.join("protocol/src"),
        manifest_dir.join("protocol/Cargo.toml"),
        workspace.join("Cargo.lock"),
    ];
    if cuda {
        sources.push(workspace.join("runtime/cuda/src"));
        sources.push(workspace.join("runtime/cuda/Cargo.toml"));
    }
    for path in sources {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    for name in ["CARGO_NET_OFFLINE", "RUSTFLAGS"] {
        println!("cargo:rerun-if-env-changed={name}");
    }

    let out_dir = PathBuf::from(var("OUT_DIR")?);
    let target_dir = out_dir.join("child-target");
    let target = var("TARGET")?;
    let cross = target != var("HOST")?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--locked", "--lib", "--manifest-path"])
        .arg(child.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--no-default-features");
    if cuda {
        command.args(["--features", "cuda"]);
    }
    if cross {
        command.args(["--target", &target]);
    }
    command
        // An extension module: never link libpython, never look for an interpreter.
        .env("PYO3_BUILD_EXTENSION_MODULE", "1")
        .env("PYO3_NO_PYTHON", "1")
        // The workspace's release profile keeps debug info; the embedded module need not.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        // What the outer cargo set for its own build must not leak into this one: clippy's
        // wrapper, the outer target dir, the outer target's flags.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        // Cargo reads build-script stdout for directives: keep the child build off it.
        .stdout(std::process::Stdio::null());

    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo to build the child module: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the child module ({}) failed ({status}); its errors are above",
            child.display()
        ));
    }

    let profile_dir = if cross {
        target_dir.join(&target).join("release")
    } else {
        target_dir.join("release")
    };
    let library = profile_dir.join(library_name()?);
    copy_if_changed(&library, &out_dir.join(EMBEDDED))
}

/// The file cargo names the child's cdylib on the target.
fn library_name() -> Result<String, String> {
    let (prefix, suffix) = match var("CARGO_CFG_TARGET_OS")?.as_str() {
        "windows" => ("", "dll"),
        "macos" | "ios" => ("lib", "dylib"),
        _ => ("lib", "so"),
    };
    Ok(format!("{prefix}troupe_child.{suffix}"))
}

/// Copies `from` to `to` unless `to` already holds the same bytes (so an unchanged module
/// does not make the bridge crate recompile).
fn copy_if_changed(from: &Path, to: &Path) -> Result<(), String> {
    let bytes = fs::read(from)
        .map_err(|e| format!("cannot read the child module {}: {e}", from.display()))?;
    if fs::read(to).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    fs::write(to, bytes).map_err(|e| format!("cannot write {}: {e}", to.display()))
}
