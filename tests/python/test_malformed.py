"""Malformed input at the protocol level, sent with pyarrow.flight: a buggy or hostile client,
not bad SQL. Each call must fail with the gRPC code that tells the client what it did wrong,
and the same connection must then run a good query:

- INVALID_ARGUMENT: bytes that do not decode (a command that is not a protobuf Any, a known
  Flight SQL message with garbage in its value), a forged or tampered ticket or handle
  (UNAUTHENTICATED is accepted too, as test_auth.py does), and parameters that do not fit.
- UNIMPLEMENTED (or INVALID_ARGUMENT): a well-formed Any whose type the server does not
  serve. The message must name the type.
- UNAUTHENTICATED: a Handshake whose payload or header is garbage.
- Never INTERNAL or UNKNOWN: those say the server failed, and clients retry or report a
  server bug.

Covered elsewhere, so not repeated here:
- test_auth.py: garbage, empty and forged tickets; tickets tampered in place (a byte
  flipped mid-payload and in the signature, 8 bytes cut off); tampered bearers; bad Basic
  headers on a call; handshakes with wrong credentials; tickets and handles of another
  principal.
- test_attacks_sidedoors.py: forged and tampered tickets per principal, DoPut
  CommandStatementUpdate.
- test_errors.py: bad SQL, unknown DoAction types.
- test_prepared.py: too few or too many parameters and a string for an int64, through ADBC.
"""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from mgtest import (
    cmd_get_catalogs,
    cmd_prepared_statement_query,
    cmd_statement_query,
    create_prepared_statement,
    describe_exc,
    flight_grpc_code,
    flight_sql_query,
    pack_any,
    pb_bytes,
    pb_field,
    pb_key,
    pb_string,
    pb_varint,
    server_message,
)

FLIGHT_ERRORS = (flight.FlightError, pa.ArrowException, OSError)  # GetSchema errors can come as OSError
INVALID = ("INVALID_ARGUMENT",)
REFUSED_TICKET = ("INVALID_ARGUMENT", "UNAUTHENTICATED")  # as test_auth.py accepts for bad tickets
UNKNOWN_TYPE = ("UNIMPLEMENTED", "INVALID_ARGUMENT")
UNKNOWN_HANDLE = ("INVALID_ARGUMENT", "NOT_FOUND")  # stateless signed handles: a forged one is invalid input
SQL_PREFIX = "type.googleapis.com/arrow.flight.protocol.sql."
NATION_BY_KEY = "SELECT n_nationkey, n_name FROM customers.nation WHERE n_nationkey = $1"


def assert_refused(client, call, codes, *needles):
    """`call()` fails with one of `codes`, a message (containing the needles), and the
    client then runs a good query."""
    with pytest.raises(FLIGHT_ERRORS) as ei:
        call()
    err = ei.value
    code = flight_grpc_code(err)
    if code == "UNKNOWN" and "returned internal error" in str(err):
        code = "INTERNAL"  # pyarrow's GetSchema raises a bare OSError
    assert code in codes, f"expected {'/'.join(codes)}, got {code}: {describe_exc(err)}"
    msg = server_message(err)
    assert msg.strip(), describe_exc(err)
    for needle in needles:
        assert needle in msg, f"message does not mention {needle!r}: {describe_exc(err)}"
    assert flight_sql_query(client, "SELECT count(*) AS n FROM customers.region").column("n").to_pylist() == [5]


def _info(client, command: bytes):
    return lambda: client.get_flight_info(flight.FlightDescriptor.for_command(command))


def _do_get(client, ticket: bytes):
    return lambda: client.do_get(flight.Ticket(ticket)).read_all()


def _action(client, name: str, body: bytes):
    return lambda: list(client.do_action(flight.Action(name, body)))


def _any(type_url: str, value: bytes) -> bytes:
    return pb_string(1, type_url) + pb_bytes(2, value)


# --------------------------------------------------------------------------------------
# GetFlightInfo / GetSchema: the command
# --------------------------------------------------------------------------------------

