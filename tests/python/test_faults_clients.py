"""Fault injection through the real server and real clients: clients that misbehave
(the store, files, spill directory and memory pool: test_faults.py).

Clients that disconnect mid-stream (killed processes), stall without reading, open
thousands of streams (through pyarrow, and a raw HTTP/2 flood past the server's stream
limit), send oversized headers and messages, or send slowly and hold their
connections. Every stream another client reads meanwhile arrives whole (never fewer
rows with OK), others are answered at once, the right gRPC code comes back, and the
server ends idle with its memory pool empty.

A code the server gets wrong would fail as WrongCode; each test checks everything else
first and the code last.

Covered elsewhere and not repeated: an abandoned stream's query and memory
(test_disconnect.py), cancel/disconnect/deadline stopping the server's CPU work
(test_stop_work.py), a result row over the message limit (test_result_messages.py),
oversized HTTP request heads and bodies on the HTTP side (test_http_ops.py), a silent
connection on the TLS port (test_tls.py).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid

import pyarrow.flight as flight
import pytest

from faultkit import (
    CALL_TIMEOUT,
    DATA_FRAME,
    DO_GET,
    GOAWAY,
    H2_PREFACE,
    HEADERS,
    REFUSED_STREAM,
    RST_STREAM,
    STREAM_ERRORS,
    Outcome,
    RawH2,
    WrongCode,
    assert_code,
    assert_whole,
    assert_whole_or_error,
    call_outcome,
    grpc_code,
    h2_frame,
    read_stream,
)
from mgtest import (
    DEMO_CONFIG,
    bearer_for,
    cmd_statement_query,
    cpu_seconds,
    describe_exc,
    duckdb_expected,
    flight_client,
    flight_sql_query,
    query_log_lines,
    server_message,
    wait_for,
)

STEWARD = "stella"
# 22.5M rows: minutes of streaming, so a client can go away mid-way
ENDLESS_SQL = "SELECT o.o_orderkey, o.o_comment, c.c_custkey FROM sales.orders o CROSS JOIN customers.customer c"
# 1.5M rows, about 100 MB on the wire: more than every buffer between server and client
LARGE_SQL = "SELECT l.l_orderkey, l.l_comment, n.n_name FROM sales.lineitem l CROSS JOIN customers.nation n"
# 300k rows: read at a pace, a neighbour's stream stays under way for a good part of a second
MEDIUM_SQL = "SELECT l.l_orderkey, l.l_comment, r.r_name FROM sales.lineitem l CROSS JOIN customers.region r"
PROBE_SQL = "SELECT count(*) AS n FROM customers.nation"


@pytest.fixture(scope="module")
def clients_server(start_server):
    srv = start_server(DEMO_CONFIG, name="faults-clients")
    yield srv
    srv.stop(check=True)


@pytest.fixture(scope="module")
def counts():
    """Expected row counts, from DuckDB on the demo files."""
    return {sql: duckdb_expected(f"SELECT count(*) FROM ({sql})").rows[0][0] for sql in (LARGE_SQL, MEDIUM_SQL)}


def probe_latency(server) -> float:
    client = flight_client(server.uri, STEWARD)
    try:
        started = time.monotonic()
        assert flight_sql_query(client, PROBE_SQL).column("n").to_pylist() == [25]
        return time.monotonic() - started
    finally:
        client.close()


def assert_pool_empty(server) -> None:
    """A probe, alone on the server, ends with no query running and nothing reserved."""
    tag = f"SELECT count(*) AS n_{uuid.uuid4().hex[:8]} FROM customers.region"

    def idle():
        client = flight_client(server.uri, STEWARD)
        try:
            flight_sql_query(client, tag)
        finally:
            client.close()
        lines = query_log_lines(server, tag)
        return lines and lines[-1] == ("done", 0, 0)

    wait_for(idle, "a probe alone on the server with the memory pool empty", timeout=30)


# A client in its own process that reads until it is killed.
_READER = """
import sys
import pyarrow.flight as flight
uri, bearer, ticket = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
options = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer " + bearer.encode())])
reader = flight.FlightClient(uri).do_get(flight.Ticket(ticket), options)
reader.read_chunk()
print("reading", flush=True)
for _ in reader:
    pass
