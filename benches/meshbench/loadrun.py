"""Running a workload (meshbench.loadgen) against a server: client processes, each with
one thread per client, every client with its own connections for the whole run; the
server's CPU, RSS, open file descriptors and threads sampled from /proc meanwhile.

Clients are spread over several processes (spawned, so the ADBC driver's Go runtime
starts fresh in each): ADBC and pyarrow release the GIL while they wait and decode, but
checking answers is Python, and one process's GIL would cap the request rate before
the server does. The client processes' CPU is sampled too, so a run shows whether the
client or the server was the limit.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import random
import resource
import threading
import time
from array import array

from . import loadgen

SAMPLES_KEPT = 5  # failure examples kept per item and process


def _proc_cpu(pid: int) -> float | None:
    """utime + stime of a process (all its threads), seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "Threads"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def _fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def _machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts) - idle, sum(parts)


def sample_server(pid: int) -> dict:
    st = _proc_status(pid)
    return {"t": time.monotonic(), "cpu_s": _proc_cpu(pid), "rss_kb": st.get("VmRSS"),
            "threads": st.get("Threads"), "fds": _fd_count(pid)}


class Sampler:
    """Every `interval` seconds: the server's CPU seconds, RSS, fds and threads, the
    client processes' CPU seconds and the machine's busy fraction."""

    def __init__(self, server_pid: int | None, interval: float = 1.0):
        self.server_pid = server_pid
        self.interval = interval
        self.client_pids: list[int] = []
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def take(self) -> dict:
        s = sample_server(self.server_pid) if self.server_pid else {"t": time.monotonic()}
        cpu = [_proc_cpu(p) for p in self.client_pids]
        s["client_cpu_s"] = sum(c for c in cpu if c is not None) if self.client_pids else None
        s["machine_busy"], s["machine_total"] = _machine_cpu()
        return s

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.samples.append(self.take())
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> list[dict]:
        self._stop.set()
        self._thread.join(5)
        return self.samples


# --------------------------------------------------------------------------- client processes


def _new_tally() -> dict:
    return {"lat": array("d"), "end": array("d"), "outcomes": {}, "errors": {}, "samples": []}


def _pick(workload, rng, export_slots) -> tuple:
    """The next request, and whether it holds an export slot (when every slot is taken,
    an export drawn is drawn again: exports run for seconds and hold the server's memory,
    so a burst of them would swamp the rest and make RSS follow their number)."""
    item = workload.pick(rng)
    if item.kind != "export" or export_slots is None:
        return item, False
    for _ in range(100):
        if export_slots.acquire(blocking=False):
            return item, True
        item = workload.pick(rng)
        if item.kind != "export":
            return item, False
    export_slots.acquire()  # a mix of exports alone
    return item, True


def _client_loop(client, workload, rng, timing, stop, tallies, export_slots) -> None:
    deadline = timing[1]
    while not stop.is_set():
        t0 = time.monotonic()
        if t0 >= deadline:
            return
        item, slot = _pick(workload, rng, export_slots)
        try:
            outcome, code, detail = loadgen.execute(client, item)
        finally:
            if slot:
                export_slots.release()
        t1 = time.monotonic()
        tally = tallies.get(item.name)
        if tally is None:
            tally = tallies[item.name] = _new_tally()
        tally["lat"].append(t1 - t0)
        tally["end"].append(t1)
        tally["outcomes"][outcome] = tally["outcomes"].get(outcome, 0) + 1
        if code is not None:
            key = (code, outcome == loadgen.OK)
            tally["errors"][key] = tally["errors"].get(key, 0) + 1
        if outcome != loadgen.OK and len(tally["samples"]) < SAMPLES_KEPT:
            tally["samples"].append((t1, outcome, code, detail))


