#!/usr/bin/env python3
"""Point-in-time feature joins: meshgate's point_in_time() against DuckDB's ASOF JOIN.

    benches/.venv/bin/python benches/point_in_time.py --sf 1 [--runs 3] [--meshgate BIN]

Entities are TPC-H orders (o_custkey as the entity key, o_orderdate as the event
time: 1.5 M rows at SF1). Features are a daily table derived from lineitem: per
customer and ship date, the lines shipped, their quantity and their value, computed
"the next morning" (created_at). It is written once as Parquet beside the TPC-H data
(benches/data/sf<SF>/features/customer_daily/) with a mesh file declaring its roles.

Both engines compute the same thing on the same files, in the same run, alternating:
for every order, the customer's latest daily row at or before the order date and at
most 30 days old (NULL otherwise). Two forms are timed:
- `checksum`: an aggregate over the joined rows (count, matched rows, sum of values):
  the join's cost alone;
- `export`: every joined row to the client as Arrow (meshgate over Flight SQL with
  ADBC; DuckDB in process, `.to_arrow_table()`).
- `checksum, features unsorted`: the checksum over a copy of the feature table whose
  rows are shuffled (feature tables are usually written sorted by key and time, which
  meshgate uses; this form shows the cost when they are not).
The checksums must agree, or the run fails. Prints a Markdown report; writes it under
benches/results/.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from meshbench.server import Server  # noqa: E402

TTL_DAYS = 30

# The feature tables' columns and roles (both copies have the same).
FEATURE_SCHEMA = """        schema:
          - { name: c_custkey, type: int64, nullable: false, role: entity_key }
          - { name: feature_date, type: date32, nullable: false, role: event_time }
          - { name: created_at, type: timestamp, nullable: false, role: created_at }
          - { name: lines, type: int64, nullable: false, role: feature }
          - { name: quantity, type: "decimal(25, 2)", role: feature }
          - { name: shipped_value, type: "decimal(25, 2)", role: feature }
"""

MESH = """\
# TPC-H orders as entities and a daily feature table derived from lineitem, for
# benches/point_in_time.py. Written by that script; locations are relative to this file.
catalog: mesh
auth:
  anonymous: {{ name: bench, groups: [bench] }}
governance:
  policies:
    - grants: [{{ id: everyone, effect: permit }}]
      row_filters: [{{ id: all-rows, mode: permissive, filter: "true" }}]
      columns: [{{ id: all-columns, select: "*", action: allow }}]
domains:
  sales:
    owner: sales-data@bench.example
    description: Orders (TPC-H)
    products:
      - name: orders
        description: One row per order
        version: 1.0.0
        location: sales/orders/
        format: parquet
  features:
    owner: ml-platform@bench.example
    description: Features computed from the sales domain
    products:
      - name: customer_daily
        description: Per customer and ship date, what was shipped to them
        version: 1.0.0
        location: features/customer_daily/
        format: parquet
{schema}      - name: customer_daily_shuffled
        description: The same rows as customer_daily, in no particular order
        version: 1.0.0
        location: features/customer_daily_shuffled/
        format: parquet
{schema}"""

ENTITIES = "SELECT o_orderkey, o_custkey AS c_custkey, o_orderdate FROM sales.orders"
FEATURES = "features.customer_daily.lines, features.customer_daily.quantity, features.customer_daily.shipped_value"
MESHGATE_PIT = f"point_in_time('{ENTITIES}', 'o_orderdate', '{FEATURES}', '{TTL_DAYS} days')"
CHECKSUM = "SELECT count(*) AS n, count(lines) AS matched, sum(lines) AS lines, sum(shipped_value) AS value FROM {source}"
MESHGATE_CHECKSUM = CHECKSUM.format(source=MESHGATE_PIT)
MESHGATE_UNSORTED = CHECKSUM.format(source=MESHGATE_PIT.replace("customer_daily.", "customer_daily_shuffled."))
MESHGATE_EXPORT = f"SELECT * FROM {MESHGATE_PIT}"

DUCKDB_PIT = f"""
  (SELECT e.o_orderkey, e.c_custkey, e.o_orderdate,
          CASE WHEN f.feature_date >= e.o_orderdate - INTERVAL {TTL_DAYS} DAY THEN f.lines END AS lines,
          CASE WHEN f.feature_date >= e.o_orderdate - INTERVAL {TTL_DAYS} DAY THEN f.quantity END AS quantity,
          CASE WHEN f.feature_date >= e.o_orderdate - INTERVAL {TTL_DAYS} DAY THEN f.shipped_value END AS shipped_value
   FROM (SELECT o_orderkey, o_custkey AS c_custkey, o_orderdate FROM '{{orders}}') e
   ASOF LEFT JOIN '{{features}}' f
     ON e.c_custkey = f.c_custkey AND f.feature_date <= e.o_orderdate)
