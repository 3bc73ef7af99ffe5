#!/usr/bin/env python3
"""meshgate benchmarks: TPC-H through meshgate vs in-process DataFusion and DuckDB,
bulk export, point-query latency and concurrency, the cost of governance and of the
audit log and lineage, server memory.

Run it through benches/run.sh (which sets up the Python venv); see benches/README.md.
Progress goes to stderr; the report (markdown) goes to stdout and to
benches/results/<timestamp>-sf<SF>.md (plus a .json with every number and the
server's log).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from meshbench import accelerated, audit, compare, data, distributed, governance  # noqa: E402
from meshbench.data import log  # noqa: E402

ENGINES = ("meshgate", "datafusion", "duckdb")
PHASES = ("tpch", "export", "latency", "governance", "audit", "accelerated", "distributed")
EXPORT_SQL = "SELECT * FROM sales.lineitem"
POINT_SQL = "SELECT * FROM customers.nation WHERE n_nationkey = 7"
CONCURRENCY = (1, 8, 32)

TARGETS = {
    "tpch_geomean_ratio": 1.15,  # geometric mean of meshgate/DataFusion at SF1, at most
    "export_vs_datafusion": 0.80,  # meshgate export throughput / DataFusion's, at least
    "point_p50_ms": 3.0,  # point-query p50 through ADBC, below
    "audit_p50_overhead": 0.03,  # point-query p50 with audit log and lineage file / without, minus 1, below
}


# --------------------------------------------------------------------------- args


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="benches/run.sh",
        description="meshgate benchmarks (TPC-H, bulk export, latency, governance and audit overhead, memory).",
    )
    p.add_argument("--sf", default="1", help="TPC-H scale factor (default 1)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per measurement, after one warm-up (default 3)")
    p.add_argument("--skip-generate", action="store_true", help="use the existing data for --sf; fail if there is none")
    p.add_argument("--queries", default="all", help="TPC-H queries to run, e.g. 1,3,5 (default all 22)")
    p.add_argument("--phases", default=",".join(PHASES), help=f"phases to run (default {','.join(PHASES)})")
    p.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help="engines for the tpch and export phases (default meshgate,datafusion,duckdb); "
        "without meshgate no server is started",
    )
    p.add_argument("--meshgate", metavar="BIN", default=os.environ.get("MESHGATE_BIN"),
                   help="meshgate binary (default: $MESHGATE_BIN, else build with cargo build --profile dist -p meshgate)")
    p.add_argument("--data-dir", help="use this mesh data directory (<domain>/<table>/*.parquet) instead of benches/data/sf<SF>")
    p.add_argument("--latency-count", type=int, default=1000, help="point-query round trips on one connection (default 1000)")
    p.add_argument("--concurrency-seconds", type=float, default=10.0,
                   help="seconds each concurrency level runs (default 10)")
    p.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)),
                   help="concurrent clients to measure (default 1,8,32)")
    p.add_argument("--results-dir", default=os.path.join(HERE, "results"))
    args = p.parse_args(argv)

    args.sf = data.sf_label(args.sf)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    args.phases = _parse_list(p, "--phases", args.phases, PHASES)
    args.engines = _parse_list(p, "--engines", args.engines, ENGINES)
    if args.queries == "all":
        args.queries = list(range(1, 23))
    else:
        try:
            args.queries = sorted({int(q.strip().lstrip("qQ")) for q in args.queries.split(",") if q.strip()})
        except ValueError:
            p.error(f"--queries: expected numbers like 1,3,5, got {args.queries!r}")
        if not args.queries or any(q < 1 or q > 22 for q in args.queries):
            p.error("--queries: numbers between 1 and 22")
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        p.error("--concurrency: expected numbers like 1,8,32")
    return args


def _parse_list(p, flag, value, allowed):
    items = [x.strip().lower() for x in value.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        p.error(f"{flag}: unknown {', '.join(bad) or '(empty)'}; choose from {', '.join(allowed)}")
    return [x for x in allowed if x in items]


# --------------------------------------------------------------------------- helpers


def load_query(n: int) -> str:
    with open(os.path.join(HERE, "queries", f"q{n:02d}.sql")) as f:
        return f.read().strip().rstrip(";").strip()


def median(xs):
    return statistics.median(xs) if xs else None


def percentile(xs, q):
    """Linear-interpolated percentile, q in [0, 100]."""
    if not xs:
        return None
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    if not xs:
        return None
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def fmt(x, spec=".3f", none="—"):
    return none if x is None else format(x, spec)


# --------------------------------------------------------------------------- header


def machine_info() -> dict:
    info = {"cpu": platform.processor() or "unknown", "cores": os.cpu_count(), "memory_gib": None}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                    break
    except OSError:
        pass
    info["kernel"] = platform.release()
    info["python"] = platform.python_version()
    return info


def versions(meshgate_bin: str | None) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    v = {}
    if meshgate_bin:
        try:
            out = subprocess.run([meshgate_bin, "--version"], capture_output=True, text=True, timeout=30)
            text = (out.stdout or out.stderr).strip() or f"exit {out.returncode}"
            v["meshgate"] = text.removeprefix("meshgate ").strip()
        except Exception as e:  # noqa: BLE001
            v["meshgate"] = f"unknown ({first_line(e)})"
    for pkg in ("pyarrow", "duckdb", "datafusion", "adbc-driver-manager", "adbc-driver-flightsql"):
        try:
            v[pkg] = version(pkg)
        except PackageNotFoundError:
            v[pkg] = "not installed"
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        if commit:
            v["repo"] = commit + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        pass
    return v


# --------------------------------------------------------------------------- phases


def phase_tpch(args, engines: dict, server) -> dict:
    out = {"queries": {}}
    for n in args.queries:
        qid = f"q{n:02d}"
        sql = load_query(n)
        q = {"times": {}, "median": {}, "rows": {}, "errors": {}, "checks": {}}
        results = {}
        for name, eng in engines.items():
            if name == "meshgate" and server is not None and not server.alive():
                q["errors"][name] = "server is not running"
                continue
            try:
                results[name] = eng.run(sql)  # warm-up; its result is the one compared
                q["rows"][name] = results[name].num_rows
                times = []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    eng.run(sql)
                    times.append(time.perf_counter() - t0)
                q["times"][name] = times
                q["median"][name] = median(times)
            except Exception as e:  # noqa: BLE001
                q["errors"][name] = first_line(e)
        ref = "datafusion" if "datafusion" in results else next(iter(results), None)
        for name, table in results.items():
            if name == ref:
                continue
            try:
                ok, why = compare.compare(results[ref], table, sql)
            except Exception as e:  # noqa: BLE001
                ok, why = False, f"comparison failed: {first_line(e)}"
            q["checks"][f"{name} vs {ref}"] = {"ok": ok, "detail": why}
        m = q["median"]
        if "meshgate" in m and "datafusion" in m:
            q["ratio_datafusion"] = m["meshgate"] / m["datafusion"]
        if "meshgate" in m and "duckdb" in m:
            q["ratio_duckdb"] = m["meshgate"] / m["duckdb"]
        out["queries"][qid] = q
        status = "ok" if all(c["ok"] for c in q["checks"].values()) and not q["errors"] else "PROBLEM"
        log(
            f"{qid} "
            + "  ".join(f"{k} {v:.3f}s" for k, v in m.items())
            + (f"  ratio {q['ratio_datafusion']:.2f}" if "ratio_datafusion" in q else "")
            + f"  {status}"
            + "".join(f"\n      {k}: {v}" for k, v in q["errors"].items())
            + "".join(f"\n      {k}: {c['detail']}" for k, c in q["checks"].items() if not c["ok"])
        )
    # geometric means over the queries every engine ran
    complete = [q for q in out["queries"].values() if len(q["median"]) == len(engines)]
    out["geomean"] = {name: geomean([q["median"][name] for q in complete]) for name in engines}
    out["geomean_ratio_datafusion"] = geomean([q.get("ratio_datafusion") for q in complete])
    out["geomean_ratio_duckdb"] = geomean([q.get("ratio_duckdb") for q in complete])
    out["geomean_queries"] = len(complete)
    return out


def _drain(batches) -> tuple[int, int]:
    rows = nbytes = 0
    for b in batches:
        rows += b.num_rows
        nbytes += b.nbytes
    return rows, nbytes


def _process_cpu() -> float:
    """User + system CPU of this process (every thread: the client side of an export,
    or the whole of an in-process engine's scan)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def phase_export(args, engines: dict, data_dir: str, server) -> dict:
    import pyarrow.parquet as pq

    lineitem = data.table_dir(data_dir, "lineitem")
    out = {"sql": EXPORT_SQL, "ways": {}}
    ways = {}
    for name, eng in engines.items():
        ways[name] = (lambda e=eng: _drain(e.batches(EXPORT_SQL)))

    def read_table():
        t = pq.read_table(lineitem)
        return t.num_rows, t.nbytes

    ways["pyarrow.parquet.read_table"] = read_table
    if "meshgate" in engines:
        from meshbench import flight_export

        uri = engines["meshgate"].uri
        for label, partitioned in (("meshgate pyarrow.flight, one stream", False),
                                   ("meshgate pyarrow.flight, endpoints in parallel", True)):
            def way(p=partitioned, label=label):
                rows, nbytes, endpoints = flight_export.export(uri, EXPORT_SQL, p)
                out.setdefault("endpoints", {})[label] = endpoints  # noqa: B023 (bound per call)
                return rows, nbytes
            ways[label] = way

    for name, fn in ways.items():
        w = {}
        if name == "meshgate" and server is not None and not server.alive():
            w["error"] = "server is not running"
            out["ways"][name] = w
            continue
        try:
            fn()  # warm-up
            times, client_cpu, server_cpu, rows, nbytes = [], [], [], None, None
            through_server = server is not None and name.startswith("meshgate")
            for _ in range(args.runs):
                c0, s0 = _process_cpu(), server.cpu_seconds() if through_server else None
                t0 = time.perf_counter()
                rows, nbytes = fn()
                times.append(time.perf_counter() - t0)
                client_cpu.append(_process_cpu() - c0)
                if s0 is not None:
                    server_cpu.append(server.cpu_seconds() - s0)
            t = median(times)
            w.update(times=times, seconds=t, rows=rows, bytes=nbytes,
                     rows_per_s=rows / t, mb_per_s=nbytes / t / 1e6, client_cpu_s=median(client_cpu),
                     server_cpu_s=median(server_cpu) if server_cpu else None)
            log(f"export {name}: {rows:,} rows, {nbytes / 1e6:,.0f} MB in {t:.3f}s "
                f"= {rows / t / 1e6:.2f} M rows/s, {nbytes / t / 1e6:,.0f} MB/s; CPU s: client "
                f"{w['client_cpu_s']:.2f}, server {fmt(w['server_cpu_s'], '.2f')}")
        except Exception as e:  # noqa: BLE001
            w["error"] = first_line(e)
            log(f"export {name}: ERROR {w['error']}")
        out["ways"][name] = w
    ws = out["ways"]
    ok = {k: v for k, v in ws.items() if "rows_per_s" in v}
    if "meshgate" in ok and "datafusion" in ok:
        out["ratio_datafusion"] = ok["meshgate"]["rows_per_s"] / ok["datafusion"]["rows_per_s"]
    if "meshgate" in ok and "pyarrow.parquet.read_table" in ok:
        out["ratio_pyarrow"] = ok["meshgate"]["rows_per_s"] / ok["pyarrow.parquet.read_table"]["rows_per_s"]
    counts = {v["rows"] for v in ok.values()}
    out["rows_agree"] = len(counts) <= 1
    return out


def _latency_stats(lat_s: list[float]) -> dict:
    ms = [x * 1000 for x in lat_s]
    return {
        "count": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else None,
        "mean_ms": statistics.fmean(ms) if ms else None,
    }


def _point_loop(run, count: int) -> list[float]:
    lat = []
    for _ in range(count):
        t0 = time.perf_counter()
        run()
        lat.append(time.perf_counter() - t0)
    return lat


def phase_latency(args, meshgate, datafusion) -> dict:
    out = {"sql": POINT_SQL, "single": {}, "concurrency": []}

    # one connection, sequential round trips
    t = meshgate.run(POINT_SQL)
    if t.num_rows != 1:
        raise RuntimeError(f"point query returned {t.num_rows} rows, expected 1")

    def mg_point():
        meshgate.run(POINT_SQL)

    _point_loop(mg_point, min(50, args.latency_count))  # warm-up
    out["single"]["meshgate"] = _latency_stats(_point_loop(mg_point, args.latency_count))
    s = out["single"]["meshgate"]
    log(f"point query via ADBC, {s['count']} round trips: p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms")
    if datafusion is not None:
        def df_point():
            datafusion.run(POINT_SQL)

        _point_loop(df_point, min(50, args.latency_count))
        out["single"]["datafusion (in-process)"] = _latency_stats(_point_loop(df_point, args.latency_count))

    # concurrent clients, each with its own connection, for a fixed time
    cap = 1_000_000  # per client: a bound on the loop besides the time limit
    for n in args.concurrency:
        conns = [meshgate.connect() for _ in range(n)]
        lats: list[list[float]] = [[] for _ in range(n)]
        errors: list[str] = []
        barrier = threading.Barrier(n + 1)
        deadline_box = [0.0]

        def client(i):
            cur = conns[i].cursor()
            try:
                barrier.wait()
                deadline = deadline_box[0]
                mine = lats[i]
                while len(mine) < cap:
                    t0 = time.perf_counter()
                    if t0 >= deadline:
                        break
                    cur.execute(POINT_SQL)
                    cur.fetch_arrow_table()
                    mine.append(time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001
                errors.append(first_line(e))
            finally:
                cur.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
        for th in threads:
            th.start()
        deadline_box[0] = time.perf_counter() + args.concurrency_seconds
        start = time.perf_counter()
        barrier.wait()
        for th in threads:
            th.join(args.concurrency_seconds + 120)
        elapsed = time.perf_counter() - start
        for c in conns:
            c.close()
        all_lat = [x for lst in lats for x in lst]
        row = {"clients": n, "seconds": elapsed, "queries": len(all_lat),
               "qps": len(all_lat) / elapsed if elapsed > 0 else None, "errors": errors[:5],
               "error_count": len(errors)}
        row.update(_latency_stats(all_lat))
        out["concurrency"].append(row)
        log(f"{n:>3} clients: {row['qps']:,.0f} queries/s, p50 {fmt(row['p50_ms'], '.2f')} ms, "
            f"p99 {fmt(row['p99_ms'], '.2f')} ms" + (f", {len(errors)} errors: {errors[0]}" if errors else ""))
    return out


# --------------------------------------------------------------------------- report


ENGINE_TITLES = {"meshgate": "meshgate", "datafusion": "DataFusion", "duckdb": "DuckDB"}


def render(res: dict) -> str:
    L = []
    h = res["header"]
    L.append(f"# meshgate benchmark: TPC-H SF{h['sf']}")
    L.append("")
    L.append(f"- date: {h['date']}")
    L.append(f"- command: `{h['command']}`")
    m = h["machine"]
    L.append(f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB memory, Linux {m['kernel']}, Python {m['python']}")
    L.append("- versions: " + ", ".join(f"{k} {v}" for k, v in h["versions"].items()))
    L.append(f"- data: TPC-H SF{h['sf']} ({h['data']['generator']}), {h['data']['parquet_mb']:,.0f} MB of Parquet, "
             f"3 domains (sales: orders, lineitem; customers: customer, nation, region; supply: part, partsupp, supplier)")
    L.append(f"- timing: median of {h['runs']} run(s) after one warm-up run; wall-clock seconds in the Python client, "
             "result fully fetched as Arrow")
    L.append("")

    if "tpch" in res:
        t = res["tpch"]
        engines = res["engines"]
        L.append("## TPC-H queries")
        L.append("")
        cols = ["query", "rows"] + [f"{ENGINE_TITLES[e]} (s)" for e in engines]
        if "meshgate" in engines and "datafusion" in engines:
            cols.append("meshgate / DataFusion")
        if "meshgate" in engines and "duckdb" in engines:
            cols.append("meshgate / DuckDB")
        cols.append("results agree")
        L.append("| " + " | ".join(cols) + " |")
        L.append("|" + "|".join(["---"] + ["---:"] * (len(cols) - 2) + ["---"]) + "|")
        for qid, q in t["queries"].items():
            rows = sorted(set(q["rows"].values()))
            cells = [qid.upper(), "/".join(str(r) for r in rows) or "—"]
            for e in engines:
                cells.append(fmt(q["median"].get(e)) if e not in q["errors"] else "error")
            if "meshgate" in engines and "datafusion" in engines:
                cells.append(fmt(q.get("ratio_datafusion"), ".2f"))
            if "meshgate" in engines and "duckdb" in engines:
                cells.append(fmt(q.get("ratio_duckdb"), ".2f"))
            problems = [f"{k}: {c['detail']}" for k, c in q["checks"].items() if not c["ok"]]
            problems += [f"{k} failed: {v}" for k, v in q["errors"].items()]
            if problems:
                cells.append("**no**: " + "; ".join(p.replace("|", "\\|") for p in problems))
            else:
                notes = [c["detail"] for c in q["checks"].values() if c["detail"] != "equal"]
                cells.append("yes" + (f" ({'; '.join(notes)})" if notes else "") if q["checks"] else "—")
            L.append("| " + " | ".join(cells) + " |")
        cells = [f"**geometric mean** ({t['geomean_queries']} queries)", ""]
        for e in engines:
            cells.append(fmt(t["geomean"].get(e)))
        if "meshgate" in engines and "datafusion" in engines:
            cells.append("**" + fmt(t.get("geomean_ratio_datafusion"), ".2f") + "**")
        if "meshgate" in engines and "duckdb" in engines:
            cells.append("**" + fmt(t.get("geomean_ratio_duckdb"), ".2f") + "**")
        cells.append("")
        L.append("| " + " | ".join(cells) + " |")
        L.append("")
        how = {"meshgate": "meshgate: over Flight SQL with the ADBC client, one connection.",
               "datafusion": "DataFusion: datafusion-python in-process, default session settings.",
               "duckdb": "DuckDB: in-process, views over read_parquet."}
        ref = "DataFusion's" if "datafusion" in engines else f"{ENGINE_TITLES[engines[0]]}'s"
        L.append(" ".join(how[e] for e in engines)
                 + " Results agree: same row count and equal values (numbers within a relative 1e-6, or one unit "
                 f"in the last decimal place) as multisets of rows, compared with {ref}.")
        L.append("")

    if "export" in res:
        x = res["export"]
        L.append("## Bulk export")
        L.append("")
        L.append(f"`{x['sql']}`, every batch received and dropped (pyarrow.parquet.read_table: the whole table).")
        L.append("")
        L.append("| how | rows | Arrow MB | seconds | M rows/s | MB/s | vs DataFusion | client CPU s | server CPU s |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        titles = {"meshgate": "meshgate (ADBC fetch_record_batch)",
                  "datafusion": "DataFusion in-process (execute_stream)",
                  "duckdb": "DuckDB in-process (to_arrow_reader)",
                  "pyarrow.parquet.read_table": "pyarrow.parquet.read_table"}
        df_rps = x["ways"].get("datafusion", {}).get("rows_per_s")
        for name, w in x["ways"].items():
            if "error" in w:
                L.append(f"| {titles.get(name, name)} | error: {w['error']} | | | | | | | |")
                continue
            vs = fmt(w["rows_per_s"] / df_rps, ".2f") if df_rps else "—"
            L.append(f"| {titles.get(name, name)} | {w['rows']:,} | {w['bytes'] / 1e6:,.0f} | {w['seconds']:.3f} | "
                     f"{w['rows_per_s'] / 1e6:.2f} | {w['mb_per_s']:,.0f} | {vs} | "
                     f"{fmt(w.get('client_cpu_s'), '.2f')} | {fmt(w.get('server_cpu_s'), '.2f')} |")
        L.append("")
        L.append("MB are each reader's own Arrow bytes (`batch.nbytes`), so they differ between readers "
                 "(DataFusion and pyarrow read strings as string views; meshgate sends plain Utf8); "
                 "compare rows/s." + ("" if x.get("rows_agree", True) else " **Row counts differ between readers.**"))
        L.append("")
        L.append("CPU seconds are medians per export: the client is this Python process (every thread; for an "
                 "in-process engine, the whole scan), the server is meshgate. When they share the machine's "
                 "cores, an export cannot take less wall time than their sum divided by the cores.")
        for label, count in x.get("endpoints", {}).items():
            L.append(f"- {label}: {count} endpoint(s)")
        L.append("")

    if "latency" in res:
        lt = res["latency"]
        L.append("## Point-query latency")
        L.append("")
        L.append(f"`{lt['sql']}`")
        L.append("")
        L.append("| client | round trips | p50 ms | p90 ms | p99 ms | max ms | mean ms |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for name, s in lt["single"].items():
            title = {"meshgate": "meshgate via ADBC, one connection",
                     "datafusion (in-process)": "DataFusion in-process (reference)"}.get(name, name)
            L.append(f"| {title} | {s['count']:,} | {fmt(s['p50_ms'], '.2f')} | {fmt(s['p90_ms'], '.2f')} | "
                     f"{fmt(s['p99_ms'], '.2f')} | {fmt(s['max_ms'], '.2f')} | {fmt(s['mean_ms'], '.2f')} |")
        L.append("")
        if lt["concurrency"]:
            L.append("### Concurrent clients")
            L.append("")
            L.append("Each client is a thread with its own ADBC connection running the point query in a loop.")
            L.append("")
            L.append("| clients | seconds | queries | queries/s | p50 ms | p99 ms | errors |")
            L.append("|---:|---:|---:|---:|---:|---:|---|")
            for r in lt["concurrency"]:
                err = str(r["error_count"]) + (f" ({r['errors'][0]})" if r["errors"] else "")
                L.append(f"| {r['clients']} | {r['seconds']:.1f} | {r['queries']:,} | {fmt(r['qps'], ',.0f')} | "
                         f"{fmt(r['p50_ms'], '.2f')} | {fmt(r['p99_ms'], '.2f')} | {err} |")
            L.append("")

    if "governance" in res:
        L.extend(governance.render(res["governance"], fmt))

    if "audit" in res:
        L.extend(audit.render(res["audit"], fmt))

    if "accelerated" in res:
        L.extend(accelerated.render(res["accelerated"], fmt))
    if "distributed" in res:
        L.extend(distributed.render(res["distributed"], fmt))

    if "server" in res:
        s = res["server"]
        L.append("## Server memory and CPU")
        L.append("")
        L.append(f"Peak RSS over the whole run (VmHWM): **{fmt(_mib(s.get('vm_hwm_kb')), ',.0f')} MiB**. "
                 f"Ready (listening line printed) {fmt(s.get('startup_seconds'), '.2f')} s after start; "
                 f"exit status after SIGTERM: {s.get('exit_code')}.")
        L.append("")
        L.append("| phase | seconds | server CPU s | RSS at start MiB | peak RSS MiB (sampled) |")
        L.append("|---|---:|---:|---:|---:|")
        for name, p in s.get("phases", {}).items():
            L.append(f"| {name} | {fmt(p.get('seconds'), '.1f')} | {fmt(p.get('cpu_seconds'), '.1f')} | "
                     f"{fmt(_mib(p.get('start_rss_kb')), ',.0f')} | {fmt(_mib(p.get('peak_rss_kb')), ',.0f')} |")
        L.append("")

    if res.get("targets"):
        L.append("## Targets")
        L.append("")
        L.append("| target | measured | met |")
        L.append("|---|---:|---|")
        for t in res["targets"]:
            L.append(f"| {t['target']} | {t['measured']} | {t['met']} |")
        L.append("")

    if res.get("errors"):
        L.append("## Errors")
        L.append("")
        for e in res["errors"]:
            L.append(f"- {e}")
        L.append("")
    return "\n".join(L)


def _mib(kb):
    return None if kb is None else kb / 1024


def targets(res: dict, sf: str) -> list[dict]:
    out = []
    t = res.get("tpch")
    if t and t.get("geomean_ratio_datafusion") is not None:
        g = t["geomean_ratio_datafusion"]
        note = "" if sf == "1" else f" (target is for SF1; this is SF{sf})"
        full = t["geomean_queries"] == 22
        met = ("yes" if g <= TARGETS["tpch_geomean_ratio"] else "**no**") + note
        if not full:
            met += f" (over {t['geomean_queries']} of 22 queries)"
        out.append({"target": f"TPC-H geometric mean meshgate/DataFusion ≤ {TARGETS['tpch_geomean_ratio']} at SF1",
                    "measured": f"{g:.2f}", "met": met})
    x = res.get("export")
    if x and x.get("ratio_datafusion") is not None:
        r = x["ratio_datafusion"]
        out.append({"target": f"bulk export ≥ {TARGETS['export_vs_datafusion']:.0%} of DataFusion in-process (rows/s)",
                    "measured": f"{r:.0%}", "met": "yes" if r >= TARGETS["export_vs_datafusion"] else "**no**"})
    if x and x.get("ratio_pyarrow") is not None:
        r = x["ratio_pyarrow"]
        out.append({"target": "bulk export faster than pyarrow.parquet.read_table",
                    "measured": f"{r:.2f}×", "met": "yes" if r > 1 else "**no**"})
    lt = res.get("latency")
    if lt and "meshgate" in lt.get("single", {}):
        p50 = lt["single"]["meshgate"]["p50_ms"]
        out.append({"target": f"point query p50 < {TARGETS['point_p50_ms']:g} ms",
                    "measured": f"{p50:.2f} ms", "met": "yes" if p50 < TARGETS["point_p50_ms"] else "**no**"})
    ad = res.get("audit")
    if ad and ad.get("point_ratio"):
        over = ad["point_ratio"]["p50_ms"] - 1
        out.append({"target": f"audit log + lineage: point query p50 overhead < {TARGETS['audit_p50_overhead']:.0%}",
                    "measured": f"{over:+.1%} (TPC-H geometric mean {fmt(ad.get('geomean_ratio'), '.3f')}×)",
                    "met": "yes" if over < TARGETS["audit_p50_overhead"] else "**no**"})
    if res.get("accelerated"):
        out.extend(accelerated.targets(res["accelerated"]))
    return out


# --------------------------------------------------------------------------- main


def prepare_data(args) -> tuple[str, str]:
    """The data directory and its mesh.yaml, generating TPC-H when needed."""
    if args.data_dir:
        data_dir = os.path.abspath(args.data_dir)
        data.check_layout(data_dir)
        generator = f"existing directory {data_dir}"
        if os.path.exists(os.path.join(data_dir, ".complete")):
            generator = open(os.path.join(data_dir, ".complete")).read().split(" sf=")[0].strip()
        mesh = os.path.join(data_dir, "mesh.yaml")
        if not os.path.exists(mesh):
            data.write_mesh_yaml(data_dir, args.sf)
        return data_dir, generator
    data_dir = os.path.join(HERE, "data", f"sf{args.sf}")
    if data.is_complete(data_dir):
        log(f"using existing data in {os.path.relpath(data_dir, REPO)}")
    elif args.skip_generate:
        raise SystemExit(f"--skip-generate: no complete data in {data_dir}; run once without it")
    else:
        tpchgen = data.ensure_tpchgen(os.path.join(HERE, ".tools"))
        t0 = time.perf_counter()
        data.generate(tpchgen, args.sf, data_dir)
        log(f"generated TPC-H SF{args.sf} in {time.perf_counter() - t0:.1f}s")
    data.check_layout(data_dir)
    # the mesh file is cheap: rewrite it so it always matches this script
    data.write_mesh_yaml(data_dir, args.sf)
    generator = open(os.path.join(data_dir, ".complete")).read().split(" sf=")[0].strip()
    return data_dir, generator


def main(argv=None) -> int:
    args = parse_args(argv)
    from meshbench import engines as eng
    from meshbench.server import Monitor, Server

    started = dt.datetime.now()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    os.makedirs(args.results_dir, exist_ok=True)
    base = os.path.join(args.results_dir, f"{stamp}-sf{args.sf}")

    data_dir, generator = prepare_data(args)
    mesh = os.path.join(data_dir, "mesh.yaml")

    need_server = ("meshgate" in args.engines
                   or {"latency", "governance", "audit", "accelerated", "distributed"} & set(args.phases))
    binary = None
    if need_server:
        binary = args.meshgate or data.build_meshgate(REPO)
        binary = os.path.abspath(binary)
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"meshgate binary not found or not executable: {binary}")
        # The served mesh: the data's mesh file plus the bench principals and policies.
        served = os.path.join(data_dir, "mesh-bench.yaml")
        with open(mesh) as src, open(served, "w") as dst:
            dst.write(src.read() + governance.governance_yaml(binary))
        mesh = served

    entry = os.environ.get("BENCH_ENTRY") or sys.argv[0]
    command = " ".join([entry] + [shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)])
    res: dict = {
        "header": {
            "date": started.isoformat(timespec="seconds"),
            "command": command,
            "sf": args.sf,
            "runs": args.runs,
            "machine": machine_info(),
            "versions": versions(binary),
            "data": {"dir": data_dir, "generator": generator, "parquet_mb": data.dir_size(data_dir) / 1e6},
        },
        "engines": [e for e in args.engines],
        "errors": [],
    }
    log("machine: {cpu}, {cores} cores, {memory_gib} GiB".format(**res["header"]["machine"]))
    log("versions: " + ", ".join(f"{k} {v}" for k, v in res["header"]["versions"].items()))

    server = monitor = extra = startup = None
    engines: dict = {}
    try:
        if need_server:
            server = Server(binary, mesh, base + ".server.log")
            t0 = time.perf_counter()
            uri = server.start()
            startup = time.perf_counter() - t0
            log(f"meshgate ready at {uri} (pid {server.pid}) after {startup:.2f}s")
            monitor = Monitor(server.pid).start("startup")
        for name in args.engines:
            if name == "meshgate":
                engines[name] = eng.Meshgate(server.uri)
            elif name == "datafusion":
                engines[name] = eng.DataFusion(data_dir)
            elif name == "duckdb":
                engines[name] = eng.DuckDB(data_dir)

        for phase in args.phases:
            if monitor:
                monitor.phase(phase)
            log(f"== phase {phase}")
            try:
                if phase == "tpch":
                    res["tpch"] = phase_tpch(args, engines, server)
                elif phase == "export":
                    res["export"] = phase_export(args, engines, data_dir, server)
                elif phase == "latency":
                    mg = engines.get("meshgate")
                    if mg is None:
                        mg = extra = eng.Meshgate(server.uri)
                    res["latency"] = phase_latency(args, mg, engines.get("datafusion"))
                elif phase == "governance":
                    res["governance"] = governance.phase_governance(
                        args, server.uri, load_query, median, geomean, first_line, log)
                elif phase == "audit":
                    res["audit"] = audit.phase_audit(
                        args, binary, mesh, base, POINT_SQL, load_query=load_query, latency_stats=_latency_stats,
                        median=median, geomean=geomean, first_line=first_line, log=log)
                elif phase == "accelerated":
                    res["accelerated"] = accelerated.phase_accelerated(
                        args, binary, mesh, data_dir, base, load_query=load_query, latency_stats=_latency_stats,
                        median=median, geomean=geomean, first_line=first_line, log=log, process_cpu=_process_cpu,
                        point_sql=POINT_SQL)
                elif phase == "distributed":
                    res["distributed"] = distributed.phase_distributed(
                        args, binary, mesh, base, load_query=load_query, median=median, geomean=geomean,
                        first_line=first_line, log=log)
            except Exception as e:  # noqa: BLE001
                traceback.print_exc()
                res["errors"].append(f"phase {phase}: {first_line(e)}")
            if server is not None and not server.alive():
                res["errors"].append(f"meshgate exited with status {server.proc.returncode} during phase {phase}")
                log(f"meshgate died; log tail:\n{server.log_tail()}")
                break
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        res["errors"].append(first_line(e))
    finally:
        for e in list(engines.values()) + ([extra] if extra else []):
            e.close()
        if server is not None:
            hwm = server.vm_hwm_kb() if server.alive() else None
            phases = monitor.stop() if monitor else {}
            code = server.stop()
            res["server"] = {"vm_hwm_kb": hwm, "phases": phases, "exit_code": code, "startup_seconds": startup,
                             "log": os.path.relpath(base + ".server.log", REPO)}

    res["targets"] = targets(res, args.sf)
    # problems that make the exit status non-zero
    for qid, q in res.get("tpch", {}).get("queries", {}).items():
        for k, v in q["errors"].items():
            res["errors"].append(f"{qid.upper()} {k}: {v}")
        for k, c in q["checks"].items():
            if not c["ok"]:
                res["errors"].append(f"{qid.upper()} {k}: results differ: {c['detail']}")
    res["errors"] += [f"audit phase: {e}" for e in res.get("audit", {}).get("errors", [])]
    res["errors"] += [f"accelerated phase: {e}" for e in res.get("accelerated", {}).get("errors", [])]
    res["errors"] += [f"distributed phase: {e}" for e in res.get("distributed", {}).get("errors", [])]
    if "export" in res and not res["export"].get("rows_agree", True):
        res["errors"].append("export: row counts differ between readers")

    report = render(res)
    with open(base + ".md", "w") as f:
        f.write(report + "\n")
    with open(base + ".json", "w") as f:
        json.dump(res, f, indent=2, default=str)
    print(report, flush=True)
    log(f"report: {os.path.relpath(base + '.md', REPO)} (numbers: .json, server log: .server.log)")
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
