"""The acceleration phase (issue 15): TPC-H with every product accelerated.

A second meshgate server serves the same data with the mesh-wide acceleration default
(`refresh: manual`, budget large enough for the scale factor), and is measured side by
side with, in this process:

    duckdb           DuckDB on the Parquet files (views over read_parquet)
    duckdb-memory    DuckDB with every table loaded into memory first
    datafusion-memory  DataFusion (datafusion-python) with every table in memory

as the unrestricted principal (its row filter keeps every row) and as the governance
phase's analyst principal; and a third server with a memory budget of one byte and a
spill directory, so every copy is spilled to local Arrow IPC files (meshgate-spilled,
unrestricted principal). Every engine's result is checked against DuckDB on Parquet.
Also measured: how long building the copies took and the memory they hold per GB of
Parquet (from the server's log and RSS), the export CPU ratio (server CPU seconds to
send lineitem from memory over one pyarrow.flight stream, over the CPU seconds
in-process DataFusion needs to scan the Parquet files to Arrow), and the point query
through ADBC from an accelerated product.
"""

from __future__ import annotations

import os
import re
import time

ACCELERATION_YAML = """
acceleration:
  budget: {budget}
  default: {{ engine: memory, refresh: manual }}
"""
SPILLED_YAML = """
acceleration:
  budget: 1B
  spill: {{ directory: {directory} }}
  default: {{ engine: memory, refresh: manual }}
"""
BUILT = re.compile(r"accelerated: served from memory product=(\S+) rows=(\d+) bytes=(\d+) seconds=([0-9.]+)")
SPILLED = re.compile(r"accelerated: served from local files[^\n]*? product=(\S+) rows=(\d+) disk_bytes=(\d+) "
                     r"seconds=([0-9.]+)")
EXPORT_SQL = "SELECT * FROM sales.lineitem"


class _MemoryDuckDB:
    name = "duckdb-memory"

    def __init__(self, data_dir: str):
        import duckdb

        from . import data

        self.con = duckdb.connect()
        for domain, spec in data.DOMAINS.items():
            self.con.execute(f"CREATE SCHEMA {domain}")
            for table in spec["products"]:
                pattern = os.path.join(os.path.abspath(data.table_dir(data_dir, table)), "*.parquet")
                self.con.execute(f"CREATE TABLE {domain}.{table} AS SELECT * FROM read_parquet('{pattern}')")

    def run(self, sql: str):
        return self.con.sql(sql).to_arrow_table()

    def close(self) -> None:
        self.con.close()


class _MemoryDataFusion:
    name = "datafusion-memory"

    def __init__(self, data_dir: str):
        from datafusion import SessionContext

        from . import data

        self.ctx = SessionContext()
        for domain, spec in data.DOMAINS.items():
            self.ctx.sql(f"CREATE SCHEMA {domain}")
            self.ctx.sql(f"CREATE SCHEMA files_{domain}")
            for table in spec["products"]:
                loc = os.path.abspath(data.table_dir(data_dir, table)) + "/"
                self.ctx.sql(f"CREATE EXTERNAL TABLE files_{domain}.{table} STORED AS PARQUET LOCATION '{loc}'")
                # CREATE TABLE AS: a memory table, partitioned for the cores.
                self.ctx.sql(f"CREATE TABLE {domain}.{table} AS SELECT * FROM files_{domain}.{table}").collect()

    def run(self, sql: str):
        return self.ctx.sql(sql).to_arrow_table()

    def close(self) -> None:
        pass


def _datafusion_scan_cpu(data_dir: str, process_cpu) -> float:
    """CPU seconds in-process DataFusion takes to scan lineitem's Parquet files to Arrow."""
    from datafusion import SessionContext

    from . import data

    ctx = SessionContext()
    ctx.sql("CREATE SCHEMA sales")
    loc = os.path.abspath(data.table_dir(data_dir, "lineitem")) + "/"
    ctx.sql(f"CREATE EXTERNAL TABLE sales.lineitem STORED AS PARQUET LOCATION '{loc}'")
    for batch in ctx.sql(EXPORT_SQL).execute_stream():  # warm-up (page cache)
        batch.to_pyarrow()
    before = process_cpu()
    for batch in ctx.sql(EXPORT_SQL).execute_stream():
        batch.to_pyarrow()
    return process_cpu() - before


