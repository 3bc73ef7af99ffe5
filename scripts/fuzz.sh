#!/usr/bin/env bash
# Builds meshgate's fuzz targets under libFuzzer with coverage instrumentation (fuzz/,
# cargo-fuzz; a second build of the whole stack, in its own target directory) and runs
# each for a set time on its corpus: seeds made from the test suite's inputs, plus
# whatever earlier runs found, plus fuzz/regressions/<target>/ (inputs that once
# failed). The test suite's smoke pass runs the same targets without this build:
# scripts/fuzz-smoke.sh.
#
#   scripts/fuzz.sh                    # 20 s a target
#   scripts/fuzz.sh 3600 governed_sql  # an hour of one target
#
# A failing input is saved under $MESHGATE_FUZZ_DIR/artifacts/<target>/ and the script
# fails. docs/robustness.md lists the targets, what each checks, and the runs so far.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
shift || true

tools="$HOME/.cache/meshgate-tools"
export PATH="$tools/bin:$PATH"
if ! cargo fuzz --version 2>/dev/null | grep -q "0.13.2"; then
  echo "==> installing cargo-fuzz into $tools"
  cargo install cargo-fuzz --version 0.13.2 --locked --root "$tools" --quiet
fi

# Coverage-instrumented builds differ from the workspace's: their own target directory.
export CARGO_TARGET_DIR="${MESHGATE_FUZZ_TARGET_DIR:-$HOME/.cache/meshgate-fuzz-target}"
work="${MESHGATE_FUZZ_DIR:-$HOME/.cache/meshgate-fuzz}"
mkdir -p "$work"
./scripts/protoc.sh

# No sanitizer: safe Rust (unsafe_code is forbidden in meshgate's crates) gains little
# from AddressSanitizer and it doubles the build. 16 codegen units: cargo-fuzz's
# default of one makes a cold build of DataFusion take most of an hour here.
build=(--sanitizer none --codegen-units 16 --fuzz-dir fuzz)
echo "==> building the fuzz targets"
cargo fuzz build "${build[@]}"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  # Targets with an open finding (fuzz/open-findings says which and why) run only when named.
  mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz | grep -vxF -f <(sed -e 's/#.*//' -e '/^ *$/d' -e 's/ .*//' fuzz/open-findings))
fi

if [ "$seconds" -le 60 ]; then
  # A smoke pass starts from a fresh corpus of a few seeds, so it runs the same
  # inputs on every machine and spends its time fuzzing, not replaying a big corpus.
  corpora=$(mktemp -d)
  trap 'rm -rf "$corpora"' EXIT
  python3 fuzz/seeds.py "$corpora" 64
else
  corpora="$work/corpus"
  python3 fuzz/seeds.py "$corpora"
fi
failed=()
for target in "${targets[@]}"; do
  corpus="$corpora/$target"
  artifacts="$work/artifacts/$target"
  mkdir -p "$corpus" "$artifacts" "fuzz/regressions/$target"
  echo "==> fuzzing $target for ${seconds}s"
  if ! cargo fuzz run "${build[@]}" "$target" "$corpus" "fuzz/regressions/$target" -- \
      -max_total_time="$seconds" -timeout=30 -rss_limit_mb=3072 -max_len=65536 \
      -artifact_prefix="$artifacts/" -print_final_stats=1 2> "$work/$target.log"; then
    failed+=("$target")
    echo "==> $target FAILED; its log: $work/$target.log; the input: $artifacts/" >&2
    grep -A30 -m1 "panicked\|ERROR: libFuzzer\|==ERROR" "$work/$target.log" >&2 || tail -40 "$work/$target.log" >&2
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added|Done [0-9]+ runs" "$work/$target.log" | tr '\n' ' '
    echo
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "==> fuzz targets failed: ${failed[*]}" >&2
  exit 1
fi
