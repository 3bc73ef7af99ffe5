#!/usr/bin/env bash
# The whole meshgate test suite: Rust unit and integration tests, then the Python
# client tests (ADBC, pyarrow.flight, polars, DuckDB, a loopback S3 server) against
# the real binary. Installs what it needs: a Python venv from the pinned
# tests/python/requirements.txt, kept outside the checkout (MESHGATE_VENV, by default
# ~/.cache/meshgate-venv) so that fresh clones share one copy of torch and the rest.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meshgate-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

./scripts/protoc.sh  # Substrait's protobuf definitions are compiled at build time

echo "==> building meshgate and its tests"
cargo build --locked --workspace --all-targets

echo "==> Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast
else
  cargo test --locked --workspace --no-fail-fast
fi

echo "==> Python client tests"
venv="${MESHGATE_VENV:-$HOME/.cache/meshgate-venv}"
mkdir -p "$(dirname "$venv")"
stamp="$venv/.requirements.sha256"
want=$(sha256sum tests/python/requirements.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  echo "$want" > "$stamp"
fi
# the meshgate Python package (python/), installed anew on every run: test_ml_loader uses it
"$venv/bin/pip" install --no-deps --quiet --disable-pip-version-check ./python
./scripts/browser-deps.sh || echo "==> browser test dependencies missing: test_web_browser will fail" >&2
export MESHGATE_BIN="$CARGO_TARGET_DIR/debug/meshgate"
"$venv/bin/python" -m pytest -q -s -p no:cacheprovider -W "ignore:Cannot disable autocommit" tests/python

echo "==> fuzz smoke pass (every target 20 s from the test build; scripts/fuzz.sh runs them under libFuzzer)"
./scripts/fuzz-smoke.sh "${MESHGATE_FUZZ_SECS:-20}"
