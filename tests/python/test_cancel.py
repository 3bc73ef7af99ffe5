"""Cancelling a query from the client: Flight's CancelFlightInfo action (and the
deprecated Flight SQL CancelQuery action), sent with pyarrow.flight from another
connection of the same user.

A cancelled FlightInfo's stream ends at once with CANCELLED, the server stops working
on it and logs it as cancelled, and its ticket cannot be redeemed again; cancelling
before DoGet makes the DoGet fail. Only the principal the FlightInfo was issued to can
cancel it; metadata answers are NOT_CANCELLABLE; a request that cannot be decoded is
INVALID_ARGUMENT. The server keeps serving after each.
"""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import govmodel
from mgtest import (
    query_log_lines,
    cpu_seconds,
    wait_for,
    DEMO_CONFIG,
    assert_same_rows,
    cmd_get_catalogs,
    cmd_get_sql_info,
    cmd_get_tables,
    cmd_statement_query,
    describe_exc,
    duckdb_expected,
    flight_client,
    flight_grpc_code,
    pack_any,
    pb_bytes,
    pb_fields,
    server_message,
)

CANCELLED, CANCELLING, NOT_CANCELLABLE = 1, 2, 3  # CancelStatus / CancelResult
# 22.5M rows: minutes of streaming if nobody stopped it
STREAM_SQL = ("SELECT o.o_orderkey, o.o_comment, c.c_custkey FROM sales.orders o "
              "CROSS JOIN customers.customer c")
STREAM_ROWS = 15_000 * 1_500
LINEITEM = "SELECT l_orderkey, l_linenumber, l_quantity, l_shipmode FROM sales.lineitem"


@pytest.fixture(scope="module")
def server(start_server):
    """Its own server, so CPU use and log lines belong to these tests; partitioning
    from 1,000 rows for the partitioned case."""
    srv = start_server(DEMO_CONFIG, name="cancel", args=["--partition-min-rows", "1000"])
    yield srv
    srv.stop(check=True)


@pytest.fixture
def clients(server):
    opened = []

    def make(user: str = "stella") -> flight.FlightClient:
        client = flight_client(server.uri, user)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def info_for(client, command: bytes, options=None) -> flight.FlightInfo:
    return client.get_flight_info(flight.FlightDescriptor.for_command(command), options or flight.FlightCallOptions())


def statement_info(client, sql: str, options=None) -> flight.FlightInfo:
    return info_for(client, cmd_statement_query(sql), options)


def cancel_flight_info(client, info: flight.FlightInfo | bytes) -> int:
    """DoAction CancelFlightInfo(CancelFlightInfoRequest { info = 1 }) -> CancelStatus."""
    body = info if isinstance(info, bytes) else pb_bytes(1, info.serialize())
    results = list(client.do_action(flight.Action("CancelFlightInfo", body)))
    assert len(results) == 1, results
    return dict((f, v) for f, _, v in pb_fields(results[0].body.to_pybytes())).get(1, 0)


def cancel_query(client, info: flight.FlightInfo | bytes) -> int:
    """The deprecated Flight SQL CancelQuery: Any(ActionCancelQueryRequest { bytes info = 1 })
    -> Any(ActionCancelQueryResult { CancelResult result = 1 })."""
    info_bytes = info if isinstance(info, bytes) else info.serialize()
    body = pack_any("ActionCancelQueryRequest", pb_bytes(1, info_bytes))
    results = list(client.do_action(flight.Action("CancelQuery", body)))
    assert len(results) == 1, results
    packed = {f: v for f, _, v in pb_fields(results[0].body.to_pybytes())}
    assert packed[1].decode().endswith("arrow.flight.protocol.sql.ActionCancelQueryResult"), packed
    return dict((f, v) for f, _, v in pb_fields(packed.get(2, b""))).get(1, 0)


CANCELLERS = {"CancelFlightInfo": cancel_flight_info, "CancelQuery": cancel_query}


def failure(fn, *args) -> Exception:
    try:
        got = fn(*args)
    except (flight.FlightError, pa.ArrowException) as exc:
        return exc
    raise AssertionError(f"expected an error, got {got!r}")


