"""A distributed meshgate on loopback: `meshgate worker` processes and a gateway started
with --workers, sharing a ticket secret and the mask keys (docs/distributed.md).

The gateway spreads every query that can travel (`--distribute-min-bytes 0`) over as many
workers as its scans allow (`--distribute-partition-bytes 1`: the demo's small files
still fill several tasks), so the suites that run against it exercise distributed plans.
"""

from __future__ import annotations

import re
from pathlib import Path

import mgtest

TICKET_SECRET = "distributed-suite-ticket-secret-0123456789abcdef"
SECRET_ENV = {"MESHGATE_TICKET_SECRET": TICKET_SECRET}
# Every query that can travel does, over as many tasks as there are workers.
DISTRIBUTE_ARGS = ["--distribute-min-bytes", "0", "--distribute-partition-bytes", "1"]
QUERY_LINE = re.compile(r"workers=(\d+) stages=(\d+) .*sql=(.*)$")


class Worker(mgtest.Server):
    """One `meshgate worker` process."""

    COMMAND = "worker"
    READY = re.compile(r"^meshgate worker listening on (http://127\.0\.0\.1:(\d+))$")


class Cluster:
    """`workers` worker processes and a gateway over them. The gateway's extra `serve`
    flags come in `args`; `env` goes to every process (mask keys, IdP secrets)."""

    def __init__(self, binary: Path, config, log_dir: Path, *, workers: int = 3, env: dict | None = None,
                 name: str = "dist", args=()):
        self.env = {**(env or {}), **SECRET_ENV}
        self.workers = [Worker(binary, config, log_dir=log_dir, env=self.env, name=f"{name}-worker{i}")
                        for i in range(workers)]
        self.gateway_args = list(args)
        self.binary, self.config, self.log_dir, self.name = binary, config, log_dir, name
        self.gateway: mgtest.Server | None = None

    def start(self) -> "Cluster":
        for worker in self.workers:
            worker.start()
        addresses = ",".join(w.uri for w in self.workers)
        self.gateway = mgtest.Server(self.binary, self.config, log_dir=self.log_dir, env=self.env, name=self.name,
                                     args=[*DISTRIBUTE_ARGS, "--workers", addresses, *self.gateway_args])
        self.gateway.start()
        return self

    @property
    def uri(self) -> str:
        assert self.gateway is not None and self.gateway.uri is not None
        return self.gateway.uri

    def stop(self, check: bool = True) -> None:
        errors = []
        for process in [self.gateway, *self.workers]:
            if process is None or process.proc is None:
                continue
            try:
                process.stop(check=check)
            except AssertionError as error:
                errors.append(str(error))
        assert not errors, "\n\n".join(errors)

    def spread_of(self, marker: str) -> tuple[int, int]:
        """(workers, stages) of the query whose SQL holds `marker`, from the gateway's
        query log line (the last such line)."""
        assert self.gateway is not None
        found = None
        for line in self.gateway.stderr_text().splitlines():
            if marker in line and " query " in f" {line} ":
                m = QUERY_LINE.search(line)
                if m:
                    found = (int(m.group(1)), int(m.group(2)))
        assert found is not None, f"no query line with {marker!r} in the gateway's log"
        return found
