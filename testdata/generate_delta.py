"""Writes the demo mesh's Delta table, supply.stock_movements, with two versions.

    python testdata/generate_delta.py     # also run at the end of generate.py

Version 0 creates the table with 40 stock movements; version 1 appends 20 more. The
Parquet files are written with pyarrow and the Delta log by hand (protocol 1/2, no
checkpoint), with fixed ids and times, so with the same pyarrow version the output is
byte-identical on every run. Each movement is of a (part, supplier) pair that exists
in supply.partsupp, so the table joins with the rest of the mesh.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import shutil

import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "data", "supply", "stock_movements")
PARTSUPP = os.path.join(HERE, "data", "supply", "partsupp", "partsupp.parquet")

SCHEMA = pa.schema([
    pa.field("m_movementkey", pa.int64(), nullable=False),
    pa.field("m_partkey", pa.int64(), nullable=False),
    pa.field("m_suppkey", pa.int64(), nullable=False),
    pa.field("m_quantity", pa.int32()),
    pa.field("m_reason", pa.string()),
    pa.field("m_date", pa.date32()),
])
DELTA_TYPES = {pa.int64(): "long", pa.int32(): "integer", pa.string(): "string", pa.date32(): "date"}
REASONS = ["receipt", "shipment", "adjustment"]
TABLE_ID = "8d1f3c2a-5b7e-4f60-9a1d-2c3b4d5e6f70"
# Commit times (ms): 2026-11-01T08:00:00Z and 2026-11-15T08:00:00Z.
COMMIT_MS = [1793520000000, 1794729600000]


def movements(rng: random.Random, pairs: list[tuple[int, int]], first_key: int, n: int, start: datetime.date):
    rows = []
    for i in range(n):
        part, supp = pairs[rng.randrange(len(pairs))]
        reason = REASONS[rng.randrange(len(REASONS))]
        quantity = rng.randint(1, 500) * (-1 if reason == "shipment" else 1)
        rows.append((first_key + i, part, supp, quantity, reason, start + datetime.timedelta(days=i // 4)))
    return rows


def write_file(rows, name: str) -> dict:
    columns = list(zip(*rows))
    table = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, SCHEMA)], schema=SCHEMA)
    path = os.path.join(TABLE, name)
    pq.write_table(table, path, compression="snappy")
    stats = {
        "numRecords": len(rows),
        "minValues": {f.name: _stat(min(c)) for c, f in zip(columns, SCHEMA)},
        "maxValues": {f.name: _stat(max(c)) for c, f in zip(columns, SCHEMA)},
        "nullCount": {f.name: 0 for f in SCHEMA},
    }
    return {"path": name, "size": os.path.getsize(path), "stats": json.dumps(stats, separators=(",", ":"))}


def _stat(value):
    return value.isoformat() if isinstance(value, datetime.date) else value


def commit(version: int, actions: list[dict]) -> None:
    log = os.path.join(TABLE, "_delta_log")
    os.makedirs(log, exist_ok=True)
    with open(os.path.join(log, "%020d.json" % version), "w", newline="\n") as out:
        for action in actions:
            out.write(json.dumps(action, separators=(",", ":")) + "\n")


def add(file: dict, at_ms: int) -> dict:
    return {"add": {"path": file["path"], "partitionValues": {}, "size": file["size"], "modificationTime": at_ms,
                    "dataChange": True, "stats": file["stats"]}}


def commit_info(at_ms: int, mode: str) -> dict:
    return {"commitInfo": {"timestamp": at_ms, "operation": "WRITE", "operationParameters": {"mode": mode},
                           "clientVersion": "meshgate-testdata"}}


def main() -> None:
    if os.path.exists(TABLE):
        shutil.rmtree(TABLE)
    os.makedirs(TABLE)
    pairs = sorted(zip(*pq.read_table(PARTSUPP, columns=["ps_partkey", "ps_suppkey"]).to_pydict().values()))
    rng = random.Random(42)
    first = write_file(movements(rng, pairs, 1, 40, datetime.date(2026, 10, 20)), "part-00000-v0.parquet")
    second = write_file(movements(rng, pairs, 41, 20, datetime.date(2026, 11, 10)), "part-00001-v1.parquet")
    schema = {"type": "struct", "fields": [
        {"name": f.name, "type": DELTA_TYPES[f.type], "nullable": f.nullable, "metadata": {}} for f in SCHEMA]}
    commit(0, [
        commit_info(COMMIT_MS[0], "ErrorIfExists"),
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
        {"metaData": {"id": TABLE_ID, "name": "stock_movements", "format": {"provider": "parquet", "options": {}},
                      "schemaString": json.dumps(schema, separators=(",", ":")), "partitionColumns": [],
                      "configuration": {}, "createdTime": COMMIT_MS[0]}},
        add(first, COMMIT_MS[0]),
    ])
    commit(1, [commit_info(COMMIT_MS[1], "Append"), add(second, COMMIT_MS[1])])
    for version, at_ms in enumerate(COMMIT_MS):
        os.utime(os.path.join(TABLE, "_delta_log", "%020d.json" % version), (at_ms / 1000, at_ms / 1000))
    for name in sorted(os.listdir(TABLE)):
        path = os.path.join(TABLE, name)
        if os.path.isfile(path):
            print("%-48s %9d bytes" % (os.path.relpath(path, HERE), os.path.getsize(path)))


if __name__ == "__main__":
    main()
