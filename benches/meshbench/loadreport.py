"""The load run's report: throughput and latency by kind, errors by gRPC code, wrong and
truncated answers, the server's CPU, RSS and fds over time and, for a soak, the RSS and
fd slopes after warm-up with a flat / not flat verdict."""

from __future__ import annotations

import math

from . import loadgen

# A soak's limits (per hour, least squares over the samples after warm-up). A leak of
# 100 bytes per request at 500 requests/s is 180 MB/hour; allocator noise and caches
# filling up during warm-up stay well below these.
RSS_SLOPE_LIMIT_MB_H = 64.0
FD_SLOPE_LIMIT_H = 30.0
FD_END_TOLERANCE = 16  # fds at the end vs where warm-up ended (medians of a few samples)


def percentile(xs, q):
    if not xs:
        return None
    s = sorted(xs)
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def median(xs):
    return percentile(xs, 50)


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, in value per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in points) / var * 3600.0


def _latency(lat) -> dict:
    ms = sorted(x * 1000 for x in lat)
    return {"p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90), "p99_ms": percentile(ms, 99),
            "max_ms": ms[-1] if ms else None, "mean_ms": (sum(ms) / len(ms)) if ms else None}


def _group(tallies: list[dict], duration: float, deadline: float) -> dict:
    lat = [x for t in tallies for x in t["lat"]]
    in_time = sum(1 for t in tallies for e in t["end"] if e <= deadline)
    outcomes: dict[str, int] = {}
    errors: dict[str, dict[str, int]] = {}
    for t in tallies:
        for k, v in t["outcomes"].items():
            outcomes[k] = outcomes.get(k, 0) + v
        for (code, expected), v in t["errors"].items():
            e = errors.setdefault(code, {"expected": 0, "unexpected": 0})
            e["expected" if expected else "unexpected"] += v
    out = {"count": len(lat), "qps": in_time / duration if duration > 0 else None,
           "ok": outcomes.get(loadgen.OK, 0), "wrong": outcomes.get(loadgen.WRONG, 0),
           "truncated": outcomes.get(loadgen.TRUNCATED, 0), "unexpected_errors": outcomes.get(loadgen.ERROR, 0),
           "errors_by_code": errors}
    out.update(_latency(lat))
    return out


def summarise(raw: dict, workload: loadgen.Workload, *, soak: bool, warmup_fraction: float = 0.2,
              rss_slope_limit: float = RSS_SLOPE_LIMIT_MB_H, fd_slope_limit: float = FD_SLOPE_LIMIT_H,
              fd_end_tolerance: int = FD_END_TOLERANCE) -> dict:
    start, deadline, duration = raw["start"], raw["deadline"], raw["duration"]
    tallies = raw["tallies"]
    by_kind = {k: [tallies[i.name] for i in workload.items.get(k, []) if i.name in tallies] for k in loadgen.KINDS}
    rep: dict = {
        "clients": raw["clients"], "processes": raw["processes"], "duration_s": duration,
        "max_exports": raw.get("max_exports"),
        "mix": workload.mix, "soak": soak, "warmup_fraction": warmup_fraction,
        "total": _group(list(tallies.values()), duration, deadline),
        "kinds": {k: _group(ts, duration, deadline) for k, ts in by_kind.items() if ts},
        "items": {i.name: {"kind": i.kind, "rows": i.rows, "expectation": i.note,
                           **_group([tallies[i.name]], duration, deadline)}
                  for i in workload.all_items() if i.name in tallies},
        "problems": list(raw["problems"]),
    }
    errors: dict[str, dict[str, int]] = {}
    for g in rep["kinds"].values():
        for code, e in g["errors_by_code"].items():
            a = errors.setdefault(code, {"expected": 0, "unexpected": 0})
            a["expected"] += e["expected"]
            a["unexpected"] += e["unexpected"]
    rep["errors_by_code"] = errors
    rep["failures"] = sorted(
        ({"t_s": round(t - start, 3), "item": name, "outcome": o, "code": c, "detail": d}
         for name, tl in tallies.items() for t, o, c, d in tl["samples"]), key=lambda f: f["t_s"])[:50]
    rep["server"] = _server(raw, start, deadline)
    rep["client"] = _client(raw, start, deadline)
    rep["timeline"] = _timeline(raw, workload, start, deadline)
    rep["steady"] = _steady(raw, start, deadline, warmup_fraction, rss_slope_limit, fd_slope_limit,
                            fd_end_tolerance)
    st = rep["steady"]
    warm_end = start + st["warmup_s"]
    done = sum(1 for t in tallies.values() for e in t["end"] if warm_end <= e <= deadline)
    if st.get("rss_slope_mb_per_hour") is not None and done:
        # the slope as bytes per request: what each request would leave behind if it were a leak
        st["rss_bytes_per_request"] = st["rss_slope_mb_per_hour"] * 2**20 / (done / (deadline - warm_end) * 3600)
    t = rep["total"]
    if t["wrong"] or t["truncated"]:
        rep["problems"].append(f"{t['wrong']} wrong and {t['truncated']} truncated answers")
    if t["unexpected_errors"]:
        codes = ", ".join(f"{c} {e['unexpected']}" for c, e in errors.items() if e["unexpected"])
        rep["problems"].append(f"{t['unexpected_errors']} unexpected errors ({codes})")
    if t["count"] == 0:
        rep["problems"].append("no request completed")
    if soak:
        rep["problems"] += rep["steady"]["problems"]
    rep["passed"] = not rep["problems"]
    return rep


