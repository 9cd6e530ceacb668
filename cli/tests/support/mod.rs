//! What the CLI tests share.

use std::path::Path;
use std::process::Command;

/// The `troupe` binary, run at the repository root, where the paths of examples/ start.
pub(crate) fn troupe() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_troupe"));
    command.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    command
}