def read_ticket(client, ticket) -> pa.Table:
    return client.do_get(ticket).read_all()


def assert_cancelled(exc: BaseException) -> None:
    assert flight_grpc_code(exc) == "CANCELLED", describe_exc(exc)
    assert "cancel" in server_message(exc).lower(), describe_exc(exc)


def assert_serving(client, user: str = "stella") -> None:
    """A normal query still works (after whatever the test did), governed as ever."""
    sql = "SELECT count(*) AS n FROM customers.nation"
    got = read_ticket(client, statement_info(client, sql).endpoints[0].ticket)
    assert got.column("n")[0].as_py() == govmodel.scalar(user, sql)








class StreamReader(threading.Thread):
    """Reads one ticket to the end (or its error) in the background."""

    def __init__(self, client, ticket):
        super().__init__(daemon=True)
        self.client, self.ticket = client, ticket
        self.first_batch = threading.Event()
        self.rows = 0
        self.error: BaseException | None = None
        self.finished = False

    def run(self):
        try:
            reader = self.client.do_get(self.ticket)
            while True:
                try:
                    chunk = reader.read_chunk()
                except StopIteration:
                    self.finished = True
                    return
                if chunk.data is not None:
                    self.rows += chunk.data.num_rows
                    self.first_batch.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.first_batch.set()


# --------------------------------------------------------------------------------------
# cancelling a running stream
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", list(CANCELLERS))
def test_cancelling_a_running_stream_stops_it(server, clients, action):
    sql = f"{STREAM_SQL} WHERE c.c_custkey > {len(action)}"  # one log line per case
    reader_client, canceller = clients(), clients()  # two connections of the same user
    info = statement_info(reader_client, sql)
    assert len(info.endpoints) == 1
    stream = StreamReader(reader_client, info.endpoints[0].ticket)
    stream.start()
    assert stream.first_batch.wait(60), "no first batch"
    assert stream.error is None, describe_exc(stream.error)

    assert CANCELLERS[action](canceller, info) == CANCELLED
    stream.join(30)
    assert not stream.is_alive(), "the stream kept going after it was cancelled"
    assert not stream.finished, f"the whole result arrived ({stream.rows} rows) despite the cancel"
    assert stream.error is not None
    assert_cancelled(stream.error)
    assert 0 < stream.rows < STREAM_ROWS

    outcome, _active, _reserved = wait_for(lambda: next(iter(query_log_lines(server, sql)), None), "its log line")
    assert outcome == "cancelled"
    before = cpu_seconds(server)
    time.sleep(1.0)
    assert cpu_seconds(server) - before < 0.3, "the cancelled query is still running"

    # the ticket is dead from now on, on any connection
    assert_cancelled(failure(read_ticket, canceller, info.endpoints[0].ticket))
    assert_cancelled(failure(read_ticket, reader_client, info.endpoints[0].ticket))
    assert_serving(reader_client)
    assert_serving(canceller)


@pytest.mark.parametrize("action", list(CANCELLERS))
def test_cancelling_before_doget_makes_the_doget_fail(clients, action):
    client, canceller = clients(), clients()
    info = statement_info(client, LINEITEM)
    assert CANCELLERS[action](canceller, info) == CANCELLED
    assert_cancelled(failure(read_ticket, client, info.endpoints[0].ticket))
    # cancelling twice is still CANCELLED
    assert CANCELLERS[action](canceller, info) == CANCELLED
    # the same SQL planned again is a new query and runs
    again = statement_info(client, LINEITEM)
    assert_same_rows(read_ticket(client, again.endpoints[0].ticket), duckdb_expected(LINEITEM))
    assert_serving(client)


def test_cancelling_a_partitioned_result_cancels_every_endpoint(clients):
    client = clients()
    partitioned = flight.FlightCallOptions(headers=[(b"x-meshgate-endpoints", b"partitioned")])
    info = statement_info(client, "SELECT o_orderkey, o_year FROM sales.orders", partitioned)
    assert len(info.endpoints) >= 2
    assert cancel_flight_info(clients(), info) == CANCELLED
    for endpoint in info.endpoints:
        assert_cancelled(failure(read_ticket, client, endpoint.ticket))
    assert_serving(client)