def _server(raw, start, deadline) -> dict:
    samples = [s for s in raw["samples"] if s.get("cpu_s") is not None]
    if not samples:
        return {}
    during = [s for s in samples if start <= s["t"] <= deadline] or samples
    first, last = during[0], during[-1]
    span = last["t"] - first["t"]
    out = {
        "samples": [[round(s["t"] - start, 2), round(s["cpu_s"], 2), s["rss_kb"], s["fds"], s["threads"]]
                    for s in samples],
        "sample_columns": ["t_s", "cpu_s", "rss_kb", "fds", "threads"],
        "cpu_s": last["cpu_s"] - first["cpu_s"],
        "cpu_percent": 100.0 * (last["cpu_s"] - first["cpu_s"]) / span if span > 0 else None,
        "rss_mb": {"before": _mb(raw["before"].get("rss_kb")), "start": _mb(first["rss_kb"]),
                   "end": _mb(last["rss_kb"]), "peak": _mb(max(s["rss_kb"] for s in during)),
                   "after": _mb((raw.get("after") or {}).get("rss_kb"))},
        "fds": {"before": raw["before"].get("fds"), "start": first["fds"], "end": last["fds"],
                "max": max(s["fds"] for s in during), "after": (raw.get("after") or {}).get("fds")},
        "threads": {"before": raw["before"].get("threads"), "max": max(s["threads"] for s in during),
                    "after": (raw.get("after") or {}).get("threads")},
    }
    return out


def _client(raw, start, deadline) -> dict:
    during = [s for s in raw["samples"] if start <= s["t"] <= deadline]
    out = {"cpu_s": raw.get("client_cpu_s"), "processes": raw["processes"]}
    if len(during) >= 2:
        a, b = during[0], during[-1]
        span = b["t"] - a["t"]
        if a.get("client_cpu_s") is not None and span > 0:
            out["cpu_percent"] = 100.0 * (b["client_cpu_s"] - a["client_cpu_s"]) / span
        total = b["machine_total"] - a["machine_total"]
        if total > 0:
            out["machine_busy_percent"] = 100.0 * (b["machine_busy"] - a["machine_busy"]) / total
    return out


