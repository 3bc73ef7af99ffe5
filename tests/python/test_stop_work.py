"""Cancel, disconnect and timeout stop the server's work, not just the stream.

The runaway queries are aggregates over joins with billions of rows of output: they keep
the server's cores busy for half a minute or more and send nothing until they are done, so a stream
that ends tells nothing about the work behind it. Each way of stopping it (CancelFlightInfo,
the client going away, a client deadline, the query timeout) must end the call at once
and bring the server's CPU time, read from /proc, back to idle: after a grace second,
less than 0.3 CPU-seconds over the next two. The query timeout covers planning too: a
statement that takes seconds to plan is stopped when its time is up. And while a runaway
runs, other clients' queries are answered at once.

Each test has its own server, so the CPU time measured is that test's alone.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import deepsql
from mgtest import (
    DEMO_CONFIG,
    bearer_for,
    cmd_statement_query,
    cpu_seconds,
    describe_exc,
    flight_client,
    flight_grpc_code,
    flight_sql_query,
    query_log_lines,
    server_message,
    wait_for,
)
from test_cancel import CANCELLED, cancel_flight_info, statement_info

# Aggregates over joins whose output is thousands of times their input, with a string
# built per row: a cross join (3.6 billion rows; over a minute on two cores) and an
# equi-join on a key with two values (1.8 billion rows; about half a minute).
RUNAWAYS = {
    "cross_join": ("SELECT max(length(a.l_comment || b.l_comment)) AS {tag} "
                   "FROM sales.lineitem a CROSS JOIN sales.lineitem b"),
    "fan_out_join": ("SELECT max(length(a.l_comment || b.l_comment)) AS {tag} FROM sales.lineitem a "
                     "JOIN sales.lineitem b ON a.l_linestatus = b.l_linestatus"),
}
GRACE = 1.0  # seconds the work may take to wind down
WINDOW = 2.0  # seconds over which the server must then be idle
IDLE_CPU = 0.3  # CPU-seconds allowed in that window
TIMEOUT_HEADER = (b"x-meshgate-query-timeout-seconds", b"1")


@pytest.fixture
def server(start_server):
    srv = start_server(DEMO_CONFIG, name="stop-work")
    yield srv
    srv.stop(check=True)


class Background(threading.Thread):
    """Runs `fn` in the background; keeps its result or error and when it ended."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn = fn
        self.result = self.error = None
        self.ended: float | None = None
        self.start()

    def run(self):
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.ended = time.monotonic()


def wait_until_busy(server) -> None:
    """Until the server uses more than half a core (the runaway query is running)."""
    last = [cpu_seconds(server), time.monotonic()]

    def busy() -> bool:
        now = time.monotonic()
        if now - last[1] < 0.25:
            return False
        cpu = cpu_seconds(server)
        rate = (cpu - last[0]) / (now - last[1])
        last[:] = [cpu, now]
        return rate > 0.5

    wait_for(busy, "the runaway query to keep the server busy", timeout=60)


def cpu_after(server, stopped: float) -> float:
    """CPU-seconds the server used in the WINDOW that starts GRACE after `stopped`.
    (The sleeps are the measurement's time window, not synchronisation.)"""
    time.sleep(max(0.0, stopped + GRACE - time.monotonic()))
    before = cpu_seconds(server)
    time.sleep(WINDOW)
    return cpu_seconds(server) - before


def assert_idle(used: float, what: str) -> None:
    assert used < IDLE_CPU, (
        f"{what}: the server used {used:.2f} CPU-seconds in the {WINDOW:.0f} s starting {GRACE:.0f} s "
        f"after the query was stopped (allowed {IDLE_CPU}): its work goes on")


def assert_logged(server, sql: str, outcome: str) -> None:
    logged = wait_for(lambda: next(iter(query_log_lines(server, sql)), None), "the query's log line")
    assert logged[0] == outcome, logged


def assert_serving(server) -> None:
    client = flight_client(server.uri, "stella")
    try:
        assert flight_sql_query(client, "SELECT count(*) AS n FROM customers.nation").column("n").to_pylist() == [25]
    finally:
        client.close()


def with_timeout(*headers) -> flight.FlightCallOptions:
    return flight.FlightCallOptions(headers=[TIMEOUT_HEADER, *headers])


# --------------------------------------------------------------------------------------
# cancel
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("runaway", list(RUNAWAYS))
def test_cancel_flight_info_stops_the_work(server, runaway):
    sql = RUNAWAYS[runaway].format(tag=f"cancelled_{runaway}")
    client, canceller = flight_client(server.uri, "stella"), flight_client(server.uri, "stella")
    info = statement_info(client, sql)
    run = Background(lambda: client.do_get(info.endpoints[0].ticket).read_all())
    wait_until_busy(server)
    assert run.ended is None, f"the query ended before it was cancelled: {run.result or describe_exc(run.error)}"

    sent = time.monotonic()
    assert cancel_flight_info(canceller, info) == CANCELLED
    run.join(30)
    assert run.ended is not None, "the stream was still open 30 s after the cancel"
    assert run.error is not None and flight_grpc_code(run.error) == "CANCELLED", describe_exc(run.error)
    used = cpu_after(server, run.ended)
    print(f"\nCancelFlightInfo: CANCELLED after {run.ended - sent:.2f} s, then {used:.2f} CPU-s")
    assert run.ended - sent < 1.0, f"CANCELLED came {run.ended - sent:.2f} s after the cancel"
    assert_idle(used, "after CancelFlightInfo")
    assert_logged(server, sql, "cancelled")
    assert_serving(server)
    client.close()
    canceller.close()