def _worker(wid: int, target, workload, client_ids: list[int], seed: int, exports: int | None, ready_q, go, stop,
            timing, result_q) -> None:
    """One client process: a connection set and a thread per client id."""
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        clients = [loadgen.Client(target) for _ in client_ids]
    except Exception as e:  # noqa: BLE001
        ready_q.put((wid, f"connecting: {loadgen.first_line(e)}"))
        return
    ready_q.put((wid, None))
    go.wait()
    per_thread = [dict() for _ in client_ids]
    slots = threading.BoundedSemaphore(exports) if exports else None
    threads = [
        threading.Thread(target=_client_loop, name=f"client-{cid}",
                         args=(c, workload, random.Random(seed * 1_000_003 + cid), timing, stop, t, slots),
                         daemon=True)
        for c, cid, t in zip(clients, client_ids, per_thread)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for c in clients:
        c.close()
    merged: dict[str, dict] = {}
    for tallies in per_thread:
        _merge(merged, tallies)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - usage0.ru_utime - usage0.ru_stime
    result_q.put((wid, merged, cpu))


def _merge(into: dict, tallies: dict) -> None:
    for name, t in tallies.items():
        m = into.get(name)
        if m is None:
            into[name] = t
            continue
        m["lat"].extend(t["lat"])
        m["end"].extend(t["end"])
        for k, v in t["outcomes"].items():
            m["outcomes"][k] = m["outcomes"].get(k, 0) + v
        for k, v in t["errors"].items():
            m["errors"][k] = m["errors"].get(k, 0) + v
        m["samples"].extend(t["samples"][: max(0, SAMPLES_KEPT - len(m["samples"]))])


def run(target: loadgen.Target, workload: loadgen.Workload, *, clients: int = 64, processes: int = 4,
        duration: float = 60.0, max_exports: int | None = 4, seed: int = 1, interval: float = 1.0,
        server_alive=None, connect_timeout: float = 300.0, log=lambda m: None) -> dict:
    """Runs `clients` clients for `duration` seconds, at most `max_exports` of them in
    an export at a time (spread over the processes; None: no limit); returns the raw
    measurements (meshbench.loadreport turns them into the report)."""
    processes = max(1, min(processes, clients))
    per_process = max(1, round(max_exports / processes)) if max_exports else None
    ctx = mp.get_context("spawn")
    ready_q, result_q = ctx.Queue(), ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    timing = ctx.Array("d", 2, lock=False)  # start, deadline (monotonic; the clock is machine-wide)
    sampler = Sampler(target.pid, interval)
    before = sampler.take()
    ids = [list(range(clients))[w::processes] for w in range(processes)]
    procs = [ctx.Process(target=_worker, name=f"load-clients-{w}",
                         args=(w, target, workload, ids[w], seed, per_process, ready_q, go, stop, timing, result_q),
                         daemon=True)
             for w in range(processes)]
    for p in procs:
        p.start()
    sampler.client_pids = [p.pid for p in procs]
    raw = {"clients": clients, "processes": processes, "duration": duration, "before": before, "problems": [],
           "lost": [], "max_exports": per_process * processes if per_process else None}
    try:
        failed, ready = [], 0
        give_up = time.monotonic() + connect_timeout
        while ready < len(procs) and not failed:
            try:
                wid, err = ready_q.get(timeout=0.5)
            except queue.Empty:
                dead = [p.name for p in procs if p.exitcode is not None]
                if dead:
                    failed.append(f"{', '.join(dead)} exited before connecting")
                elif time.monotonic() > give_up:
                    failed.append(f"client processes not connected within {connect_timeout:.0f}s")
                continue
            ready += 1
            if err:
                failed.append(f"client process {wid}: {err}")
        if failed:
            raise RuntimeError("; ".join(failed))
        log(f"{clients} clients connected in {processes} processes; running for {duration:.0f}s")
        sampler.start()
        start = time.monotonic() + 0.1
        timing[0], timing[1] = start, start + duration
        go.set()
        results = {}
        wait_until = start + duration + loadgen.CALL_TIMEOUT_S + 60
        next_log = start + max(10.0, duration / 10)
        gone: dict[int, float] = {}  # process -> when it was first seen exited without a result
        while len(results) < len(procs) - len(raw["lost"]):
            try:
                wid, merged, cpu = result_q.get(timeout=1.0)
                results[wid] = (merged, cpu)
                continue
            except queue.Empty:
                pass
            now = time.monotonic()
            for w, p in enumerate(procs):
                if p.exitcode is not None and w not in results and w not in raw["lost"]:
                    # a result may still be in the pipe of a process that just exited
                    if p.exitcode != 0 or now - gone.setdefault(w, now) > 10:
                        raw["lost"].append(w)
                        raw["problems"].append(
                            f"client process {w} ({len(ids[w])} clients) died with exit code {p.exitcode} "
                            f"{now - start:.0f}s into the run: its requests are not counted")
            if server_alive is not None and not server_alive() and not stop.is_set():
                raw["problems"].append(f"the server exited {now - start:.0f}s into the run")
                stop.set()
            if now > wait_until:
                raw["problems"].append("client processes did not finish in time")
                break
            if now >= next_log and now < start + duration:
                s = sampler.samples[-1] if sampler.samples else {}
                log(f"  {now - start:5.0f}s  server RSS {(s.get('rss_kb') or 0) / 1024:,.0f} MiB, "
                    f"fds {s.get('fds')}, threads {s.get('threads')}")
                next_log += max(10.0, duration / 10)
        raw["start"], raw["deadline"] = start, start + duration
        raw["finished"] = time.monotonic()
    finally:
        stop.set()
        go.set()
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.terminate()
                p.join(5)
        sampler.stop()
    raw["samples"] = sampler.samples
    raw["client_cpu_s"] = sum(cpu for _, cpu in results.values())
    tallies: dict[str, dict] = {}
    for merged, _ in results.values():
        _merge(tallies, merged)
    raw["tallies"] = tallies
    raw["after"] = _settled(target.pid, before) if target.pid else None
    return raw


def _settled(pid: int, before: dict, timeout: float = 15.0) -> dict:
    """The server once the clients are gone: sampled until its fd count is back to what
    it was before they connected, or `timeout` passed."""
    deadline = time.monotonic() + timeout
    while True:
        s = sample_server(pid)
        if s.get("fds") is None or before.get("fds") is None or s["fds"] <= before["fds"] \
                or time.monotonic() > deadline:
            return s
        time.sleep(0.2)