"""


def test_client_disconnects_mid_stream_and_neighbours_get_every_row(clients_server, counts):
    """Four clients killed mid-stream (their connections reset) while a fifth reads a
    result at a pace: the fifth's result arrives whole, the four queries are logged
    cancelled, and the memory pool is empty again."""
    server = clients_server
    client = flight_client(server.uri, STEWARD)
    sql = ENDLESS_SQL + f" WHERE o.o_orderkey > -{uuid.uuid4().int % 1000 + 1}"  # its own log line
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)))
    ticket = info.endpoints[0].ticket.ticket.hex()
    readers = [subprocess.Popen([sys.executable, "-c", _READER, server.uri, bearer_for(server.uri, STEWARD), ticket],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    try:
        for r in readers:
            assert r.stdout.readline().strip() == b"reading", r.stderr.read().decode()

        def kill_them():
            for r in readers:
                r.send_signal(signal.SIGKILL)

        outcome = read_stream(client, MEDIUM_SQL, on_first=kill_them, pace=0.02)
    finally:
        for r in readers:
            r.kill()
            r.wait()
    assert_whole(outcome, counts[MEDIUM_SQL], "a neighbour of clients that disconnected")
    wait_for(lambda: [o for o, _, _ in query_log_lines(server, sql)].count("cancelled") == 4,
             "the four abandoned queries logged cancelled", timeout=30)
    assert_pool_empty(server)
    client.close()


def test_client_stalls_never_reads_without_holding_up_others_or_buffering_its_result(clients_server, counts):
    """A client that stops reading a 100 MB result (read at once, it takes well under a
    second): the server holds the stream paused (the query is still running after 3 s,
    its memory does not grow by the result), answers others at once, and when the
    client reads again the result arrives whole."""
    server = clients_server
    client = flight_client(server.uri, STEWARD)
    sql = LARGE_SQL + " WHERE l.l_orderkey > -1"  # its own log line
    options = flight.FlightCallOptions(timeout=CALL_TIMEOUT)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)), options)
    reader = client.do_get(info.endpoints[0].ticket, options)
    rows = reader.read_chunk().data.num_rows
    rss_before = server.proc_status("VmRSS")
    latencies = []
    stalled_until = time.monotonic() + 3.0
    while time.monotonic() < stalled_until:  # the stalled client reads nothing meanwhile
        latencies.append(probe_latency(server))
    growth = server.proc_status("VmRSS") - rss_before
    print(f"\na client stalled for 3 s: server memory {growth / 2**20:+.1f} MiB, slowest probe {max(latencies):.2f} s")
    assert not query_log_lines(server, sql), "the query ended while its client was not reading: it was buffered whole"
    assert max(latencies) < 1.0, f"other clients waited while one stalled: {[round(s, 2) for s in latencies]}"
    assert growth < 64 << 20, f"the server's memory grew by {growth >> 20} MiB while a client stalled"
    try:
        for chunk in reader:
            rows += chunk.data.num_rows
    except STREAM_ERRORS as exc:
        raise AssertionError(f"the stalled stream failed once read again: {describe_exc(exc)}") from exc
    assert rows == counts[LARGE_SQL], f"the stalled stream ended OK with {rows} of {counts[LARGE_SQL]} rows"
    client.close()


THOUSANDS = 2_000
CONNECTIONS = 8


def test_thousands_of_streams_each_whole_or_refused(clients_server):
    """2,000 DoGet streams opened over 8 connections, none read until all are open: each
    arrives whole (or is refused, RESOURCE_EXHAUSTED or UNAVAILABLE), a probe is answered
    meanwhile, and the server is idle afterwards."""
    server = clients_server
    sql = "SELECT n_nationkey, n_name, n_comment FROM customers.nation"
    clients = [flight.FlightClient(server.uri, generic_options=[("grpc.use_local_subchannel_pool", 1)])
               for _ in range(CONNECTIONS)]
    headers = [(b"authorization", f"Bearer {bearer_for(server.uri, STEWARD)}".encode())]
    options = flight.FlightCallOptions(timeout=CALL_TIMEOUT, headers=headers)
    info = clients[0].get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)), options)
    ticket = info.endpoints[0].ticket
    per_client = THOUSANDS // CONNECTIONS
    results: list[list] = [[] for _ in clients]

    def open_then_read(i):
        readers = []
        for _ in range(per_client):
            try:
                readers.append(clients[i].do_get(ticket, options))
            except STREAM_ERRORS as exc:
                readers.append(exc)
            with lock:
                counter[0] += 1
        opened.wait()
        for r in readers:
            if isinstance(r, BaseException):
                results[i].append(Outcome(0, r, grpc_code(r), 0))
                continue
            try:
                results[i].append(Outcome(r.read_all().num_rows, None, "OK", 0))
            except STREAM_ERRORS as exc:
                results[i].append(Outcome(0, exc, grpc_code(exc), 0))

    opened, lock, counter = threading.Event(), threading.Lock(), [0]
    started = time.monotonic()
    threads = [threading.Thread(target=open_then_read, args=(i,)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    # a probe once half the streams are open; reading starts once all are
    wait_for(lambda: counter[0] >= THOUSANDS // 2, "half the streams open", timeout=CALL_TIMEOUT)
    latency = probe_latency(server)
    wait_for(lambda: counter[0] >= THOUSANDS, "every stream open", timeout=CALL_TIMEOUT)
    opened.set()
    for t in threads:
        t.join(CALL_TIMEOUT * 2)
    elapsed = time.monotonic() - started
    outcomes = [o for rs in results for o in rs]
    assert len(outcomes) == THOUSANDS, f"{len(outcomes)} of {THOUSANDS} streams ended"
    codes = {}
    for o in outcomes:
        codes[o.code] = codes.get(o.code, 0) + 1
        if o.error is None:
            assert_whole(o, 25, "one of thousands of streams")
        else:
            assert o.code in {"RESOURCE_EXHAUSTED", "UNAVAILABLE"}, o.describe()
    print(f"\n{THOUSANDS} streams over {CONNECTIONS} connections in {elapsed:.1f} s: {codes}; probe {latency:.2f} s")
    assert codes.get("OK", 0) >= THOUSANDS // 2, f"most streams were refused: {codes}"
    assert latency < 5.0, f"a probe waited {latency:.1f} s behind the streams"
    for c in clients:
        c.close()
    assert_pool_empty(server)


def test_thousands_of_streams_on_one_raw_connection_are_refused_past_the_limit(clients_server):
    """A client that ignores the server's 256-stream limit and opens 3,000 DoGet streams
    on one connection, never finishing a request: the streams past the limit are refused
    (RST_STREAM REFUSED_STREAM) or the connection is ended (GOAWAY), and others are
    answered meanwhile."""
    server = clients_server
    auth = ("authorization", f"Bearer {bearer_for(server.uri, STEWARD)}")
    flood = RawH2(server.port)
    try:
        for i in range(3_000):  # no body, no END_STREAM: each stream stays open
            if not flood.headers(2 * i + 1, DO_GET, [auth]):
                break
        frames = flood.frames(3.0)
        latency = probe_latency(server)
    finally:
        flood.close()
    refused = sum(1 for kind, _, _, payload in frames
                  if kind == RST_STREAM and int.from_bytes(payload[:4], "big") == REFUSED_STREAM)
    goaway = [f for f in frames if f[0] == GOAWAY]
    print(f"\nraw flood of 3,000 streams: {refused} refused, GOAWAY {bool(goaway)}; probe {latency:.2f} s")
    assert refused or goaway, "3,000 streams on one connection were neither refused nor the connection ended"
    assert latency < 2.0, f"a probe waited {latency:.1f} s behind the flood"
    assert_pool_empty(server)


class NeighbourBroken(AssertionError):
    """A stream that had nothing to do with a fault was ended by it."""


def oversized_beside_a_stream(client, size: int, counts) -> tuple[Outcome, Outcome]:
    """A call with `size` bytes of headers while a stream of the same client (the same
    connection) is under way: how each ended."""
    neighbour: list[Outcome] = []
    under_way = threading.Event()
    reader = threading.Thread(target=lambda: neighbour.append(
        read_stream(client, MEDIUM_SQL, on_first=under_way.set, pace=0.01)))
    reader.start()
    assert under_way.wait(CALL_TIMEOUT), "the neighbouring stream never started"
    oversized = read_stream(client, PROBE_SQL, headers=[(b"x-filler", b"f" * size)])
    reader.join(CALL_TIMEOUT)
    assert neighbour, "the neighbouring stream never ended"
    assert_whole_or_error(neighbour[0], counts[MEDIUM_SQL], "a stream beside oversized headers")
    assert oversized.error is not None, f"{size >> 10} KiB of headers were taken: {oversized.describe()}"
    return oversized, neighbour[0]


def test_oversized_headers_are_refused_and_the_server_keeps_serving(clients_server, counts):
    """Calls whose headers pass the server's 64 KiB header limit (just over, and far
    over) fail with RESOURCE_EXHAUSTED; just over it, a stream under way on the same
    connection arrives whole; a call within the limit works; the same client then works."""
    server = clients_server
    client = flight_client(server.uri, STEWARD)
    try:
        assert_whole(read_stream(client, PROBE_SQL, headers=[(b"x-filler", b"f" * (60 << 10))]), 1,
                     "a call with 60 KiB of headers")
        just_over, neighbour = oversized_beside_a_stream(client, 70 << 10, counts)
        assert_whole(neighbour, counts[MEDIUM_SQL], "a stream beside a call with 70 KiB of headers")
        far_over = read_stream(client, PROBE_SQL, headers=[(b"x-filler", b"f" * (200 << 10))])
        assert far_over.error is not None, f"200 KiB of headers were taken: {far_over.describe()}"
        assert_whole(read_stream(client, PROBE_SQL), 1, "the same client after oversized headers")
    finally:
        client.close()
    # sent by hand, past any client's own checks: the server answers the stream (431 or
    # a reset) or ends the connection, and serves others
    raw = RawH2(server.port)
    try:
        raw.headers(1, DO_GET, [("x-filler", "f" * (200 << 10))], end_stream=True)
        frames = raw.frames(2.0)
    finally:
        raw.close()
    answered = [f for f in frames if f[0] in (HEADERS, RST_STREAM, GOAWAY)]
    assert answered, f"the server did not answer oversized headers: frames {[f[0] for f in frames]}"
    assert probe_latency(server) < 2.0
    assert_code(just_over, {"RESOURCE_EXHAUSTED"}, "70 KiB of headers")
    assert_code(far_over, {"RESOURCE_EXHAUSTED"}, "200 KiB of headers")


def test_oversized_headers_do_not_break_other_streams_on_the_connection(clients_server, counts):
    client = flight_client(clients_server.uri, STEWARD)
    try:
        oversized, neighbour = oversized_beside_a_stream(client, 200 << 10, counts)
        assert_whole(read_stream(client, PROBE_SQL), 1, "the same client after oversized headers")
    finally:
        client.close()
    if neighbour.error is not None:
        raise NeighbourBroken(f"a stream beside a call with 200 KiB of headers: {neighbour.describe()} "
                              f"(the oversized call: {oversized.describe()})")


def test_oversized_messages_are_resource_exhausted_and_the_server_keeps_serving(clients_server):
    """Request messages past the server's 64 MiB limit: a DoGet ticket, a GetFlightInfo
    command, a DoAction body. RESOURCE_EXHAUSTED (gRPC's code for a message over the size
    limit) saying how large is too large; the same client then works."""
    server = clients_server
    client = flight_client(server.uri, STEWARD)
    options = flight.FlightCallOptions(timeout=CALL_TIMEOUT)
    blob = b"x" * (65 << 20)
    calls = {
        "DoGet": lambda: client.do_get(flight.Ticket(blob), options).read_all(),
        "GetFlightInfo": lambda: client.get_flight_info(flight.FlightDescriptor.for_command(blob), options),
        "DoAction": lambda: list(client.do_action(flight.Action("CreatePreparedStatement", blob), options)),
    }
    outcomes = {}
    try:
        for name, call in calls.items():
            outcomes[name] = call_outcome(call)
            assert outcomes[name].error is not None, f"a 65 MiB {name} request was taken"
            assert "67108864" in server_message(outcomes[name].error), outcomes[name].describe()
            assert_whole(read_stream(client, PROBE_SQL), 1, f"the same client after an oversized {name}")
    finally:
        client.close()
    for name, outcome in outcomes.items():
        assert_code(outcome, {"RESOURCE_EXHAUSTED"}, f"a 65 MiB {name} request")


def test_slow_senders_holding_connections_do_not_hold_up_others(clients_server):
    """200 connections that send their first bytes and then a byte at a time (a
    preface never finished, a request body never finished): other clients are answered
    at once, and the server does not spin on them."""
    server = clients_server
    auth = ("authorization", f"Bearer {bearer_for(server.uri, STEWARD)}")
    slow_prefaces = [RawH2(server.port, handshake=False) for _ in range(100)]
    slow_bodies = [RawH2(server.port) for _ in range(100)]
    try:
        for conn in slow_prefaces:
            conn.send(H2_PREFACE[:5])
        for conn in slow_bodies:
            conn.headers(1, DO_GET, [auth])
            conn.send(h2_frame(DATA_FRAME, 0, 1, b"\x00\x00\x00"))  # 3 bytes of a gRPC message
        cpu_before = cpu_seconds(server)
        latencies = []
        for step in range(10):  # three seconds of dribbling, a probe each step
            for conn in slow_prefaces:  # a server that drops them is within its rights
                conn.send(H2_PREFACE[5 + step:6 + step])
            for conn in slow_bodies:
                conn.send(h2_frame(DATA_FRAME, 0, 1, b"\x00"))
            latencies.append(probe_latency(server))
            time.sleep(0.3)  # the senders' pace
        cpu = cpu_seconds(server) - cpu_before
    finally:
        for conn in slow_prefaces + slow_bodies:
            conn.close()
    assert max(latencies) < 1.0, f"probes waited behind slow senders: {[round(s, 2) for s in latencies]}"
    assert cpu < 2.0, f"the server used {cpu:.1f} CPU-seconds over 3 s of slow senders and ten probes"
    assert_pool_empty(server)
