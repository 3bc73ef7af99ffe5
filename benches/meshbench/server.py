"""Run meshgate as a child process and watch its memory and CPU."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time

READY = re.compile(r"meshgate (?:worker )?listening on ((?:grpc|http)://\S+)")


def _status_kb(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[11], fields[12] are utime, stime (fields 14, 15 of proc(5))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """meshgate serve --config CONFIG --bind 127.0.0.1:0 [EXTRA_ARGS], ready once it prints
    its address."""

    def __init__(self, binary: str, config: str, log_path: str, ready_timeout: float = 300.0,
                 extra_args: list[str] | tuple[str, ...] = (), command: str = "serve", env: dict | None = None):
        self.binary = binary
        self.command = command  # serve, or worker (a distributed worker)
        self.env = env
        self.config = config
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen | None = None
        self.uri: str | None = None
        self.stdout_lines: list[str] = []
        self._ready = threading.Event()
        self._log = None

    def start(self) -> str:
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [self.binary, self.command, "--config", self.config, "--bind", "127.0.0.1:0", *self.extra_args],
            env={**os.environ, "NO_COLOR": "1", **(self.env or {})},  # plain log lines: phases parse them
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read_stdout, name="meshgate-stdout", daemon=True).start()
        deadline = time.monotonic() + self.ready_timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"meshgate exited with status {self.proc.returncode} before it was ready; "
                    f"log: {self.log_path}\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"meshgate not ready after {self.ready_timeout:.0f}s; log: {self.log_path}")
        return self.uri

    def _read_stdout(self) -> None:
        # Reads every line (so the pipe never fills); the first READY line sets the URI.
        for line in self.proc.stdout:
            self.stdout_lines.append(line.rstrip("\n"))
            m = READY.search(line)
            if m and not self._ready.is_set():
                self.uri = m.group(1)
                self._ready.set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def vm_hwm_kb(self) -> int | None:
        return _status_kb(self.pid, "VmHWM")

    def cpu_seconds(self) -> float | None:
        """User + system CPU the server has used so far."""
        return _cpu_seconds(self.pid)

    def log_tail(self, n: int = 20) -> str:
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait (meshgate gives in-flight streams a grace period), then SIGKILL."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
        return self.proc.returncode


class Monitor:
    """Samples a process's VmRSS in a background thread; peak RSS and CPU time per phase.

    VmHWM only grows, so the peak of one phase needs sampling."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid = pid
        self.interval = interval
        self.phases: dict[str, dict] = {}
        self._phase: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self, phase: str) -> "Monitor":
        self.phase(phase)
        self._thread.start()
        return self

    def phase(self, name: str) -> None:
        now = time.monotonic()
        cpu = _cpu_seconds(self.pid)
        rss = _status_kb(self.pid, "VmRSS") or 0
        with self._lock:
            self._close(now, cpu)
            self._phase = name
            self.phases[name] = {
                "peak_rss_kb": rss,
                "start_rss_kb": rss,
                "t0": now,
                "cpu0": cpu,
                "samples": 1,
            }

    def _close(self, now: float, cpu: float | None) -> None:
        if self._phase is None:
            return
        p = self.phases[self._phase]
        p["seconds"] = now - p.pop("t0")
        cpu0 = p.pop("cpu0")
        p["cpu_seconds"] = (cpu - cpu0) if (cpu is not None and cpu0 is not None) else None
        rss = _status_kb(self.pid, "VmRSS")
        if rss is not None:
            p["peak_rss_kb"] = max(p["peak_rss_kb"], rss)
            p["end_rss_kb"] = rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rss = _status_kb(self.pid, "VmRSS")
            if rss is None:
                return
            with self._lock:
                if self._phase is not None:
                    p = self.phases[self._phase]
                    p["peak_rss_kb"] = max(p["peak_rss_kb"], rss)
                    p["samples"] += 1

    def stop(self) -> dict[str, dict]:
        now = time.monotonic()
        cpu = _cpu_seconds(self.pid)
        self._stop.set()
        self._thread.join(2)
        with self._lock:
            self._close(now, cpu)
            self._phase = None
        return self.phases
