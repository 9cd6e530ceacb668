#!/bin/bash
# CPU side, from anywhere in the checkout:  bash scripts/gpu/prepare_bundle.sh
# Builds the GPU test binaries (troupe-cuda's tests and the bridge's CUDA tests) and the release
# `troupe` binary (for `troupe bench --scenario cuda-handoff`), strips them, and stages them with
# uv and run.sh in $CARGO_TARGET_DIR/gpu-run (target/gpu-run by default; under 64 MiB, the
# device call's carry limit), to carry to the GPU machine and run there with
# `bash target/gpu-run/run.sh`.
# Honours CARGO_TARGET_DIR, and CARGO_BUILD_JOBS for a machine with few cores.
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET/gpu-run
rm -rf "$OUT"
mkdir -p "$OUT/bin"

# Prints "<test name> <executable>" for every test binary cargo builds.
build() {
  cargo test --no-run --message-format=json "$@" | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m.get("profile", {}).get("test"):
        print(m["target"]["name"], m["executable"])'
}
# Every test file of troupe-cuda (the CPU-only ones are cheap and check the plumbing), and the
# bridge's CUDA tests.
cuda_tests=()
for file in runtime/cuda/tests/*.rs; do
  cuda_tests+=(--test "$(basename "$file" .rs)")
done
{
  build -p troupe-cuda "${cuda_tests[@]}"
  build -p troupe-bridge-python --test extension_cuda_arrays --test extension_cuda_edge_cases
} | while read -r name exe; do
  cp "$exe" "$OUT/bin/$name"
  strip "$OUT/bin/$name"
done

# The release `troupe` binary: run.sh measures cuda-handoff with it after the tests (its
# extension needs no package, so the bench's venv builds without an index). It travels
# xz-compressed, as uv does.
cargo build --release -p troupe-cli --bin troupe
strip -o "$OUT/troupe" "$TARGET/release/troupe"
xz -T1 -6 -f "$OUT/troupe"

# uv builds the bridge tests' venv on the GPU machine (no package index there: the venv uses
# the system site-packages). The binary itself, not a shim (pyenv's `uv` is a shell script).
is_elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" | tail -c 3)" = ELF ]; }
UV=""
for candidate in "${TROUPE_UV:-}" "$(command -v uv || true)" "$(pyenv which uv 2>/dev/null || true)" \
    "$TARGET/tmp/troupe-test-venvs/tools/uv-venv/bin/uv" "$HOME/.cache/troupe/tools/uv-venv/bin/uv"; do
  if [ -n "$candidate" ] && is_elf "$candidate"; then UV=$candidate; break; fi
done
# uv (38 MiB) travels xz-compressed (~12 MiB) to stay well under the 64 MiB carry limit.
if [ -n "$UV" ]; then
  xz -T1 -6 -c "$UV" > "$OUT/uv.xz"
else
  echo "no uv binary found: the GPU machine will fall back to python -m venv"
fi
# The bridge test binaries find their plugins and venv cache under the paths they were built
# at (CARGO_MANIFEST_DIR, CARGO_TARGET_TMPDIR are compiled in): run.sh links them to its copy.
echo "$ROOT" > "$OUT/BAKED_ROOT"
echo "$TARGET" > "$OUT/BAKED_TARGET"
cp "$(dirname "$0")/run.sh" "$OUT/run.sh"
ls -la "$OUT" "$OUT/bin"
du -sh "$OUT"
KIB=$(du -sk "$OUT" | cut -f1)
if [ "$KIB" -ge $((64 * 1024)) ]; then
  echo "the bundle is ${KIB} KiB: over the 64 MiB a device call may carry" >&2
  exit 1
fi