def phase_accelerated(args, binary: str, mesh: str, data_dir: str, base: str, *,
                      load_query, latency_stats, median, geomean, first_line, log, process_cpu, point_sql) -> dict:
    from . import compare, flight_export, governance
    from .engines import DuckDB, Meshgate
    from .server import Server

    parquet_bytes = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(data_dir)
                        for f in files if f.endswith(".parquet"))
    budget = max(6 * parquet_bytes, 1 << 30)  # copies took 3.9 bytes per Parquet byte at SF1
    # Beside the served mesh: its products' locations are relative to its directory.
    accelerated_mesh = os.path.splitext(mesh)[0] + "-accelerated.yaml"
    with open(mesh) as src, open(accelerated_mesh, "w") as dst:
        dst.write(src.read() + ACCELERATION_YAML.format(budget=f"{budget}B"))
    log_path = base + ".accelerated.server.log"
    server = Server(binary, accelerated_mesh, log_path)
    spill_dir = os.path.abspath(base + ".spill")
    spilled_mesh = os.path.splitext(mesh)[0] + "-spilled.yaml"
    with open(mesh) as src, open(spilled_mesh, "w") as dst:
        dst.write(src.read() + SPILLED_YAML.format(directory=spill_dir))
    spilled_log = base + ".spilled.server.log"
    spilled_server = Server(binary, spilled_mesh, spilled_log)
    out: dict = {"parquet_bytes": parquet_bytes, "queries": {}, "errors": []}
    engines: dict = {}
    try:
        t0 = time.perf_counter()
        uri = server.start()
        out["startup_seconds"] = time.perf_counter() - t0
        out["rss_after_load_kb"] = server.vm_hwm_kb()
        with open(log_path) as f:
            built = [m.groups() for m in BUILT.finditer(f.read())]
        out["copies"] = {name: {"rows": int(rows), "bytes": int(size), "seconds": float(secs)}
                         for name, rows, size, secs in built}
        copy_bytes = sum(c["bytes"] for c in out["copies"].values())
        out["copy_bytes"] = copy_bytes
        out["copy_seconds"] = sum(c["seconds"] for c in out["copies"].values())
        out["bytes_per_parquet_byte"] = copy_bytes / parquet_bytes if parquet_bytes else None
        log(f"accelerated meshgate at {uri}: {len(built)} copies, {copy_bytes / 2**20:,.0f} MiB "
            f"({out['bytes_per_parquet_byte']:.2f}x the Parquet), built in {out['copy_seconds']:.1f}s")

        spilled_uri = spilled_server.start()
        with open(spilled_log) as f:
            spilled = [m.groups() for m in SPILLED.finditer(f.read())]
        out["spilled"] = {"copies": len(spilled), "disk_bytes": sum(int(size) for _, _, size, _ in spilled),
                          "seconds": sum(float(secs) for *_, secs in spilled)}
        log(f"spilled meshgate at {spilled_uri}: {len(spilled)} copies, "
            f"{out['spilled']['disk_bytes'] / 2**20:,.0f} MiB on disk, built in {out['spilled']['seconds']:.1f}s")

        engines = {
            "meshgate": Meshgate(uri),
            "meshgate-analyst": Meshgate(uri, user=governance.GOVERNED_USER, password=governance.GOVERNED_PASSWORD),
            "meshgate-spilled": Meshgate(spilled_uri),
            "duckdb": DuckDB(data_dir),
        }
        t0 = time.perf_counter()
        engines["duckdb-memory"] = _MemoryDuckDB(data_dir)
        out["duckdb_load_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        engines["datafusion-memory"] = _MemoryDataFusion(data_dir)
        out["datafusion_load_seconds"] = time.perf_counter() - t0

        for n in args.queries:
            qid = f"q{n:02d}"
            sql = load_query(n)
            q: dict = {"median": {}, "errors": {}, "checks": {}}
            results = {}
            for name, eng in engines.items():
                try:
                    results[name] = eng.run(sql)
                    times = []
                    for _ in range(args.runs):
                        t = time.perf_counter()
                        eng.run(sql)
                        times.append(time.perf_counter() - t)
                    q["median"][name] = median(times)
                except Exception as e:  # noqa: BLE001
                    q["errors"][name] = first_line(e)
            for name, table in results.items():
                if name in ("duckdb", "meshgate-analyst") or "duckdb" not in results:
                    continue  # the analyst's masks change values: timed, not compared
                ok, why = compare.compare(results["duckdb"], table, sql)
                q["checks"][name] = {"ok": ok, "detail": why}
                if not ok:
                    out["errors"].append(f"{qid} {name}: results differ from DuckDB's: {why}")
            for name, err in q["errors"].items():
                out["errors"].append(f"{qid} {name}: {err}")
            m = q["median"]
            if "meshgate" in m and "duckdb" in m:
                q["ratio_duckdb"] = m["meshgate"] / m["duckdb"]
            if "meshgate-analyst" in m and "duckdb" in m:
                q["analyst_ratio_duckdb"] = m["meshgate-analyst"] / m["duckdb"]
            if "meshgate-spilled" in m and "duckdb" in m:
                q["spilled_ratio_duckdb"] = m["meshgate-spilled"] / m["duckdb"]
            out["queries"][qid] = q
            log(f"{qid} " + "  ".join(f"{k} {v:.3f}s" for k, v in m.items())
                + (f"  ratio {q['ratio_duckdb']:.2f}" if "ratio_duckdb" in q else ""))
        complete = [q for q in out["queries"].values() if len(q["median"]) == len(engines)]
        out["geomean"] = {name: geomean([q["median"][name] for q in complete]) for name in engines}
        out["geomean_ratio_duckdb"] = geomean([q.get("ratio_duckdb") for q in complete])
        out["geomean_analyst_ratio_duckdb"] = geomean([q.get("analyst_ratio_duckdb") for q in complete])
        out["geomean_spilled_ratio_duckdb"] = geomean([q.get("spilled_ratio_duckdb") for q in complete])
        out["geomean_queries"] = len(complete)

        # ---- export CPU: the server's CPU to send lineitem from memory, one stream
        flight_export.export(uri, EXPORT_SQL, False)  # warm-up
        cpu0 = server.cpu_seconds()
        t0 = time.perf_counter()
        rows, nbytes, _ = flight_export.export(uri, EXPORT_SQL, False)
        out["export"] = {"rows": rows, "bytes": nbytes, "seconds": time.perf_counter() - t0,
                         "server_cpu": server.cpu_seconds() - cpu0}
        out["export"]["datafusion_scan_cpu"] = _datafusion_scan_cpu(data_dir, process_cpu)
        out["export"]["cpu_ratio"] = out["export"]["server_cpu"] / out["export"]["datafusion_scan_cpu"]
        log(f"export from memory: server {out['export']['server_cpu']:.2f} CPU s, DataFusion scan "
            f"{out['export']['datafusion_scan_cpu']:.2f} CPU s: ratio {out['export']['cpu_ratio']:.2f}")

        # ---- point query from an accelerated product: through ADBC, then through
        # pyarrow.flight (GetFlightInfo and DoGet, the least a client can do), each
        # with the server's CPU per query
        point = engines["meshgate"]
        import pyarrow.flight as fl

        flight = fl.FlightClient(uri)
        command = fl.FlightDescriptor.for_command(flight_export.statement_command(point_sql))

        def raw_point():
            info = flight.get_flight_info(command)
            flight.do_get(info.endpoints[0].ticket).read_all()

        for key, run in (("point", lambda: point.run(point_sql)), ("point_flight", raw_point)):
            for _ in range(50):
                run()
            lat = []
            cpu0 = server.cpu_seconds()
            for _ in range(args.latency_count):
                t = time.perf_counter()
                run()
                lat.append(time.perf_counter() - t)
            out[key] = latency_stats(lat)
            cpu1 = server.cpu_seconds()
            if cpu0 is not None and cpu1 is not None:
                out[key]["server_cpu_ms"] = (cpu1 - cpu0) * 1e3 / args.latency_count
        flight.close()
        out["rss_end_kb"] = server.vm_hwm_kb()
    finally:
        for eng in engines.values():
            eng.close()
        out["exit_code"] = server.stop()
        out["spilled_exit_code"] = spilled_server.stop()
        out["spill_dir_left"] = sorted(os.listdir(spill_dir)) if os.path.isdir(spill_dir) else []
        if out["spill_dir_left"]:
            out["errors"].append(f"the spilled server left {out['spill_dir_left']} in {spill_dir}")
    return out


def render(a: dict, fmt) -> list[str]:
    L = ["## Accelerated products", ""]
    L.append("Every product accelerated (`acceleration.default`, refresh manual) on a second server, against "
             "in-process engines on the same machine (benches/meshbench/accelerated.py). Medians in seconds; "
             "every engine's result is checked against DuckDB on Parquet (the analyst's masks change values: "
             "timed only).")
    L.append("")
    names = ["meshgate", "meshgate-analyst", "meshgate-spilled", "duckdb", "duckdb-memory", "datafusion-memory"]
    L.append("| query | " + " | ".join(names) + " | meshgate / duckdb | analyst / duckdb | spilled / duckdb |")
    L.append("|---|" + "---:|" * (len(names) + 3))
    for qid, q in a.get("queries", {}).items():
        m = q["median"]
        L.append(f"| {qid} | " + " | ".join(fmt(m.get(n)) for n in names)
                 + f" | {fmt(q.get('ratio_duckdb'), '.2f')} | {fmt(q.get('analyst_ratio_duckdb'), '.2f')}"
                 + f" | {fmt(q.get('spilled_ratio_duckdb'), '.2f')} |")
    g = a.get("geomean", {})
    L.append("| **geomean** | " + " | ".join(fmt(g.get(n)) for n in names)
             + f" | **{fmt(a.get('geomean_ratio_duckdb'), '.2f')}** | **{fmt(a.get('geomean_analyst_ratio_duckdb'), '.2f')}**"
             + f" | **{fmt(a.get('geomean_spilled_ratio_duckdb'), '.2f')}** |")
    L.append("")
    L.append(f"Copies: {len(a.get('copies', {}))} products, {fmt((a.get('copy_bytes') or 0) / 2**20, ',.0f')} MiB in "
             f"memory for {fmt(a.get('parquet_bytes', 0) / 2**20, ',.0f')} MiB of Parquet "
             f"({fmt(a.get('bytes_per_parquet_byte'), '.2f')} bytes per Parquet byte), built in "
             f"{fmt(a.get('copy_seconds'), '.1f')} s (server ready after {fmt(a.get('startup_seconds'), '.1f')} s). "
             f"DuckDB took {fmt(a.get('duckdb_load_seconds'), '.1f')} s and DataFusion "
             f"{fmt(a.get('datafusion_load_seconds'), '.1f')} s to load the same tables.")
    sp = a.get("spilled")
    if sp:
        L.append(f"Spilled (memory budget 1 B, `acceleration.spill`): {sp['copies']} copies, "
                 f"{fmt(sp['disk_bytes'] / 2**20, ',.0f')} MiB of Arrow IPC on local disk "
                 f"({fmt(sp['disk_bytes'] / a['parquet_bytes'] if a.get('parquet_bytes') else None, '.2f')} bytes "
                 f"per Parquet byte), written in {fmt(sp['seconds'], '.1f')} s; files left after it stopped: "
                 f"{len(a.get('spill_dir_left', []))}.")
    x = a.get("export")
    if x:
        L.append("")
        L.append(f"Export from memory (`{EXPORT_SQL}`, one pyarrow.flight stream): {x['rows']:,} rows in "
                 f"{x['seconds']:.2f} s; server CPU {x['server_cpu']:.2f} s against {x['datafusion_scan_cpu']:.2f} s "
                 f"for in-process DataFusion to scan the Parquet files: **{x['cpu_ratio']:.2f}**.")
    p = a.get("point")
    if p:
        L.append("")
        L.append(f"Point query from an accelerated product (ADBC, one connection): p50 **{fmt(p.get('p50_ms'), '.2f')} ms**, "
                 f"p99 {fmt(p.get('p99_ms'), '.2f')} ms, server CPU {fmt(p.get('server_cpu_ms'), '.2f')} ms a query.")
    f = a.get("point_flight")
    if f:
        L.append(f"Through pyarrow.flight (GetFlightInfo, DoGet): p50 {fmt(f.get('p50_ms'), '.2f')} ms, "
                 f"p99 {fmt(f.get('p99_ms'), '.2f')} ms, server CPU {fmt(f.get('server_cpu_ms'), '.2f')} ms a query.")
    L.append("")
    return L


def targets(a: dict) -> list[dict]:
    out = []
    if a.get("geomean_ratio_duckdb") is not None:
        g = a["geomean_ratio_duckdb"]
        out.append({"target": "TPC-H accelerated, all-rows principal: geometric mean ≤ 1.0× DuckDB on Parquet",
                    "measured": f"{g:.2f}", "met": "yes" if g <= 1.0 else "**no**"})
    if a.get("geomean_analyst_ratio_duckdb") is not None and a.get("geomean_ratio_duckdb"):
        r = a["geomean_analyst_ratio_duckdb"] / a["geomean_ratio_duckdb"]
        out.append({"target": "TPC-H accelerated, analyst principal ≤ 1.15× the all-rows principal",
                    "measured": f"{r:.2f}", "met": "yes" if r <= 1.15 else "**no**"})
    x = a.get("export")
    if x:
        out.append({"target": "export server CPU ≤ 1.3× DataFusion's in-process scan CPU (from memory)",
                    "measured": f"{x['cpu_ratio']:.2f}", "met": "yes" if x["cpu_ratio"] <= 1.3 else "**no**"})
    p = a.get("point")
    if p and p.get("p50_ms") is not None:
        out.append({"target": "point query p50 < 2 ms from an accelerated product",
                    "measured": f"{p['p50_ms']:.2f} ms", "met": "yes" if p["p50_ms"] < 2 else "**no**"})
    return out