GARBAGE = b"\xff\xfe\xfd\x07 not a protobuf message"
BAD_VARINT = b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"  # field 1, a length that never ends
UNDERFLOW = b"\x0a\x40abc"  # field 1 claims 64 bytes, 3 follow

# (id, command, codes, what the message must mention)
COMMANDS = [
    ("not-an-any", GARBAGE, INVALID, ()),
    ("sql-text-without-any", b"SELECT 1", INVALID, ()),
    ("empty-command", b"", INVALID, ()),
    ("any-without-type-url", pb_bytes(2, pb_string(1, "SELECT 1")), INVALID, ()),
    ("unknown-flight-sql-type", _any(SQL_PREFIX + "CommandGetEverything", b""), UNKNOWN_TYPE,
     (SQL_PREFIX + "CommandGetEverything",)),
    ("foreign-type", _any("type.googleapis.com/google.protobuf.StringValue", pb_string(1, "SELECT 1")),
     UNKNOWN_TYPE, ("google.protobuf.StringValue",)),
    ("statement-bad-varint", pack_any("CommandStatementQuery", BAD_VARINT), INVALID, ()),
    ("statement-wrong-wire-type", pack_any("CommandStatementQuery", pb_key(1, 0) + pb_varint(5)), INVALID, ()),
    ("statement-not-utf8", pack_any("CommandStatementQuery", pb_bytes(1, b"SELECT '\xff\xfe'")), INVALID, ()),
    ("prepared-query-underflow", pack_any("CommandPreparedStatementQuery", UNDERFLOW), INVALID, ()),
    ("get-tables-bad-varint", pack_any("CommandGetTables", BAD_VARINT), INVALID, ()),
    ("get-sql-info-underflow", pack_any("CommandGetSqlInfo", UNDERFLOW), INVALID, ()),
    ("get-primary-keys-underflow", pack_any("CommandGetPrimaryKeys", b"\x1a\x10abc"), INVALID, ()),
    ("get-xdbc-type-info-truncated-varint", pack_any("CommandGetXdbcTypeInfo", b"\x08"), INVALID, ()),
]


@pytest.mark.parametrize("command, codes, needles", [c[1:] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_get_flight_info_with_a_malformed_command(flight_client, command, codes, needles):
    assert_refused(flight_client, _info(flight_client, command), codes, *needles)


@pytest.mark.parametrize("command", [GARBAGE, pack_any("CommandStatementQuery", BAD_VARINT)],
                         ids=["not-an-any", "statement-bad-varint"])
def test_get_schema_with_a_malformed_command(flight_client, command):
    assert_refused(flight_client, lambda: flight_client.get_schema(flight.FlightDescriptor.for_command(command)),
                   INVALID)


# --------------------------------------------------------------------------------------
# DoGet: the ticket
# --------------------------------------------------------------------------------------


def _statement_ticket(client, sql="SELECT r_name FROM customers.region") -> bytes:
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)))
    return info.endpoints[0].ticket.ticket


def _envelope_parts(ticket: bytes) -> tuple[bytes, bytes]:
    """Any{TicketStatementQuery{statement_handle = {version = 1, payload = 2, signature = 3}}}."""
    envelope = pb_field(pb_field(ticket, 2), 1)
    return pb_field(envelope, 2), pb_field(envelope, 3)


def _reframed(payload: bytes, signature: bytes | None, version: int = 1) -> bytes:
    envelope = pb_key(1, 0) + pb_varint(version) + pb_bytes(2, payload)
    if signature is not None:
        envelope += pb_bytes(3, signature)
    return pack_any("TicketStatementQuery", pb_bytes(1, envelope))


def test_random_tickets(flight_client):
    rng = random.Random(20261122)
    for size in (1, 7, 32, 168, 1024, 65536):
        ticket = rng.randbytes(size)
        assert_refused(flight_client, _do_get(flight_client, ticket), REFUSED_TICKET)