# --------------------------------------------------------------------------------------
# the client goes away
# --------------------------------------------------------------------------------------

# A client in its own process, killed mid-query: its connection closes as when a
# program crashes or a laptop lid shuts.
_READER = """
import sys
import pyarrow.flight as flight
uri, bearer, ticket = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
options = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer " + bearer.encode())])
flight.FlightClient(uri).do_get(flight.Ticket(ticket), options).read_all()
"""


@pytest.mark.parametrize("runaway", list(RUNAWAYS))
def test_a_client_that_disconnects_mid_query_stops_the_work(server, runaway):
    sql = RUNAWAYS[runaway].format(tag=f"disconnected_{runaway}")
    client = flight_client(server.uri, "stella")
    ticket = statement_info(client, sql).endpoints[0].ticket.ticket
    reader = subprocess.Popen([sys.executable, "-c", _READER, server.uri, bearer_for(server.uri, "stella"), ticket.hex()],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_busy(server)
        assert reader.poll() is None, f"the reader ended early: {reader.stderr.read().decode()}"
    finally:
        reader.kill()
        reader.wait()
    used = cpu_after(server, time.monotonic())
    print(f"\nclient disconnected: then {used:.2f} CPU-s")
    assert_idle(used, "after the client disconnected")
    assert_logged(server, sql, "cancelled")
    assert_serving(server)
    client.close()


@pytest.mark.parametrize("runaway", list(RUNAWAYS))
def test_a_client_deadline_stops_the_work(server, runaway):
    """The client gives up after 2 s (a gRPC deadline): the server stops as well."""
    sql = RUNAWAYS[runaway].format(tag=f"client_deadline_{runaway}")
    client = flight_client(server.uri, "stella")
    info = statement_info(client, sql)
    started = time.monotonic()
    run = Background(lambda: client.do_get(info.endpoints[0].ticket, flight.FlightCallOptions(timeout=2.0)).read_all())
    run.join(30)
    assert run.ended is not None, "the client's own deadline did not end the call"
    assert run.error is not None and flight_grpc_code(run.error) == "DEADLINE_EXCEEDED", describe_exc(run.error)
    used = cpu_after(server, run.ended)
    print(f"\nclient deadline of 2 s: the call ended after {run.ended - started:.2f} s, then {used:.2f} CPU-s")
    assert run.ended - started < 3.0, f"the call ended {run.ended - started:.2f} s after it began"
    assert_idle(used, "after the client's deadline")
    assert_serving(server)
    client.close()


# --------------------------------------------------------------------------------------
# the query timeout
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("runaway", list(RUNAWAYS))
def test_the_query_timeout_stops_the_work(server, runaway):
    sql = RUNAWAYS[runaway].format(tag=f"timed_out_{runaway}")
    client = flight_client(server.uri, "stella")
    started = time.monotonic()
    error = None
    try:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)), with_timeout())
        client.do_get(info.endpoints[0].ticket, with_timeout()).read_all()
    except (flight.FlightError, pa.ArrowException) as exc:
        error = exc
    ended = time.monotonic()
    assert error is not None, "the runaway query finished within its 1-second timeout"
    assert flight_grpc_code(error) == "DEADLINE_EXCEEDED", describe_exc(error)
    assert "1-second query timeout" in server_message(error), describe_exc(error)
    used = cpu_after(server, ended)
    print(f"\nquery timeout of 1 s: DEADLINE_EXCEEDED after {ended - started:.2f} s, then {used:.2f} CPU-s")
    assert ended - started < 1.5, f"DEADLINE_EXCEEDED came {ended - started:.2f} s after GetFlightInfo began"
    assert_idle(used, "after the query timeout")
    assert_logged(server, sql, "failed")
    assert_serving(server)
    client.close()


# Statements that take seconds to plan: DataFusion's planning of a `+` chain grows with
# about the square of its length, and meshgate admits chains whose squares add up to
# one chain of 4,000 (four of 3,000 are refused). Planning is DataFusion's synchronous
# work in steps (SQL to plan: about 15% of it for these chains; analysis: 70%;
# optimization and physical planning); a timed-out planning task is aborted at the next
# boundary between them, so the steps after the one the timeout falls in never run.
# How long each takes depends on the machine and the build, so the test first plans the
# shape without a timeout, sized until that takes PLAN_SECONDS, then again under a
# timeout short enough to fall in the first step: the server must go idle well before
# the untimed planning ended.
PLAN_SECONDS = 5.0
CHAIN_TERMS = (600, 800, 1_100, 1_500, 1_990)
STOPPED_BY = 0.5  # the server is idle before this share of the untimed planning
PLANNING_TIMEOUT = (b"x-meshgate-query-timeout-seconds", b"0.25")


