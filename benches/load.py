#!/usr/bin/env python3
"""meshgate under load: many concurrent clients with a mixed workload, every answer
checked; a soak mode that also checks the server's memory and open files stay flat.

    benches/run.sh load --duration 180                    # 64 clients, 3 minutes, TPC-H SF1
    benches/run.sh load --soak --duration 1800            # the 30-minute soak
    benches/run.sh load --uri grpc://127.0.0.1:50051 --pid 1234 --data-dir DIR

Starts meshgate on the TPC-H data of benches/run.sh (or attaches to a running one with
--uri), prepares the workload with one client (meshbench.loadgen: every answer checked
against DuckDB on the same files), then runs --clients clients in --processes
processes for --duration seconds (meshbench.loadrun) and reports (meshbench.loadreport):
requests per second and p50/p99 latency by kind, errors by gRPC code (expected and
unexpected), wrong and truncated answers, the server's CPU, RSS and fds over time and,
after warm-up, the RSS and fd slopes. Writes <results>/<timestamp>-load-sf<SF>.json and
.txt (and the server's log); exit status 1 when an answer was wrong or truncated, an
error was unexpected, the server died, or (--soak) RSS or fds were not flat.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from meshbench import data, loadgen, loadreport, loadrun  # noqa: E402
from meshbench.data import log  # noqa: E402

# Appended to the data's mesh.yaml: an anonymous principal that reads everything.
OPEN_ACCESS_YAML = """
auth:
  anonymous: { name: load, groups: [load] }
governance:
  policies:
    - grants: [{ id: load-readers, effect: permit }]
      row_filters: [{ id: all-rows, mode: permissive, filter: "true" }]
      columns: [{ id: all-columns, select: "*", action: allow }]
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="benches/run.sh load", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=180.0, help="seconds of load (default 180)")
    p.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    p.add_argument("--processes", type=int, default=4, help="client processes the clients are spread over (default 4)")
    p.add_argument("--soak", action="store_true",
                   help="also require RSS and open fds to be flat after warm-up (slopes under the limits)")
    p.add_argument("--warmup", type=float, default=0.2, help="fraction of the run before slopes are measured (default 0.2)")
    p.add_argument("--rss-slope-limit", type=float, default=loadreport.RSS_SLOPE_LIMIT_MB_H,
                   help=f"soak: RSS MB/hour after warm-up, at most (default {loadreport.RSS_SLOPE_LIMIT_MB_H:g})")
    p.add_argument("--fd-slope-limit", type=float, default=loadreport.FD_SLOPE_LIMIT_H,
                   help=f"soak: open fds/hour after warm-up, at most (default {loadreport.FD_SLOPE_LIMIT_H:g})")
    p.add_argument("--mix", default=",".join(f"{k}={v}" for k, v in loadgen.DEFAULT_MIX.items()),
                   help="weights of the kinds (default %(default)s)")
    p.add_argument("--queries", default=",".join(loadgen.DEFAULT_TPCH), help="TPC-H queries of the tpch kind")
    p.add_argument("--max-exports", type=int, default=4,
                   help="exports in flight at most, over all clients (default 4; 0: no limit); an export drawn "
                        "while all are taken is drawn again")
    p.add_argument("--scale-factor", "--sf", dest="sf", default="1", help="TPC-H scale factor (default 1)")
    p.add_argument("--data-dir", help="mesh data directory (<domain>/<table>/*.parquet; default benches/data/sf<SF>)")
    p.add_argument("--skip-generate", action="store_true", help="fail instead of generating missing data")
    p.add_argument("--binary", "--meshgate", dest="binary", default=os.environ.get("MESHGATE_BIN"),
                   help="meshgate binary (default $MESHGATE_BIN, else cargo build --profile dist)")
    p.add_argument("--uri", help="attach to this running server instead of starting one (anonymous access)")
    p.add_argument("--pid", type=int, help="with --uri: the server's process id, to sample its CPU, RSS and fds")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", metavar="PATH", help="also write the JSON report here")
    p.add_argument("--results-dir", default=os.path.join(HERE, "results"))
    args = p.parse_args(argv)
    args.sf = data.sf_label(args.sf)
    try:
        args.mix = {k.strip(): float(v) for k, v in (x.split("=") for x in args.mix.split(",") if x.strip())}
    except ValueError:
        p.error("--mix: expected kind=weight,... e.g. point=50,tpch=8")
    bad = set(args.mix) - set(loadgen.KINDS)
    if bad or not any(v > 0 for v in args.mix.values()):
        p.error(f"--mix: kinds are {', '.join(loadgen.KINDS)}, at least one weight above 0")
    args.queries = tuple(f"q{int(q.strip().lstrip('qQ')):02d}" for q in args.queries.split(",") if q.strip())
    if args.clients < 1 or args.duration <= 0:
        p.error("--clients and --duration must be positive")
    return args