def test_cancelling_one_query_leaves_the_others_alone(clients):
    client = clients()
    doomed = statement_info(client, LINEITEM + " WHERE l_linenumber > 1")
    kept = statement_info(client, LINEITEM)
    assert cancel_flight_info(client, doomed) == CANCELLED
    assert_same_rows(read_ticket(client, kept.endpoints[0].ticket), duckdb_expected(LINEITEM))


# --------------------------------------------------------------------------------------
# who may cancel what
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", list(CANCELLERS))
def test_another_user_cannot_cancel_stellas_query(clients, action):
    stella, ana = clients("stella"), clients("ana")
    info = statement_info(stella, LINEITEM)
    reader = stella.do_get(info.endpoints[0].ticket)
    first = reader.read_chunk().data
    assert first is not None and first.num_rows > 0

    exc = failure(CANCELLERS[action], ana, info)
    assert flight_grpc_code(exc) == "UNAUTHENTICATED", describe_exc(exc)
    assert "another principal" in server_message(exc), describe_exc(exc)

    # stella's stream is unaffected: the rest arrives and the whole is right
    rest = reader.read_all()
    got = pa.concat_tables([pa.Table.from_batches([first]), rest])
    assert_same_rows(got, duckdb_expected(LINEITEM))
    # and the ticket was not marked cancelled either
    assert read_ticket(stella, info.endpoints[0].ticket).num_rows == got.num_rows
    assert_serving(ana, "ana")


# --------------------------------------------------------------------------------------
# what cannot be cancelled, and requests that make no sense
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [cmd_get_tables(include_schema=True), cmd_get_catalogs(), cmd_get_sql_info([0, 1])],
    ids=["GetTables", "GetCatalogs", "GetSqlInfo"],
)
@pytest.mark.parametrize("action", list(CANCELLERS))
def test_metadata_answers_are_not_cancellable(clients, command, action):
    client = clients()
    info = info_for(client, command)
    assert CANCELLERS[action](client, info) == NOT_CANCELLABLE
    assert read_ticket(client, info.endpoints[0].ticket).num_rows > 0  # still readable
    assert_serving(client)


def _tampered(info: flight.FlightInfo) -> bytes:
    """The FlightInfo's bytes with one bit of its (signed) ticket flipped."""
    raw = bytearray(info.serialize())
    ticket = info.endpoints[0].ticket.ticket
    at = bytes(raw).index(ticket) + len(ticket) - 5
    raw[at] ^= 0x01
    return bytes(raw)


@pytest.mark.parametrize("action", list(CANCELLERS))
def test_requests_that_cannot_be_decoded_are_invalid_argument(clients, action):
    client = clients()
    info = statement_info(client, LINEITEM)
    garbage_ticket = flight.FlightInfo(info.schema, info.descriptor,
                                       [flight.FlightEndpoint(b"not a ticket", [])]).serialize()
    if action == "CancelFlightInfo":
        bodies = {
            "garbage": b"\xff\xfe garbage \x00\x01",
            "no FlightInfo": b"",
            "garbage FlightInfo": pb_bytes(1, b"\xff\xff\xff"),
            "garbage ticket": pb_bytes(1, garbage_ticket),
            "tampered ticket": pb_bytes(1, _tampered(info)),
        }
    else:
        def request(info_bytes):
            return pack_any("ActionCancelQueryRequest", pb_bytes(1, info_bytes))

        bodies = {
            "garbage": b"\xff\xfe garbage \x00\x01",
            "garbage FlightInfo": request(b"\xff\xff\xff"),
            "garbage ticket": request(garbage_ticket),
            "tampered ticket": request(_tampered(info)),
        }
    for what, body in bodies.items():
        exc = failure(lambda: list(client.do_action(flight.Action(action, body))))
        assert flight_grpc_code(exc) == "INVALID_ARGUMENT", f"{what}: {describe_exc(exc)}"
    # nothing was cancelled by any of it
    assert_same_rows(read_ticket(client, info.endpoints[0].ticket), duckdb_expected(LINEITEM))
    assert_serving(client)