def test_tickets_cut_at_each_layer(flight_client):
    good = _statement_ticket(flight_client)
    for cut in (1, 40, len(good) // 2, len(good) - 1):  # in the type_url, the value, the signature
        assert_refused(flight_client, _do_get(flight_client, good[:cut]), REFUSED_TICKET)


@pytest.mark.parametrize("variant", ["signature-shortened", "signature-missing", "signature-flipped",
                                     "unknown-envelope-version", "signature-of-another-ticket"])
def test_re_encoded_tickets(flight_client, variant):
    """Well-formed protobuf all the way down, so only the signature check can refuse them."""
    payload, signature = _envelope_parts(_statement_ticket(flight_client))
    _, other_signature = _envelope_parts(_statement_ticket(flight_client, "SELECT n_name FROM customers.nation"))
    ticket = {
        "signature-shortened": lambda: _reframed(payload, signature[:-1]),
        "signature-missing": lambda: _reframed(payload, None),
        "signature-flipped": lambda: _reframed(payload, bytes([signature[0] ^ 0x01]) + signature[1:]),
        "unknown-envelope-version": lambda: _reframed(payload, signature, version=2),
        "signature-of-another-ticket": lambda: _reframed(payload, other_signature),
    }[variant]()
    assert_refused(flight_client, _do_get(flight_client, ticket), REFUSED_TICKET)


def test_a_statement_command_is_not_a_ticket(flight_client):
    """Unsigned SQL must never run through DoGet."""
    for ticket in [cmd_statement_query("SELECT r_name FROM customers.region"),
                   pack_any("TicketStatementQuery", pb_bytes(1, b"SELECT r_name FROM customers.region"))]:
        assert_refused(flight_client, _do_get(flight_client, ticket), REFUSED_TICKET)


@pytest.mark.parametrize("ticket", [pack_any("CommandGetTables", BAD_VARINT), pack_any("CommandGetSqlInfo", UNDERFLOW),
                                    pack_any("CommandGetDbSchemas", b"\x12\x80")],
                         ids=["get-tables", "get-sql-info", "get-db-schemas"])
def test_metadata_ticket_with_garbage_value(flight_client, ticket):
    """Metadata tickets are the command itself, so a client can send any bytes as one."""
    assert flight_client.do_get(flight.Ticket(cmd_get_catalogs())).read_all().num_rows == 1  # the well-formed one
    assert_refused(flight_client, _do_get(flight_client, ticket), INVALID)


# --------------------------------------------------------------------------------------
# DoAction: prepared statements
# --------------------------------------------------------------------------------------


def _create(sql_body: bytes) -> bytes:
    return pack_any("ActionCreatePreparedStatementRequest", sql_body)


def _close(handle_body: bytes) -> bytes:
    return pack_any("ActionClosePreparedStatementRequest", handle_body)


ACTIONS = [
    ("create-not-an-any", "CreatePreparedStatement", GARBAGE, INVALID),
    ("create-any-of-another-type", "CreatePreparedStatement", _close(pb_bytes(1, b"x")), INVALID),
    ("create-bad-varint", "CreatePreparedStatement", _create(BAD_VARINT), INVALID),
    ("create-not-utf8", "CreatePreparedStatement", _create(pb_bytes(1, b"SELECT '\xff'")), INVALID),
    ("close-not-an-any", "ClosePreparedStatement", GARBAGE, INVALID),
    ("close-bad-varint", "ClosePreparedStatement", _close(BAD_VARINT), INVALID),
    ("close-forged-handle", "ClosePreparedStatement", _close(pb_bytes(1, b"forged-handle-0123456789")),
     UNKNOWN_HANDLE),
    ("close-empty-handle", "ClosePreparedStatement", _close(b""), UNKNOWN_HANDLE),
]


@pytest.mark.parametrize("action, body, codes", [a[1:] for a in ACTIONS], ids=[a[0] for a in ACTIONS])
def test_malformed_action(flight_client, action, body, codes):
    assert_refused(flight_client, _action(flight_client, action, body), codes)


def test_close_a_tampered_handle(flight_client):
    handle = create_prepared_statement(flight_client, NATION_BY_KEY)
    tampered = handle[:-1] + bytes([handle[-1] ^ 0x01])
    assert_refused(flight_client, _action(flight_client, "ClosePreparedStatement", _close(pb_bytes(1, tampered))),
                   UNKNOWN_HANDLE)
    list(flight_client.do_action(flight.Action("ClosePreparedStatement", _close(pb_bytes(1, handle)))))


# --------------------------------------------------------------------------------------
# DoPut: prepared-statement parameters
# --------------------------------------------------------------------------------------


def _put(client, command: bytes, batch: pa.RecordBatch) -> bytes | None:
    writer, reader = client.do_put(flight.FlightDescriptor.for_command(command), batch.schema)
    writer.write_batch(batch)
    writer.done_writing()
    meta = reader.read()
    writer.close()
    return meta.to_pybytes() if meta is not None else None


def _bind_and_run(client, handle: bytes, batch: pa.RecordBatch) -> pa.Table:
    """DoPut the parameters, then execute the handle the server answers with."""
    meta = _put(client, cmd_prepared_statement_query(handle), batch)
    if meta:
        handle = pb_field(meta, 1) or handle  # DoPutPreparedStatementResult
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_prepared_statement_query(handle)))
    return pa.concat_tables([client.do_get(e.ticket).read_all() for e in info.endpoints])


