"""The audit-overhead phase: what the audit log and OpenLineage file sinks cost a query.

Two meshgate servers on the same binary and data: one plain, one with
`--audit-dir <tmp>/audit --lineage-file <tmp>/lineage.jsonl`. Their measurements are
interleaved, so machine noise (other processes on a shared machine) hits both alike:
the point query in blocks of round trips, alternating which server goes first; each
TPC-H query's runs alternating one by one. A block keeps the audited server's writer
threads (which work after a query has answered) inside its own share of the time.

Both servers keep every query's record in memory (the `query_log` and `usage` system
tables read it; that cannot be turned off), so the ratio is the price of the two
sinks: the JSON line written by the audit writer, and the START and COMPLETE events
built and appended to the lineage file.

Afterwards the audited server is stopped (it flushes and fsyncs on SIGTERM) and its
files are counted: one audit line and one START and one COMPLETE event per query run,
so the measurement is known to have audited every query.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import shutil
import tempfile
import time

POINT_ROUNDS = 10  # the point-query round trips are split into this many blocks per server
SERVERS = ("plain", "audited")


def phase_audit(args, binary: str, mesh: str, base: str, point_sql: str, *,
                load_query, latency_stats, median, geomean, first_line, log) -> dict:
    from meshbench.engines import Meshgate
    from meshbench.server import Server

    tmp = tempfile.mkdtemp(prefix="meshgate-audit-bench-")
    audit_dir, lineage_file = os.path.join(tmp, "audit"), os.path.join(tmp, "lineage.jsonl")
    sinks = ["--audit-dir", audit_dir, "--lineage-file", lineage_file]
    servers = {
        "plain": Server(binary, mesh, base + ".plain.server.log"),
        "audited": Server(binary, mesh, base + ".audited.server.log", extra_args=sinks),
    }
    clients: dict = {}
    out: dict = {"sql": point_sql, "flags": "--audit-dir <tmp>/audit --lineage-file <tmp>/lineage.jsonl",
                 "point": {}, "queries": {}, "errors": []}
    ran: collections.Counter = collections.Counter()  # audited server: SQL text -> executions
    try:
        for name, server in servers.items():
            clients[name] = Meshgate(server.start())
            log(f"audit phase: {name} meshgate at {server.uri} (pid {server.pid})")

        def run(name, sql):
            t0 = time.perf_counter()
            table = clients[name].run(sql)
            elapsed = time.perf_counter() - t0
            if name == "audited":
                ran[sql] += 1
            return table, elapsed

        # ---- point query: blocks of sequential round trips, order alternating per block
        for name in SERVERS:
            rows = run(name, point_sql)[0].num_rows
            if rows != 1:
                raise RuntimeError(f"point query on the {name} server returned {rows} rows, expected 1")
            for _ in range(min(50, args.latency_count)):  # warm-up
                run(name, point_sql)
        lat = {name: [] for name in SERVERS}
        cpu0 = {name: servers[name].cpu_seconds() for name in SERVERS}
        block = max(1, args.latency_count // POINT_ROUNDS)
        done = 0
        while done < args.latency_count:
            n = min(block, args.latency_count - done)
            order = SERVERS if (done // block) % 2 == 0 else SERVERS[::-1]
            for name in order:
                for _ in range(n):
                    lat[name].append(run(name, point_sql)[1])
            done += n
        for name in SERVERS:
            s = latency_stats(lat[name])
            s["server_cpu_ms_per_query"] = (servers[name].cpu_seconds() - cpu0[name]) * 1000 / len(lat[name])
            out["point"][name] = s
        p, a = out["point"]["plain"], out["point"]["audited"]
        out["point_ratio"] = {k: a[k] / p[k] for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms",
                                                        "server_cpu_ms_per_query")}
        log(f"point query, {p['count']} round trips each: p50 plain {p['p50_ms']:.3f} ms, audited "
            f"{a['p50_ms']:.3f} ms (ratio {out['point_ratio']['p50_ms']:.3f}); p99 {p['p99_ms']:.2f} / "
            f"{a['p99_ms']:.2f} ms")

        # ---- TPC-H: each query's runs alternate between the servers
        for n in args.queries:
            qid, sql = f"q{n:02d}", load_query(n)
            q: dict = {"median": {}, "rows": {}, "errors": {}}
            times = {name: [] for name in SERVERS}
            try:
                for name in SERVERS:
                    q["rows"][name] = run(name, sql)[0].num_rows  # warm-up
                for i in range(args.runs):
                    for name in (SERVERS if i % 2 == 0 else SERVERS[::-1]):
                        times[name].append(run(name, sql)[1])
                q["median"] = {name: median(times[name]) for name in SERVERS}
                q["ratio"] = q["median"]["audited"] / q["median"]["plain"]
                if q["rows"]["plain"] != q["rows"]["audited"]:
                    q["errors"]["rows"] = f"plain returned {q['rows']['plain']} rows, audited {q['rows']['audited']}"
            except Exception as e:  # noqa: BLE001
                q["errors"]["query"] = first_line(e)
            out["queries"][qid] = q
            log(f"{qid} " + "  ".join(f"{k} {v:.3f}s" for k, v in q["median"].items())
                + (f"  ratio {q['ratio']:.3f}" if "ratio" in q else "")
                + "".join(f"\n      {k}: {v}" for k, v in q["errors"].items()))
        complete = [q for q in out["queries"].values() if "ratio" in q]
        out["geomean"] = {name: geomean([q["median"][name] for q in complete]) for name in SERVERS}
        out["geomean_ratio"] = geomean([q["ratio"] for q in complete])
        out["geomean_queries"] = len(complete)
        if complete:
            worst = max(out["queries"], key=lambda k: out["queries"][k].get("ratio", 0))
            out["worst"] = {"query": worst, "ratio": out["queries"][worst]["ratio"]}
    finally:
        for c in clients.values():
            c.close()
        out["exit_codes"] = {name: server.stop() for name, server in servers.items()}

    out["written"] = count_written(audit_dir, lineage_file, ran, point_sql)
    out["errors"] += out["written"]["problems"]
    out["errors"] += [f"{qid.upper()}: {v}" for qid, q in out["queries"].items() for v in q["errors"].values()]
    log("audit phase: " + out["written"]["summary"])
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def count_written(audit_dir: str, lineage_file: str, ran: collections.Counter, point_sql: str) -> dict:
    """What the audited server wrote, against what it was asked to run."""
    expected = sum(ran.values())
    lines, by_sql, outcomes, audit_bytes = 0, collections.Counter(), collections.Counter(), 0
    for path in sorted(glob.glob(os.path.join(audit_dir, "audit*.jsonl"))):
        audit_bytes += os.path.getsize(path)
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                lines += 1
                by_sql[record["sql"]] += 1
                outcomes[record["outcome"]] += 1
    events, runs = collections.Counter(), collections.defaultdict(list)
    lineage_bytes = os.path.getsize(lineage_file) if os.path.exists(lineage_file) else 0
    if lineage_bytes:
        with open(lineage_file) as f:
            for line in f:
                event = json.loads(line)
                events[event["eventType"]] += 1
                runs[event["run"]["runId"]].append(event["eventType"])
    problems = []
    if lines != expected or outcomes["ok"] != expected:
        problems.append(f"audit: {expected} queries run, {lines} lines written ({dict(outcomes)})")
    missing = {sql: n for sql, n in ran.items() if by_sql[sql] != n}
    if missing:
        problems.append(f"audit: {len(missing)} query texts recorded a different number of times than they ran")
    if events["START"] != expected or events["COMPLETE"] != expected or len(events) != 2:
        problems.append(f"lineage: {expected} queries run, events {dict(events)}")
    if any(kinds != ["START", "COMPLETE"] for kinds in runs.values()):
        problems.append("lineage: a run's events are not START then COMPLETE")
    summary = (f"{expected} queries run on the audited server ({ran[point_sql]} point queries); "
               f"{lines} audit lines ({audit_bytes / 1e6:.1f} MB), {events['START']} START and "
               f"{events['COMPLETE']} COMPLETE lineage events ({lineage_bytes / 1e6:.1f} MB)"
               + ("; " + "; ".join(problems) if problems else "; every query accounted for"))
    return {"expected": expected, "point_queries": ran[point_sql], "audit_lines": lines, "audit_bytes": audit_bytes,
            "outcomes": dict(outcomes), "events": dict(events), "lineage_bytes": lineage_bytes,
            "problems": problems, "summary": summary}


def render(a: dict, fmt) -> list[str]:
    L = ["## Audit log and lineage overhead", ""]
    L.append(f"Two servers on the same binary and data, one plain and one with `{a['flags']}` (audit log and "
             "OpenLineage file sinks), measured interleaved (benches/meshbench/audit.py). Both keep each "
             "query's record in memory for the system tables; the ratio is the cost of the two sinks.")
    L.append("")
    L.append(f"`{a['sql']}`, sequential round trips on one ADBC connection per server:")
    L.append("")
    L.append("| server | round trips | p50 ms | p90 ms | p99 ms | mean ms | server CPU ms/query |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    rows = [(name, a["point"][name]) for name in SERVERS if name in a["point"]]
    for name, s in rows:
        L.append(f"| {name} | {s['count']:,} | {fmt(s['p50_ms'])} | {fmt(s['p90_ms'])} | {fmt(s['p99_ms'])} | "
                 f"{fmt(s['mean_ms'])} | {fmt(s['server_cpu_ms_per_query'])} |")
    r = a.get("point_ratio")
    if r:
        L.append(f"| **audited / plain** | | **{r['p50_ms']:.3f}** | {r['p90_ms']:.3f} | {r['p99_ms']:.3f} | "
                 f"{r['mean_ms']:.3f} | {r['server_cpu_ms_per_query']:.3f} |")
    L.append("")
    L.append("| query | plain s | audited s | audited / plain |")
    L.append("|---|---:|---:|---:|")
    for qid, q in a["queries"].items():
        m = q["median"]
        L.append(f"| {qid.upper()} | {fmt(m.get('plain'))} | {fmt(m.get('audited'))} | {fmt(q.get('ratio'))} |"
                 + ("".join(f" {v}" for v in q["errors"].values()) if q["errors"] else ""))
    if "geomean" in a:
        L.append(f"| **geometric mean** ({a['geomean_queries']} queries) | {fmt(a['geomean']['plain'])} | "
                 f"{fmt(a['geomean']['audited'])} | **{fmt(a['geomean_ratio'])}** |")
    L.append("")
    if a.get("worst"):
        L.append(f"Worst query: {a['worst']['query'].upper()} at {a['worst']['ratio']:.3f}.")
    L.append(f"Written by the audited server: {a['written']['summary']}.")
    L.append("")
    return L
