#!/bin/bash
# GPU machine side, from the checkout's root with target/gpu-run carried there (made by
# scripts/gpu/prepare_bundle.sh):  bash target/gpu-run/run.sh
# Each step has its own timeout, and the listed limits sum to 530 s so that one 600 s device
# call holds the whole run; a step that would end past $TROUPE_GPU_BUDGET (540 s) is skipped.
# The full log is $OUT/gpu-checks.log (/tmp without $OUT), the cuda-handoff figures
# $OUT/cuda-handoff.json; a summary is printed, and the exit status is 1 when a test binary
# (or the benchmark) failed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# The bridge test binaries find their plugins and venv cache under the build checkout's paths
# (CARGO_MANIFEST_DIR, CARGO_TARGET_TMPDIR are compiled in): make those paths lead here.
link() {
  if [ "$1" != "$2" ] && [ ! -e "$1" ]; then
    mkdir -p "$(dirname "$1")" && ln -s "$2" "$1"
  fi
}
link "$(cat "$HERE/BAKED_ROOT")" "$ROOT"
link "$(cat "$HERE/BAKED_TARGET")" "$ROOT/target"
mkdir -p "$ROOT/target/tmp"
export TROUPE_TEST_SYSTEM_SITE_PACKAGES=1 RUST_BACKTRACE=1
if [ -f "$HERE/uv.xz" ] && xz -dc "$HERE/uv.xz" > "${TMPDIR:-/tmp}/troupe-uv" 2>/dev/null; then
  chmod +x "${TMPDIR:-/tmp}/troupe-uv" && export TROUPE_UV="${TMPDIR:-/tmp}/troupe-uv"
fi
LOG=${OUT:-/tmp}/gpu-checks.log
: > "$LOG"
FAILED=()
BUDGET=${TROUPE_GPU_BUDGET:-540}
step() {
  local limit=$1; shift
  if [ $((SECONDS + limit)) -gt "$BUDGET" ]; then
    echo "=== $(basename "$1") ${*:2}: skipped, ${limit}s from ${SECONDS}s would pass the ${BUDGET}s budget" | tee -a "$LOG"
    return 125
  fi
  echo "=== $(basename "$1") ${*:2} (limit ${limit}s)" | tee -a "$LOG"
  local start=$SECONDS rc
  timeout -k 5 "$limit" "$@" >>"$LOG" 2>&1
  rc=$?
  echo "=== rc=$rc after $((SECONDS - start))s" | tee -a "$LOG"
  return $rc
}
# A test binary: run one test at a time (the z_ tests run last on purpose, and timings
# should not overlap).
tests() {
  local limit=$1 name=$2
  if [ ! -x "$B/$name" ]; then
    echo "=== $name: not in the bundle" | tee -a "$LOG"
    FAILED+=("$name (missing)")
    return
  fi
  step "$limit" "$B/$name" --test-threads=1 --nocapture || FAILED+=("$name")
}
cd "$ROOT"
B=$HERE/bin
# Limits: 10 + 25 + 10 + 15 + 30 + 60 + 50 + 100 + 140 + 90 (the bench, below) = 530 s.
step 10 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
step 25 python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda, torch.cuda.is_available())"
tests 10 no_driver_is_an_error_not_a_panic
tests 15 arrays_reaching_a_process_without_a_driver_are_released_at_once
tests 30 buffers_round_trip_on_a_gpu
tests 60 ipc_handoff_between_processes
tests 50 ipc_edge_cases_on_a_gpu
tests 100 extension_cuda_arrays
tests 140 extension_cuda_edge_cases
# cuda-handoff (quick: 1 MiB, 256 MiB, 4 GiB host -> Python -> host against a device-host-device
# copy), with the release binary; its venv and cache stay under target/tmp.
BENCH=${TMPDIR:-/tmp}/troupe-bench-bin
if [ -f "$HERE/troupe.xz" ] && xz -dc "$HERE/troupe.xz" > "$BENCH" 2>/dev/null; then
  chmod +x "$BENCH"
  export TROUPE_CACHE_DIR="$ROOT/target/tmp/troupe-bench-cache"
  step 90 "$BENCH" bench --quick \
    --scenario cuda-handoff --json "${OUT:-/tmp}/cuda-handoff.json" || FAILED+=("cuda-handoff bench")
else
  echo "=== troupe bench: no troupe.xz in the bundle" | tee -a "$LOG"
  FAILED+=("cuda-handoff bench (missing)")
fi
# Test binaries of troupe-cuda added since this list was written (only while the budget lasts).
for exe in "$B"/*; do
  case $(basename "$exe") in
    no_driver_is_an_error_not_a_panic | arrays_reaching_a_process_without_a_driver_are_released_at_once | \
      buffers_round_trip_on_a_gpu | ipc_handoff_between_processes | ipc_edge_cases_on_a_gpu | \
      extension_cuda_arrays | extension_cuda_edge_cases) ;;
    *) tests 90 "$(basename "$exe")" ;;
  esac
done
# Optional, when time is left: driver API errors seen by compute-sanitizer (failed calls in Drop
# paths are warnings and `teardown_errors()` in troupe-cuda). Expected: "ERROR SUMMARY: 0 errors".
CS=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
if [ -n "$CS" ]; then
  step 60 "$CS" --tool memcheck --leak-check no --report-api-errors all --target-processes all \
    "$B/ipc_handoff_between_processes" --test-threads=1 --exact the_child_reads_what_the_exporter_wrote one_allocation_is_mapped_once_however_often_it_is_sent
fi
echo "----- summary"
grep -aE "^=== |^test |panicked at|Program hit|ERROR SUMMARY|not within|skipped|@@troupe-warning|import took|exports alive|same handle|mappings after|context before|fresh thread|arrived in|bytes show|view_back:|expandable:|empty:|exporter died|orphaned|size \||MiB \||GiB \||no-gpu|cuda-handoff" "$LOG" | cut -c1-300 | head -150
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "FAILED: ${FAILED[*]}"
  exit 1
fi
echo "all test binaries passed"