ONE_INT = pa.record_batch([pa.array([7], pa.int64())], names=["$1"])


@pytest.mark.parametrize("command", [
    cmd_prepared_statement_query(b"forged-handle-0123456789"),
    cmd_prepared_statement_query(b""),
], ids=["forged-handle", "empty-handle"])
def test_do_put_to_a_forged_handle(flight_client, command):
    assert_refused(flight_client, lambda: _put(flight_client, command, ONE_INT), UNKNOWN_HANDLE)


def test_do_put_to_a_tampered_handle(flight_client):
    handle = create_prepared_statement(flight_client, NATION_BY_KEY)
    mid = len(handle) // 2
    tampered = handle[:mid] + bytes([handle[mid] ^ 0x01]) + handle[mid + 1:]
    assert_refused(flight_client, lambda: _put(flight_client, cmd_prepared_statement_query(tampered), ONE_INT),
                   UNKNOWN_HANDLE)


@pytest.mark.parametrize("command, codes", [
    (GARBAGE, INVALID),
    (pack_any("CommandPreparedStatementQuery", BAD_VARINT), INVALID),
    (_any(SQL_PREFIX + "CommandPutEverything", b""), UNKNOWN_TYPE),
    (cmd_statement_query("SELECT 1"), UNKNOWN_TYPE),  # a query is not a DoPut command
], ids=["not-an-any", "prepared-query-bad-varint", "unknown-type", "statement-query"])
def test_do_put_with_a_malformed_descriptor(flight_client, command, codes):
    assert_refused(flight_client, lambda: _put(flight_client, command, ONE_INT), codes)


def _union(type_id: int, value) -> pa.UnionArray:
    """A dense union of one value over (int64, utf8): how flightsql-dbapi sends parameters."""
    children = [pa.array([value] if type_id == 0 else [], pa.int64()),
                pa.array([value] if type_id == 1 else [], pa.string())]
    return pa.UnionArray.from_dense(pa.array([type_id], pa.int8()), pa.array([0], pa.int32()), children)


PARAMETERS = [
    ("no-rows", NATION_BY_KEY, pa.record_batch([pa.array([], pa.int64())], names=["$1"]), "parameter"),
    ("parameters-for-a-statement-without-any", "SELECT n_name FROM customers.nation",
     ONE_INT, "0 parameters"),
    ("a-list-for-an-int64", NATION_BY_KEY, pa.record_batch([pa.array([[7]])], names=["$1"]), "$1"),
    ("a-string-in-a-union-for-an-int64", NATION_BY_KEY, pa.record_batch([_union(1, "seven")], names=["$1"]), "$1"),
]


