#!/usr/bin/env bash
# The fuzz targets' smoke pass, which scripts/test.sh runs: every target for SECONDS
# (default 20) under the blind mutator built with the workspace (crates/meshgate-fuzz,
# the fuzz-smoke binary), from seeds made from the test suite (fuzz/seeds.py) and the
# inputs in fuzz/regressions/<target>/. It catches a target that no longer builds or
# crashes quickly, without a second, coverage-instrumented build of the stack;
# scripts/fuzz.sh runs the same targets under libFuzzer for the long runs.
#
#   scripts/fuzz-smoke.sh [SECONDS] [TARGET ...]
#
# A crashing or hanging input is saved under $MESHGATE_FUZZ_DIR/smoke-artifacts/<target>/
# and the script fails. To replay saved inputs, name their folder as a corpus:
#   $CARGO_TARGET_DIR/debug/fuzz-smoke TARGET 0 /tmp/out FOLDER
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
shift || true

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meshgate-target}"
bin="$CARGO_TARGET_DIR/debug/fuzz-smoke"
# The test build (the whole workspace: building one package resolves other features
# and rebuilds dependencies); nothing to do when scripts/test.sh has just built it.
./scripts/protoc.sh >/dev/null
cargo build --locked --workspace --all-targets

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  # Targets with an open finding (fuzz/open-findings says which and why) run only when named.
  mapfile -t targets < <(ls fuzz/fuzz_targets | sed 's/\.rs$//' \
    | grep -vxF -f <(sed -e 's/#.*//' -e '/^ *$/d' -e 's/ .*//' fuzz/open-findings) || true)
fi

corpora=$(mktemp -d)
trap 'rm -rf "$corpora"' EXIT
python3 fuzz/seeds.py "$corpora" 64
work="${MESHGATE_FUZZ_DIR:-$HOME/.cache/meshgate-fuzz}/smoke-artifacts"
failed=()
for target in "${targets[@]}"; do
  mkdir -p "$corpora/$target" "fuzz/regressions/$target"
  if ! "$bin" "$target" "$seconds" "$work/$target" "$corpora/$target" "fuzz/regressions/$target"; then
    failed+=("$target")
    echo "==> fuzz target $target FAILED; the input is in $work/$target/" >&2
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "==> fuzz targets failed: ${failed[*]}" >&2
  exit 1
fi