def _timeline(raw, workload, start, deadline, buckets: int = 30) -> list[dict]:
    """Requests per second by kind, the server's CPU % and its RSS and fds, per bucket."""
    width = max(1.0, (deadline - start) / buckets)
    n = int(math.ceil((deadline - start) / width))
    kind_of = {i.name: i.kind for i in workload.all_items()}
    counts = [dict.fromkeys(loadgen.KINDS, 0) for _ in range(n)]
    for name, t in raw["tallies"].items():
        for e in t["end"]:
            b = int((e - start) // width)
            if 0 <= b < n:
                counts[b][kind_of[name]] += 1
    samples = [s for s in raw["samples"] if s.get("cpu_s") is not None]
    out = []
    for b in range(n):
        t0, t1 = start + b * width, start + (b + 1) * width
        row = {"t_s": round((b + 1) * width, 1), "qps": {k: v / width for k, v in counts[b].items() if v}}
        # the last sample before the bucket and the last one in it
        a = next((s for s in reversed(samples) if s["t"] <= t0), None)
        z = next((s for s in reversed(samples) if s["t"] <= t1), None)
        if a is not None and z is not None and z["t"] > a["t"]:
            row["server_cpu_percent"] = 100.0 * (z["cpu_s"] - a["cpu_s"]) / (z["t"] - a["t"])
        if z is not None:
            row["rss_mb"] = _mb(z["rss_kb"])
            row["fds"] = z["fds"]
        out.append(row)
    return out


def _steady(raw, start, deadline, warmup_fraction, rss_limit, fd_limit, fd_tol) -> dict:
    """RSS and fd slopes over the samples after warm-up, and fds at the end against where
    warm-up ended."""
    warm_end = start + warmup_fraction * (deadline - start)
    after = [s for s in raw["samples"] if warm_end <= s["t"] <= deadline and s.get("rss_kb") is not None]
    out = {"warmup_s": warm_end - start, "samples": len(after), "problems": [],
           "limits": {"rss_mb_per_hour": rss_limit, "fds_per_hour": fd_limit, "fd_end_tolerance": fd_tol}}
    if len(after) < 5:
        out["problems"].append(f"only {len(after)} samples after warm-up: no slope")
        return out
    out["rss_slope_mb_per_hour"] = slope_per_hour([(s["t"] - start, s["rss_kb"] / 1024) for s in after])
    out["fd_slope_per_hour"] = slope_per_hour([(s["t"] - start, s["fds"]) for s in after])
    k = max(3, len(after) // 10)
    out["rss_mb_at_warmup_end"] = _mb(median([s["rss_kb"] for s in after[:k]]))
    out["rss_mb_at_end"] = _mb(median([s["rss_kb"] for s in after[-k:]]))
    out["fds_at_warmup_end"] = median([s["fds"] for s in after[:k]])
    out["fds_at_end"] = median([s["fds"] for s in after[-k:]])
    out["rss_flat"] = out["rss_slope_mb_per_hour"] <= rss_limit
    out["fds_flat"] = out["fd_slope_per_hour"] <= fd_limit and \
        abs(out["fds_at_end"] - out["fds_at_warmup_end"]) <= fd_tol
    out["verdict"] = "flat" if out["rss_flat"] and out["fds_flat"] else "NOT FLAT"
    if not out["rss_flat"]:
        out["problems"].append(f"RSS grows {out['rss_slope_mb_per_hour']:.1f} MB/hour after warm-up "
                               f"(limit {rss_limit:g})")
    if out["fd_slope_per_hour"] > fd_limit:
        out["problems"].append(f"open fds grow {out['fd_slope_per_hour']:.1f}/hour after warm-up (limit {fd_limit:g})")
    if abs(out["fds_at_end"] - out["fds_at_warmup_end"]) > fd_tol:
        out["problems"].append(f"{out['fds_at_end']:.0f} fds at the end vs {out['fds_at_warmup_end']:.0f} "
                               f"when warm-up ended (tolerance {fd_tol})")
    return out


def _mb(kb):
    return None if kb is None else kb / 1024


def _f(x, spec=".1f"):
    return "—" if x is None else format(x, spec)


def render(rep: dict) -> str:
    """The readable summary."""
    L = []
    mode = "soak" if rep["soak"] else "load"
    L.append(f"meshgate {mode} run: {rep['clients']} clients in {rep['processes']} processes, "
             f"{rep['duration_s']:.0f} s, mix " + ", ".join(f"{k} {v:g}" for k, v in rep["mix"].items())
             + (f", at most {rep['max_exports']} exports at a time" if rep.get("max_exports") else ""))
    t = rep["total"]
    L.append(f"requests: {t['count']:,} ({_f(t['qps'])}/s); ok {t['ok']:,}, wrong {t['wrong']}, "
             f"truncated {t['truncated']}, unexpected errors {t['unexpected_errors']}")
    L.append("")
    L.append(f"{'kind':<10} {'requests':>9} {'per s':>8} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} "
             f"{'wrong':>6} {'trunc':>6} {'unexp':>6}")
    for k, g in rep["kinds"].items():
        L.append(f"{k:<10} {g['count']:>9,} {_f(g['qps']):>8} {_f(g['p50_ms']):>9} {_f(g['p99_ms']):>9} "
                 f"{_f(g['max_ms'], '.0f'):>9} {g['wrong']:>6} {g['truncated']:>6} {g['unexpected_errors']:>6}")
    L.append("")
    if rep["errors_by_code"]:
        L.append("errors by gRPC code: " + "; ".join(
            f"{c}: {e['expected']:,} expected, {e['unexpected']:,} unexpected"
            for c, e in sorted(rep["errors_by_code"].items())))
    s = rep.get("server") or {}
    c = rep.get("client") or {}
    if s:
        L.append(f"server: CPU {_f(s['cpu_percent'], '.0f')}% of a core ({_f(s['cpu_s'])} s), "
                 f"RSS MiB before/start/peak/end/after {_f(s['rss_mb']['before'], '.0f')}/"
                 f"{_f(s['rss_mb']['start'], '.0f')}/{_f(s['rss_mb']['peak'], '.0f')}/"
                 f"{_f(s['rss_mb']['end'], '.0f')}/{_f(s['rss_mb']['after'], '.0f')}, fds before/start/max/end/after "
                 f"{s['fds']['before']}/{s['fds']['start']}/{s['fds']['max']}/{s['fds']['end']}/{s['fds']['after']}, "
                 f"threads max {s['threads']['max']}")
    L.append(f"client: CPU {_f(c.get('cpu_percent'), '.0f')}% of a core ({_f(c.get('cpu_s'))} s); "
             f"machine busy {_f(c.get('machine_busy_percent'), '.0f')}%")
    st = rep["steady"]
    if "rss_slope_mb_per_hour" in st:
        per_request = f"{st['rss_bytes_per_request']:+,.0f} bytes/request, " if "rss_bytes_per_request" in st else ""
        line = (f"after warm-up ({st['warmup_s']:.0f} s, {st['samples']} samples): RSS slope "
                f"{st['rss_slope_mb_per_hour']:+.1f} MB/hour ({per_request}{_f(st['rss_mb_at_warmup_end'])} -> "
                f"{_f(st['rss_mb_at_end'])} MiB), fd slope {st['fd_slope_per_hour']:+.1f}/hour "
                f"({st['fds_at_warmup_end']:.0f} -> {st['fds_at_end']:.0f})")
        if rep["soak"]:
            line += (f": {st['verdict']} (limits {st['limits']['rss_mb_per_hour']:g} MB/hour, "
                     f"{st['limits']['fds_per_hour']:g} fds/hour, ±{st['limits']['fd_end_tolerance']} fds)")
        L.append(line)
    L.append("")
    L.append(f"{'t s':>6} {'req/s':>8} {'server CPU%':>11} {'RSS MiB':>8} {'fds':>5}")
    for row in rep["timeline"]:
        L.append(f"{row['t_s']:>6.0f} {sum(row['qps'].values()):>8.1f} {_f(row.get('server_cpu_percent'), '.0f'):>11} "
                 f"{_f(row.get('rss_mb'), '.0f'):>8} {row.get('fds', '—'):>5}")
    if rep["failures"]:
        L.append("")
        L.append("first failures:")
        for f in rep["failures"][:10]:
            L.append(f"  {f['t_s']:8.2f}s {f['item']}: {f['outcome']} {f['code'] or ''} {f['detail']}")
    L.append("")
    L.append("PASSED" if rep["passed"] else "FAILED: " + "; ".join(rep["problems"]))
    return "\n".join(L)
