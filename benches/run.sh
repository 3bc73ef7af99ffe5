#!/usr/bin/env bash
# meshgate benchmarks: one entry point. See benches/README.md.
#
#   benches/run.sh --sf 1                     everything at TPC-H scale factor 1
#   benches/run.sh --sf 0.1 --runs 1          a quick pass
#   benches/run.sh --queries 1,3,5 --phases tpch --skip-generate
#   benches/run.sh load --duration 180         64 clients, mixed workload (benches/load.py)
#
# Installs what it needs: a Python venv in benches/.venv from the pinned
# benches/requirements.txt, tpchgen-cli into benches/.tools (cargo install, when data
# must be generated), and meshgate itself (cargo build --profile dist -p meshgate, unless
# --meshgate BIN or MESHGATE_BIN names a binary). Then runs benches/tpch.py with the
# same arguments (`benches/run.sh --help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=benches/.venv
stamp="$venv/.requirements.sha256"
want=$(sha256sum benches/requirements.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[bench] installing Python packages into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r benches/requirements.txt >&2
  echo "$want" > "$stamp"
fi

# the report shows the command line as benches/run.sh ARGS
export BENCH_ENTRY="benches/run.sh"

# benches/run.sh load ARGS: the load and soak generator (benches/load.py)
if [ "${1:-}" = load ]; then
  shift
  exec "$venv/bin/python" benches/load.py "$@"
fi

exec "$venv/bin/python" benches/tpch.py "$@"
