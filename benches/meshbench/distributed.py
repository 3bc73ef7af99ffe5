"""The distributed phase (issue 17): TPC-H on a gateway spreading queries over two local
`meshgate worker` processes, side by side with a single-node gateway on the same data.

On one machine the workers share the cores with the gateway, so this shows the overhead
of distribution, not a speedup. Per query it reports both medians, their ratio, the
bytes that crossed loopback beyond what the single-node run sent (stage plans and
shuffled rows), and where the CPU went (gateway and workers). From those it models the
time on N hosts (docs/distributed.md): the gateway's share stays, the workers' CPU
divides over N hosts of this machine's cores, and the extra bytes cross a 10 Gbit/s
network in parallel.
"""

from __future__ import annotations

import time

SECRET = {"MESHGATE_TICKET_SECRET": "meshbench-distributed-secret-0123456789"}
WORKERS = 2
NETWORK_BYTES_PER_SECOND = 10e9 / 8  # a 10 Gbit/s network per host
HOSTS = (1, 2, 4, 8, 16)


def _loopback_bytes() -> int:
    """Bytes received on the loopback interface so far (/proc/net/dev)."""
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[0])
    return 0


def phase_distributed(args, binary: str, mesh: str, base: str, *, load_query, median, geomean, first_line,
                      log) -> dict:
    import os

    from . import compare
    from .engines import Meshgate
    from .server import Server

    cores = os.cpu_count() or 1
    out: dict = {"workers": WORKERS, "cores": cores, "queries": {}, "errors": []}
    workers = [Server(binary, mesh, f"{base}.worker{i}.log", command="worker", env=SECRET) for i in range(WORKERS)]
    processes = list(workers)
    engines: dict = {}
    try:
        addresses = ",".join(w.start() for w in workers)
        single = Server(binary, mesh, base + ".single.server.log", env=SECRET)
        gateway = Server(binary, mesh, base + ".distributed.server.log", env=SECRET,
                         extra_args=["--workers", addresses, "--distribute-min-bytes", "0"])
        processes += [single, gateway]
        engines = {"single": Meshgate(single.start()), "distributed": Meshgate(gateway.start())}
        log(f"distributed: gateway over {addresses}; single-node gateway beside it")
        for n in args.queries:
            qid = f"q{n:02d}"
            sql = load_query(n)
            q: dict = {"median": {}, "errors": {}}
            try:
                expected = engines["single"].run(sql)
                actual = engines["distributed"].run(sql)
                ok, why = compare.compare(expected, actual, sql)
                q["check"] = {"ok": ok, "detail": why}
                if not ok:
                    out["errors"].append(f"{qid}: distributed rows differ from single-node: {why}")
                for name, server_set in (("single", [single]), ("distributed", [gateway, *workers])):
                    times, net, cpu = [], [], {}
                    for _ in range(args.runs):
                        cpu0 = {id(s): s.cpu_seconds() or 0.0 for s in server_set}
                        lo0 = _loopback_bytes()
                        t = time.perf_counter()
                        engines[name].run(sql)
                        times.append(time.perf_counter() - t)
                        net.append(_loopback_bytes() - lo0)
                        for s in server_set:
                            cpu.setdefault(id(s), []).append((s.cpu_seconds() or 0.0) - cpu0[id(s)])
                    q["median"][name] = median(times)
                    q[f"{name}_loopback_bytes"] = median(net)
                    if name == "distributed":
                        q["gateway_cpu"] = median(cpu[id(gateway)])
                        q["workers_cpu"] = sum(median(cpu[id(w)]) for w in workers)
                    else:
                        q["single_cpu"] = median(cpu[id(single)])
            except Exception as e:  # noqa: BLE001
                q["errors"]["distributed"] = first_line(e)
                out["errors"].append(f"{qid}: {first_line(e)}")
            m = q["median"]
            if "single" in m and "distributed" in m:
                q["ratio"] = m["distributed"] / m["single"]
                q["extra_bytes"] = max(0, q["distributed_loopback_bytes"] - q["single_loopback_bytes"])
                q["model"] = {
                    str(h): q["gateway_cpu"] + q["workers_cpu"] / (h * cores)
                    + q["extra_bytes"] / (h * NETWORK_BYTES_PER_SECOND)
                    for h in HOSTS
                }
                log(f"{qid} single {m['single']:.3f}s distributed {m['distributed']:.3f}s ratio {q['ratio']:.2f} "
                    f"extra bytes {q['extra_bytes'] / 2**20:,.1f} MiB gateway {q['gateway_cpu']:.2f} CPU s "
                    f"workers {q['workers_cpu']:.2f} CPU s")
            out["queries"][qid] = q
        complete = [q for q in out["queries"].values() if "ratio" in q]
        out["geomean"] = {n: geomean([q["median"][n] for q in complete]) for n in ("single", "distributed")}
        out["geomean_ratio"] = geomean([q["ratio"] for q in complete])
        out["model_geomean"] = {
            str(h): geomean([q["model"][str(h)] for q in complete]) for h in HOSTS
        } if complete else {}
        out["geomean_queries"] = len(complete)
    finally:
        for e in engines.values():
            e.close()
        for p in reversed(processes):
            p.stop()
    return out


def render(d: dict, fmt) -> list[str]:
    L = ["## Distributed execution", ""]
    L.append(f"A gateway spreading each query over {d.get('workers')} `meshgate worker` processes on this machine, "
             "against a single-node gateway on the same data, side by side (benches/meshbench/distributed.py). "
             "Medians in seconds; every distributed result is checked against the single-node one. Extra bytes: "
             "what crossed loopback beyond the single-node run (stage plans and shuffled batches). CPU seconds of "
             "the gateway and of both workers during the distributed run.")
    L.append("")
    L.append("| query | single | distributed | ratio | extra MiB | gateway CPU s | workers CPU s | single CPU s |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for qid, q in d.get("queries", {}).items():
        m = q["median"]
        L.append(f"| {qid} | {fmt(m.get('single'))} | {fmt(m.get('distributed'))} | {fmt(q.get('ratio'), '.2f')} | "
                 f"{fmt((q.get('extra_bytes') or 0) / 2**20, ',.1f')} | {fmt(q.get('gateway_cpu'), '.2f')} | "
                 f"{fmt(q.get('workers_cpu'), '.2f')} | {fmt(q.get('single_cpu'), '.2f')} |")
    g = d.get("geomean", {})
    L.append(f"| **geomean** | {fmt(g.get('single'))} | {fmt(g.get('distributed'))} | "
             f"**{fmt(d.get('geomean_ratio'), '.2f')}** | | | | |")
    model = d.get("model_geomean") or {}
    if model:
        L.append("")
        L.append(f"Scale-out on paper: the geometric mean of gateway CPU + workers' CPU / (N hosts × "
                 f"{d.get('cores')} cores) + extra bytes / (N × 10 Gbit/s), from the measured figures "
                 f"(single node measured: {fmt(g.get('single'))} s):")
        L.append("")
        L.append("| hosts | " + " | ".join(model) + " |")
        L.append("|---|" + "---:|" * len(model))
        L.append("| modelled geomean s | " + " | ".join(fmt(v) for v in model.values()) + " |")
    L.append("")
    return L