def sources(data_dir: str) -> dict[str, str]:
    """DuckDB readers of the data directory's tables."""
    return {f"{d}.{t}": f"read_parquet('{os.path.join(data.table_dir(data_dir, t), '*.parquet')}')"
            for t, d in data.TABLES.items()}


def main(argv=None) -> int:
    args = parse_args(argv)
    from meshbench.server import Server
    from tpch import machine_info, prepare_data, versions

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(args.results_dir, exist_ok=True)
    base = os.path.join(args.results_dir, f"{stamp}-{'soak' if args.soak else 'load'}-sf{args.sf}")
    data_dir, _ = prepare_data(args)
    server = None
    binary = None
    if args.uri:
        target = loadgen.Target(args.uri, sources(data_dir), pid=args.pid)
    else:
        binary = os.path.abspath(args.binary or data.build_meshgate(REPO))
        mesh = os.path.join(data_dir, "mesh-load.yaml")
        with open(os.path.join(data_dir, "mesh.yaml")) as src, open(mesh, "w") as dst:
            dst.write(src.read() + OPEN_ACCESS_YAML)
        server = Server(binary, mesh, base + ".server.log")
        server.start()
        log(f"meshgate ready at {server.uri} (pid {server.pid})")
        target = loadgen.Target(server.uri, sources(data_dir), pid=server.pid)
    try:
        t0 = time.monotonic()
        workload = loadgen.prepare(target, args.mix, args.queries, log=log)
        log(f"workload prepared in {time.monotonic() - t0:.1f}s: "
            + ", ".join(f"{k} {len(v)}" for k, v in workload.items.items()))
        raw = loadrun.run(target, workload, clients=args.clients, processes=args.processes,
                          duration=args.duration, max_exports=args.max_exports or None, seed=args.seed, log=log,
                          server_alive=server.alive if server else None)
    finally:
        code = server.stop() if server else None
    rep = loadreport.summarise(raw, workload, soak=args.soak, warmup_fraction=args.warmup,
                               rss_slope_limit=args.rss_slope_limit, fd_slope_limit=args.fd_slope_limit)
    if server is not None and code not in (0, None):
        rep["problems"].append(f"meshgate exited with status {code} after SIGTERM")
        rep["passed"] = False
    command = " ".join(["benches/run.sh load"] + [shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)])
    rep["header"] = {"date": stamp, "command": command, "sf": args.sf, "data_dir": data_dir,
                     "target": target.uri, "machine": machine_info(), "versions": versions(binary),
                     "server_log": base + ".server.log" if server else None}
    text = f"{command}\n{rep['header']['machine']['cpu']}, {rep['header']['machine']['cores']} cores; " \
           f"TPC-H SF{args.sf}\n\n" + loadreport.render(rep)
    for path in [base + ".json"] + ([args.json] if args.json else []):
        with open(path, "w") as f:
            json.dump(rep, f, indent=1, default=str)
    with open(base + ".txt", "w") as f:
        f.write(text + "\n")
    print(text, flush=True)
    log(f"report: {os.path.relpath(base + '.txt', REPO)} (and .json)")
    return 0 if rep["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