def slow_to_plan(terms: int, tag: str) -> str:
    return deepsql.wide_plus_chains(4, terms).replace(" AS s0", f" AS {tag}")


def planning_seconds(client, sql: str) -> float:
    """Wall time of one untimed GetFlightInfo (the server's CPU follows it)."""
    started = time.monotonic()
    client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)))
    return time.monotonic() - started


def idle_after(server, since: float, limit: float) -> float | None:
    """Seconds from `since` until the server's CPU is idle (two 0.25 s windows in a row
    with less than 0.03 CPU-seconds each, so one window of a starved thread does not
    count), or None if it is still busy `limit` seconds after."""
    previous, idle_since = cpu_seconds(server), None
    while time.monotonic() - since < limit:
        time.sleep(0.25)  # a measuring window, not synchronisation
        now = cpu_seconds(server)
        if now - previous >= 0.03:
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic() - 0.25 - since
        else:
            return idle_since
        previous = now
    return None


def test_the_query_timeout_covers_planning(server):
    client = flight_client(server.uri, "stella")
    for terms in CHAIN_TERMS:
        untimed = planning_seconds(client, slow_to_plan(terms, f"untimed_{terms}"))
        if untimed >= PLAN_SECONDS:
            break
    assert untimed > 3.0, (
        f"four chains of {terms} terms planned in {untimed:.2f} s without a timeout: "
        "this test needs a statement that plans for longer")
    started = time.monotonic()
    error = None
    try:
        client.get_flight_info(
            flight.FlightDescriptor.for_command(cmd_statement_query(slow_to_plan(terms, f"timed_{terms}"))),
            flight.FlightCallOptions(headers=[PLANNING_TIMEOUT]))
    except (flight.FlightError, pa.ArrowException) as exc:
        error = exc
    ended = time.monotonic()
    assert error is not None, f"GetFlightInfo answered after {ended - started:.2f} s despite its 0.25-second timeout"
    assert flight_grpc_code(error) == "DEADLINE_EXCEEDED", describe_exc(error)
    assert "0.25-second query timeout" in server_message(error), describe_exc(error)
    assert ended - started < 0.75, f"DEADLINE_EXCEEDED came {ended - started:.2f} s after GetFlightInfo began"
    # then the planning stops at the next step: idle well before it would have ended
    idle = idle_after(server, started, untimed + 5.0)
    print(f"\nplanning four chains of {terms} terms: {untimed:.2f} s untimed; under a 0.25 s timeout "
          f"DEADLINE_EXCEEDED after {ended - started:.2f} s, the server idle "
          f"{'never' if idle is None else f'{idle:.2f} s'} after the call began")
    assert idle is not None and idle <= STOPPED_BY * untimed, (
        f"the server planned for {'ever' if idle is None else f'{idle:.2f} s'} under a 0.25-second timeout; "
        f"the untimed planning takes {untimed:.2f} s: the steps after the timeout were not skipped")
    refused = None
    try:
        client.get_flight_info(
            flight.FlightDescriptor.for_command(cmd_statement_query(deepsql.wide_plus_chains(4, 3_000))), with_timeout())
    except (flight.FlightError, pa.ArrowException) as exc:
        refused = exc
    assert refused is not None and flight_grpc_code(refused) == "INVALID_ARGUMENT", describe_exc(refused)
    assert "query too complex" in server_message(refused), describe_exc(refused)
    assert_serving(server)
    client.close()


# --------------------------------------------------------------------------------------
# the rest of the server while a runaway runs
# --------------------------------------------------------------------------------------


def test_other_queries_are_answered_at_once_while_a_runaway_runs(server):
    """A runaway query must not hold the server's threads: another client's `SELECT 1`,
    sent ten times a second for five seconds, is answered within half a second each time."""
    sql = RUNAWAYS["cross_join"].format(tag="neighbour")
    client, other = flight_client(server.uri, "stella"), flight_client(server.uri, "stella")
    info = statement_info(client, sql)
    run = Background(lambda: client.do_get(info.endpoints[0].ticket).read_all())
    wait_until_busy(server)
    latencies = []
    until = time.monotonic() + 5.0
    while time.monotonic() < until:
        sent = time.monotonic()
        assert flight_sql_query(other, "SELECT 1 AS one").column("one").to_pylist() == [1]
        latencies.append(time.monotonic() - sent)
        time.sleep(0.1)  # pacing the probes
    assert cancel_flight_info(other, info) == CANCELLED
    run.join(30)
    slow = [round(s, 2) for s in latencies if s > 0.5]
    print(f"\nSELECT 1 beside a runaway: {len(latencies)} probes, slowest {max(latencies):.2f} s, {len(slow)} over 0.5 s")
    assert not slow, f"{len(slow)} of {len(latencies)} SELECT 1 took over 0.5 s beside the runaway: {slow}"
    client.close()
    other.close()