"""


def write_features(data: Path) -> Path:
    """The daily feature table (once per data set) and the mesh file."""
    out = data / "features" / "customer_daily"
    if not (out / "part-0.parquet").exists():
        out.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect()
        con.execute(f"""
            COPY (
              SELECT o.o_custkey AS c_custkey, l.l_shipdate AS feature_date,
                     CAST(l.l_shipdate + INTERVAL 1 DAY + INTERVAL 2 HOUR AS TIMESTAMP) AS created_at,
                     count(*) AS lines, CAST(sum(l.l_quantity) AS DECIMAL(25, 2)) AS quantity,
                     CAST(sum(l.l_extendedprice) AS DECIMAL(25, 2)) AS shipped_value
              FROM '{data}/sales/lineitem/*.parquet' l JOIN '{data}/sales/orders/*.parquet' o
                ON l.l_orderkey = o.o_orderkey
              GROUP BY 1, 2 ORDER BY 1, 2
            ) TO '{out}/part-0.parquet' (FORMAT PARQUET, ROW_GROUP_SIZE 122880)
        """)
    shuffled = data / "features" / "customer_daily_shuffled"
    if not (shuffled / "part-0.parquet").exists():
        shuffled.mkdir(parents=True, exist_ok=True)
        duckdb.connect().execute(f"""
            COPY (SELECT * FROM '{out}/part-0.parquet' ORDER BY hash(c_custkey, feature_date))
            TO '{shuffled}/part-0.parquet' (FORMAT PARQUET, ROW_GROUP_SIZE 122880)
        """)
    config = data / "mesh-pit.yaml"
    config.write_text(MESH.format(schema=FEATURE_SCHEMA))
    return config


def timed(run) -> tuple[float, object]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sf", default="1")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--meshgate", default=os.environ.get("MESHGATE_BIN", "target/release/meshgate"))
    args = parser.parse_args()

    data = HERE / "data" / f"sf{args.sf}"
    config = write_features(data)
    features = data / "features" / "customer_daily" / "part-0.parquet"
    duck = duckdb.connect()
    feature_rows = duck.execute(f"SELECT count(*) FROM '{features}'").fetchone()[0]
    duck_pit = DUCKDB_PIT.format(orders=f"{data}/sales/orders/*.parquet", features=features)
    duck_checksum = CHECKSUM.format(source=duck_pit)
    duck_export = f"SELECT * FROM {duck_pit}"
    shuffled = data / "features" / "customer_daily_shuffled" / "part-0.parquet"
    duck_unsorted = CHECKSUM.format(
        source=DUCKDB_PIT.format(orders=f"{data}/sales/orders/*.parquet", features=shuffled))

    import adbc_driver_flightsql.dbapi as flightsql

    server = Server(args.meshgate, str(config), str(HERE / "results" / "point_in_time.server.log"))
    uri = server.start()
    conn = flightsql.connect(uri)
    times: dict[tuple[str, str], list[float]] = {}
    cpu: dict[str, list[float]] = {}
    checks = {}
    try:
        def meshgate(sql):
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetch_arrow_table()

        meshgate(MESHGATE_CHECKSUM)  # warm: footers, listings
        duck.execute(duck_checksum).fetchall()
        for _ in range(args.runs):
            for form, (m_sql, d_sql) in {"checksum": (MESHGATE_CHECKSUM, duck_checksum),
                                         "export": (MESHGATE_EXPORT, duck_export),
                                         "unsorted": (MESHGATE_UNSORTED, duck_unsorted)}.items():
                before = server.cpu_seconds()
                seconds, table = timed(lambda: meshgate(m_sql))
                cpu.setdefault(form, []).append(server.cpu_seconds() - before)
                times.setdefault(("meshgate", form), []).append(seconds)
                if form != "export":
                    checks.setdefault("meshgate", {})[form] = [str(v) for v in table.to_pylist()[0].values()]
                else:
                    rows_exported = table.num_rows
                seconds, result = timed(lambda: duck.execute(d_sql).to_arrow_table() if form == "export" else duck.execute(d_sql).fetchall())
                times.setdefault(("duckdb", form), []).append(seconds)
                if form != "export":
                    checks.setdefault("duckdb", {})[form] = [str(v) for v in result[0]]
    finally:
        conn.close()
        server.stop()

    if checks["meshgate"] != checks["duckdb"] or checks["duckdb"]["checksum"] != checks["duckdb"]["unsorted"]:
        raise SystemExit(f"results differ: meshgate {checks['meshgate']} vs DuckDB {checks['duckdb']}")
    checksum = checks["duckdb"]["checksum"]
    median = {key: statistics.median(values) for key, values in times.items()}
    lines = [
        f"## Point-in-time join, SF{args.sf} ({args.runs} runs, medians)",
        "",
        f"Entities: {checksum[0]} orders; features: {feature_rows} daily rows; TTL {TTL_DAYS} days; "
        f"{checksum[1]} entity rows found a feature row. Checksums equal (sorted and unsorted features): {checksum}.",
        "",
        "| form | meshgate (s) | DuckDB ASOF (s) | ratio | meshgate server CPU (s) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for form in ("checksum", "export", "unsorted"):
        m, d = median[("meshgate", form)], median[("duckdb", form)]
        lines.append(f"| {form} | {m:.3f} | {d:.3f} | {m / d:.2f} | {statistics.median(cpu[form]):.2f} |")
    lines.append("")
    lines.append(f"Rows exported: {rows_exported}.")
    report = "\n".join(lines)
    print(report)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (HERE / "results" / f"{stamp}-sf{args.sf}.point_in_time.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
