#!/usr/bin/env python3
"""Training-data loader throughput: a wide numeric product into torch tensors.

    .venv/bin/python benches/loader.py [--rows 4000000] [--runs 3] [--meshgate BIN]

Runs with the test suite's venv (.venv, made by scripts/test.sh: torch and the meshgate
package are installed there). The product is written once under
benches/data/wide/ (`features.wide`: int64 id, 15 float64, 8 int64 and 8 float32
columns, 8 Parquet files). Side by side, alternating, each phase turning every row into
torch tensors (numeric columns without a copy, as the package does):

- `pyarrow.dataset`: the files read in this process (the baseline);
- `meshgate loader, N workers`: a planned training set (16 shards) read through
  `manifest.to_torch(...).loader(num_workers=N)` (forkserver DataLoader workers, each
  reading its shards from the server), N = 0 (in the training process), 1 and 2; the
  next shard streams while one is read (`read_ahead=1`, the default); the in-process
  read is also timed with `read_ahead=0` (one shard at a time);
- `SELECT * export`: one Flight SQL stream of the whole product (ADBC), batches to
  tensors in this process.

Reports rows/s, MB/s (Arrow bytes), the server's CPU seconds and the client's (the
machine's busy CPU over the phase minus the server's: the client process, its workers
and the forkserver; run it on an idle machine). Client and server share this
machine's cores. Prints a Markdown table and writes it under benches/results/.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from meshbench.server import Server  # noqa: E402

FILES = 8
SHARDS = 16
BATCH = 65_536

MESH = """\
# A wide numeric feature product for benches/loader.py (written by it).
catalog: mesh
auth:
  anonymous: { name: bench, groups: [bench] }
governance:
  policies:
    - grants: [{ id: everyone, effect: permit }]
      row_filters: [{ id: all-rows, mode: permissive, filter: "true" }]
      columns: [{ id: all-columns, select: "*", action: allow }]
domains:
  features:
    owner: ml-platform@bench.example
    description: Wide numeric features
    products:
      - name: wide
        description: 32 numeric columns per row
        version: 1.0.0
        location: features/wide/
        format: parquet
"""


def write_product(root: Path, rows: int) -> Path:
    folder = root / "features" / "wide"
    marker = folder / f".rows-{rows}"
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*"):
            old.unlink()
        rng = np.random.default_rng(7)
        per_file = rows // FILES
        for index in range(FILES):
            start = index * per_file
            columns = {"id": pa.array(np.arange(start, start + per_file, dtype=np.int64))}
            for i in range(15):
                columns[f"f{i:02d}"] = pa.array(rng.standard_normal(per_file))
            for i in range(8):
                columns[f"i{i:02d}"] = pa.array(rng.integers(0, 1_000_000, per_file, dtype=np.int64))
            for i in range(8):
                columns[f"h{i:02d}"] = pa.array(rng.standard_normal(per_file).astype(np.float32))
            pq.write_table(pa.table(columns), folder / f"part-{index}.parquet", row_group_size=131_072)
        marker.touch()
    config = root / "mesh.yaml"
    config.write_text(MESH)
    return config


def busy_cpu_seconds() -> float:
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def to_tensors(batch: pa.RecordBatch) -> int:
    for column in batch.columns:
        torch.from_numpy(column.to_numpy(zero_copy_only=True))
    return batch.nbytes


def run_pyarrow(folder: Path) -> tuple[int, int]:
    rows = size = 0
    for batch in ds.dataset(folder, format="parquet").to_batches(batch_size=BATCH):
        size += to_tensors(batch)
        rows += batch.num_rows
    return rows, size


def run_loader(manifest, workers: int, read_ahead: int = 1) -> tuple[int, int]:
    dataset = manifest.to_torch("all", batch_size=BATCH, read_ahead=read_ahead)
    rows = size = 0
    for batch in dataset.loader(num_workers=workers):
        n = len(batch["id"])
        rows += n
        size += sum(t.element_size() * t.numel() for t in batch.values())
    return rows, size


def run_export(uri: str) -> tuple[int, int]:
    import adbc_driver_flightsql.dbapi as flightsql

    rows = size = 0
    with flightsql.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM features.wide")
        for batch in cur.fetch_record_batch():
            size += to_tensors(batch)
            rows += batch.num_rows
    return rows, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--meshgate", default=os.environ.get("MESHGATE_BIN", "target/release/meshgate"))
    args = parser.parse_args()

    import meshgate

    root = HERE / "data" / "wide"
    config = write_product(root, args.rows)
    server = Server(args.meshgate, str(config), str(HERE / "results" / "loader.server.log"))
    uri = server.start()
    client = meshgate.connect(uri)
    manifest = client.training_set(products="features.wide", shards=SHARDS).plan()
    phases = {
        "pyarrow.dataset (in process)": lambda: run_pyarrow(root / "features" / "wide"),
        "meshgate loader, 0 workers": lambda: run_loader(manifest, 0),
        "meshgate loader, 0 workers, no read-ahead": lambda: run_loader(manifest, 0, read_ahead=0),
        "meshgate loader, 1 worker": lambda: run_loader(manifest, 1),
        "meshgate loader, 2 workers": lambda: run_loader(manifest, 2),
        "SELECT * export (ADBC)": lambda: run_export(uri),
    }
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in phases}
    sizes: dict[str, tuple[int, int]] = {}
    try:
        for phase in phases.values():  # warm: footers, listings, worker start-up code paths
            phase()
        for _ in range(args.runs):
            for name, phase in phases.items():
                busy, served = busy_cpu_seconds(), server.cpu_seconds()
                started = time.perf_counter()
                sizes[name] = phase()
                seconds = time.perf_counter() - started
                server_cpu = server.cpu_seconds() - served
                results[name].append((seconds, server_cpu, busy_cpu_seconds() - busy - server_cpu))
    finally:
        client.close()
        server.stop()

    baseline_rows = sizes["pyarrow.dataset (in process)"][0]
    for name, (rows, _) in sizes.items():
        if rows != baseline_rows:
            raise SystemExit(f"{name} read {rows} rows, not {baseline_rows}")
    base = statistics.median(r[0] for r in results["pyarrow.dataset (in process)"])
    lines = [
        f"## Loader throughput: {baseline_rows:,} rows x 32 numeric columns ({args.runs} runs, medians)",
        "",
        "| phase | seconds | rows/s | MB/s | vs pyarrow.dataset | server CPU s | client CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, runs in results.items():
        seconds = statistics.median(r[0] for r in runs)
        server_cpu = statistics.median(r[1] for r in runs)
        client_cpu = statistics.median(r[2] for r in runs)
        rows, size = sizes[name]
        lines.append(
            f"| {name} | {seconds:.2f} | {rows / seconds:,.0f} | {size / seconds / 1e6:,.0f} | "
            f"{base / seconds:.2f} | {server_cpu:.2f} | {client_cpu:.2f} |"
        )
    report = "\n".join(lines)
    print(report)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (HERE / "results" / f"{stamp}.loader.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