@pytest.mark.parametrize("sql, batch, needle", [p[1:] for p in PARAMETERS], ids=[p[0] for p in PARAMETERS])
def test_parameters_that_do_not_fit(flight_client, sql, batch, needle):
    """Beyond test_prepared.py's count/type cases: rows, statements without parameters,
    nested and union-wrapped values. The refusal may come at DoPut or at execution."""
    handle = create_prepared_statement(flight_client, sql)
    assert_refused(flight_client, lambda: _bind_and_run(flight_client, handle, batch), INVALID, needle)


def test_union_wrapped_parameters_bind_like_plain_ones(flight_client):
    """The well-formed counterpart of the union case above: an int64 inside a union binds."""
    handle = create_prepared_statement(flight_client, NATION_BY_KEY)
    got = _bind_and_run(flight_client, handle, pa.record_batch([_union(0, 7)], names=["$1"]))
    assert got.column("n_name").to_pylist() == ["GERMANY"]


def test_several_rows_bound_to_a_query_answer_each_rows_query_in_order(flight_client):
    """Flight SQL executes every bound parameter set: one result, row by row."""
    handle = create_prepared_statement(flight_client, NATION_BY_KEY)
    got = _bind_and_run(flight_client, handle, pa.record_batch([pa.array([7, 1, 7], pa.int64())], names=["$1"]))
    assert got.column("n_name").to_pylist() == ["GERMANY", "ARGENTINA", "GERMANY"]


def test_a_fraction_for_an_int64_parameter_is_not_truncated(flight_client):
    """n_nationkey = 7.5 holds for no row: 7.5 must not silently become 7. Refusing it
    (INVALID_ARGUMENT) or comparing exactly (no rows) are both right."""
    handle = create_prepared_statement(flight_client, NATION_BY_KEY)
    batch = pa.record_batch([pa.array([7.5], pa.float64())], names=["$1"])
    try:
        got = _bind_and_run(flight_client, handle, batch)
    except FLIGHT_ERRORS as e:
        assert flight_grpc_code(e) == "INVALID_ARGUMENT", describe_exc(e)
    else:
        assert got.num_rows == 0, f"7.5 was bound as an integer: {got.to_pylist()}"
    assert flight_sql_query(flight_client, "SELECT count(*) AS n FROM customers.region").column("n").to_pylist() == [5]


# --------------------------------------------------------------------------------------
# Handshake
# --------------------------------------------------------------------------------------


class _PayloadAuth(flight.ClientAuthHandler):
    """A Handshake that sends `payload` (pyarrow's legacy auth handler interface)."""

    def __init__(self, payload: bytes):
        super().__init__()
        self.payload = payload
        self.token = b""

    def authenticate(self, outgoing, incoming):
        outgoing.write(self.payload)
        self.token = incoming.read()

    def get_token(self):
        return self.token


@pytest.mark.parametrize("payload, authorization, message", [
    (GARBAGE, None, "credentials required"),
    (random.Random(7).randbytes(1 << 20), None, "credentials required"),
    (b"", "Basic !!!not*base64!!!", "invalid credentials"),
    (GARBAGE, "Bearer not-a-token", "invalid credentials"),
], ids=["garbage-payload", "one-mib-payload", "garbage-basic-header", "garbage-bearer-header"])
def test_handshake_with_garbage(demo_server, flight_client, payload, authorization, message):
    bare = flight.FlightClient(demo_server.uri)
    headers = [(b"authorization", authorization.encode("latin-1"))] if authorization else []
    try:
        assert_refused(flight_client, lambda: bare.authenticate(_PayloadAuth(payload),
                                                                 options=flight.FlightCallOptions(headers=headers)),
                       ("UNAUTHENTICATED",), message)
    finally:
        bare.close()
