"""Authentication (docs/governance.md "Authentication") with Basic credentials: the
handshake and its bearer token, the Basic header's encodings (padding optional, split on
the first ':'), calls without or with bad credentials (pyarrow.flight and ADBC), tickets
and prepared-statement handles bound to their principal, forged and tampered tickets and
bearers, expiry of bearers and tickets. JWTs are in test_auth_jwt.py.

Every refusal must be UNAUTHENTICATED with one message (`invalid credentials`, or
`credentials required` without any) that says nothing about what was wrong.
"""

from __future__ import annotations

import base64
import time

import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import govmodel
from mgtest import (
    DATA,
    DEMO_USERS,
    adbc_connect,
    adbc_grpc_code,
    adbc_query,
    auth_options,
    basic_authorization,
    basic_handshake,
    cmd_get_catalogs,
    cmd_get_sql_info,
    cmd_get_tables,
    cmd_prepared_statement_query,
    cmd_statement_query,
    create_prepared_statement,
    describe_exc,
    flight_client,
    flight_grpc_code,
    flight_sql_query,
    hash_password,
    server_message,
    write_yaml,
)

FLIGHT_ERRORS = (flight.FlightError, pa.ArrowException)
INVALID = "invalid credentials"
REQUIRED = "credentials required"


def _says(err, *messages) -> bool:
    """The server message is one of `messages`, possibly followed by ': <advice>'."""
    msg = server_message(err)
    return any(msg == m or msg.startswith(m + ": ") for m in messages)


def _unauthenticated(fn, *messages):
    with pytest.raises(FLIGHT_ERRORS) as ei:
        fn()
    assert flight_grpc_code(ei.value) == "UNAUTHENTICATED", describe_exc(ei.value)
    assert _says(ei.value, *(messages or (INVALID,))), describe_exc(ei.value)
    return ei.value


def _info(client, sql, options=None):
    return client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)),
                                  options or flight.FlightCallOptions())


def _run(client, sql, options=None) -> pa.Table:
    info = _info(client, sql, options)
    return pa.concat_tables([client.do_get(e.ticket, options or flight.FlightCallOptions()).read_all()
                             for e in info.endpoints])


COUNT_CUSTOMERS = "SELECT count(*) AS n FROM customers.customer"


# --------------------------------------------------------------------------------------
# Basic credentials on the demo mesh
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", DEMO_USERS)
def test_handshake_returns_bearer_that_works(demo_server, user):
    name, value = basic_handshake(demo_server.uri, user)
    assert name == b"authorization" and value.startswith(b"Bearer ") and len(value) > 30, (name, value)
    client = flight.FlightClient(demo_server.uri)
    try:
        t = _run(client, "SELECT count(*) AS n FROM sales.orders", auth_options(value.decode()))
    finally:
        client.close()
    assert t.column("n").to_pylist() == [govmodel.scalar(user, "SELECT count(*) FROM sales.orders")]


@pytest.mark.parametrize("user,password", [("ana", "wrong"), ("ana", ""), ("ana", "sam-demo"), ("nobody", "x"),
                                           ("Ana", "ana-demo"), ("", "ana-demo")],
                         ids=["wrong-password", "empty-password", "other-users-password", "unknown-user",
                              "name-case", "empty-user"])
def test_handshake_rejects_bad_credentials(demo_server, user, password):
    _unauthenticated(lambda: basic_handshake(demo_server.uri, user, password))


BASIC_HEADERS = {
    "padded": (basic_authorization("carl", "carl-demo"), True),
    "unpadded": (basic_authorization("carl", "carl-demo", pad=False), True),  # the Go driver's encoding
    "garbage-base64": ("Basic !!!not*base64!!!", False),
    "no-colon": ("Basic " + base64.b64encode(b"carlcarl-demo").decode(), False),
    "empty": ("Basic ", False),  # may count as no credentials at all
    "wrong-password": (basic_authorization("carl", "carl-demo-x"), False),
    "bearer-garbage": ("Bearer not-a-token", False),
    "unknown-scheme": ("Digest carl", False),  # may count as no credentials at all
}


@pytest.mark.parametrize("case", list(BASIC_HEADERS))
def test_basic_header_on_any_call(demo_server, case):
    header, ok = BASIC_HEADERS[case]
    client = flight.FlightClient(demo_server.uri)
    try:
        if ok:
            t = _run(client, "SELECT count(*) AS n FROM sales.orders", auth_options(header))
            assert t.column("n").to_pylist() == [govmodel.scalar("carl", "SELECT count(*) FROM sales.orders")]
        else:
            with pytest.raises(FLIGHT_ERRORS) as ei:
                _info(client, COUNT_CUSTOMERS, auth_options(header))
            assert flight_grpc_code(ei.value) == "UNAUTHENTICATED", describe_exc(ei.value)
            allowed = (INVALID, REQUIRED) if case in ("unknown-scheme", "empty") else (INVALID,)
            assert _says(ei.value, *allowed), describe_exc(ei.value)
    finally:
        client.close()


@pytest.mark.parametrize("user", DEMO_USERS)
def test_adbc_username_password(demo_server, user):
    """The Go driver's own handshake (unpadded Basic), then its bearer."""
    conn = adbc_connect(demo_server.uri, user=user)
    try:
        t = adbc_query(conn, "SELECT count(*) AS n FROM sales.orders")
    finally:
        conn.close()
    assert t.column("n").to_pylist() == [govmodel.scalar(user, "SELECT count(*) FROM sales.orders")]


def test_adbc_wrong_password(demo_server):
    with pytest.raises(adbc_driver_manager.Error) as ei:
        conn = adbc_connect(demo_server.uri, user="ana", password="nope")
        try:
            adbc_query(conn, COUNT_CUSTOMERS)
        finally:
            conn.close()
    assert adbc_grpc_code(ei.value) == "UNAUTHENTICATED", describe_exc(ei.value)


def test_adbc_without_credentials(demo_server):
    with pytest.raises(adbc_driver_manager.Error) as ei:
        conn = adbc_connect(demo_server.uri)
        try:
            adbc_query(conn, COUNT_CUSTOMERS)
        finally:
            conn.close()
    assert adbc_grpc_code(ei.value) == "UNAUTHENTICATED", describe_exc(ei.value)


def _no_credential_calls(client, ticket):
    return {
        "statement": lambda: _info(client, COUNT_CUSTOMERS),
        "get-tables": lambda: client.get_flight_info(flight.FlightDescriptor.for_command(cmd_get_tables())),
        "get-catalogs": lambda: client.get_flight_info(flight.FlightDescriptor.for_command(cmd_get_catalogs())),
        "get-sql-info": lambda: client.get_flight_info(flight.FlightDescriptor.for_command(cmd_get_sql_info([]))),
        "prepare": lambda: create_prepared_statement(client, COUNT_CUSTOMERS),
        "do-get": lambda: client.do_get(ticket).read_all(),
    }


@pytest.mark.parametrize("call", ["statement", "get-tables", "get-catalogs", "get-sql-info", "prepare", "do-get"])
def test_calls_without_credentials(demo_server, call):
    ana = flight_client(demo_server.uri, user="ana")
    bare = flight.FlightClient(demo_server.uri)
    try:
        ticket = _info(ana, COUNT_CUSTOMERS).endpoints[0].ticket
        _unauthenticated(_no_credential_calls(bare, ticket)[call], REQUIRED)
    finally:
        ana.close()
        bare.close()


# --------------------------------------------------------------------------------------
# tickets, handles and bearers bound to their principal
# --------------------------------------------------------------------------------------


def _ticket(client, sql=COUNT_CUSTOMERS) -> flight.Ticket:
    info = _info(client, sql)
    assert len(info.endpoints) == 1
    return info.endpoints[0].ticket


@pytest.mark.parametrize("authorization", [None, "Bearer x", "Bearer "], ids=["no-bearer", "garbage", "empty"])
def test_doget_needs_the_bearer(demo_server, authorization):
    ana = flight_client(demo_server.uri, user="ana")
    bare = flight.FlightClient(demo_server.uri)
    try:
        ticket = _ticket(ana)
        _unauthenticated(lambda: bare.do_get(ticket, auth_options(authorization)).read_all(),
                         *((REQUIRED,) if authorization is None else (INVALID, REQUIRED) if authorization == "Bearer "
                           else (INVALID,)))
    finally:
        ana.close()
        bare.close()


@pytest.mark.parametrize("owner,thief", [("ana", "sam"), ("stella", "ana"), ("ana", "carl"), ("sam", "ana")])
def test_ticket_of_another_principal(demo_server, owner, thief):
    a, b = flight_client(demo_server.uri, user=owner), flight_client(demo_server.uri, user=thief)
    try:
        ticket = _ticket(a, "SELECT count(*) AS n FROM sales.orders")
        with pytest.raises(FLIGHT_ERRORS) as ei:
            b.do_get(ticket).read_all()
        assert flight_grpc_code(ei.value) == "UNAUTHENTICATED", describe_exc(ei.value)
        assert a.do_get(ticket).read_all().num_rows == 1  # the owner still redeems it
    finally:
        a.close()
        b.close()


def test_prepared_statement_handle_of_another_principal(demo_server):
    ana, sam = flight_client(demo_server.uri, user="ana"), flight_client(demo_server.uri, user="sam")
    try:
        handle = create_prepared_statement(ana, COUNT_CUSTOMERS)
        desc = flight.FlightDescriptor.for_command(cmd_prepared_statement_query(handle))
        with pytest.raises(FLIGHT_ERRORS) as ei:
            sam.get_flight_info(desc)
        assert flight_grpc_code(ei.value) == "UNAUTHENTICATED", describe_exc(ei.value)
        info = ana.get_flight_info(desc)  # ana's own handle works and is governed
        assert ana.do_get(info.endpoints[0].ticket).read_all().column("n").to_pylist() == \
            [govmodel.scalar("ana", "SELECT count(*) FROM customers.customer")]
    finally:
        ana.close()
        sam.close()


def _tampered(ticket_bytes: bytes, sql: str) -> list[bytes]:
    out = []
    raw = sql.encode()
    if raw in ticket_bytes:  # same length, so every protobuf length stays valid
        out.append(ticket_bytes.replace(raw, raw.replace(b"c_custkey", b"c_comment")))  # a denied column
    mid = len(ticket_bytes) // 2
    out.append(ticket_bytes[:mid] + bytes([ticket_bytes[mid] ^ 0x01]) + ticket_bytes[mid + 1:])
    out.append(ticket_bytes[:-1] + bytes([ticket_bytes[-1] ^ 0x80]))
    out.append(ticket_bytes[: len(ticket_bytes) - 8])
    return out


def _forged() -> list[bytes]:
    from mgtest import pack_any, pb_bytes, pb_string, pb_varint, pb_key

    payload = pb_string(1, "SELECT * FROM customers.customer") + pb_string(2, "stella") + \
        pb_key(3, 0) + pb_varint(int(time.time() * 1000) + 3_600_000) + pb_key(4, 0) + pb_varint(1)
    envelope = pb_key(1, 0) + pb_varint(1) + pb_bytes(2, payload) + pb_bytes(3, b"\0" * 32)
    return [
        b"garbage",
        b"",
        pack_any("TicketStatementQuery", pb_bytes(1, envelope)),
        pack_any("TicketStatementQuery", pb_bytes(1, b"\x00" * 64)),
    ]


def test_forged_and_tampered_tickets(demo_server):
    ana = flight_client(demo_server.uri, user="ana")
    try:
        sql = "SELECT c_custkey FROM customers.customer"
        good = _ticket(ana, sql).ticket
        wrong = []
        for i, bad in enumerate(_tampered(good, sql) + _forged()):
            try:
                t = ana.do_get(flight.Ticket(bad)).read_all()
                wrong.append((i, bad[:40], f"redeemed: {t.num_rows} rows"))
            except FLIGHT_ERRORS as e:
                if flight_grpc_code(e) not in ("INVALID_ARGUMENT", "UNAUTHENTICATED") or "SELECT" in server_message(e):
                    wrong.append((i, bad[:40], describe_exc(e)))
        assert not wrong, "\n".join(map(repr, wrong))
    finally:
        assert flight_sql_query(ana, COUNT_CUSTOMERS).column("n").to_pylist() == \
            [govmodel.scalar("ana", "SELECT count(*) FROM customers.customer")]  # still serving
        ana.close()


def _flip(token: str, at: int) -> str:
    c = token[at]
    return token[:at] + ("A" if c != "A" else "B") + token[at + 1:]


def _b64decode(part: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except ValueError:
        return None


def _escalated(token: str) -> list[str]:
    """The token with the principal's claims rewritten in place (same lengths, so any
    encoding stays well-formed) and the original signature: analyst -> steward, ana -> sam."""
    out = []
    parts = token.split(".")
    for i, part in enumerate(parts):
        raw = _b64decode(part)
        if not raw:
            continue
        for a, b in ((b"analyst", b"steward"), (b"ana", b"sam")):
            if a in raw:
                forged = base64.urlsafe_b64encode(raw.replace(a, b)).decode().rstrip("=")
                out.append(".".join(parts[:i] + [forged] + parts[i + 1:]))
    return out


def test_tampered_bearer(demo_server):
    token = basic_handshake(demo_server.uri, "ana")[1].decode()[len("Bearer "):]
    variants = [_flip(token, len(token) // 2), _flip(token, len(token) - 2), token[:-4], "x" + token]
    escalations = _escalated(token)
    assert escalations, f"no principal claims found in the token to tamper with: {token}"
    client = flight.FlightClient(demo_server.uri)
    try:
        for bad in variants + escalations:
            _unauthenticated(lambda: _info(client, COUNT_CUSTOMERS, auth_options(f"Bearer {bad}")))
        assert _run(client, COUNT_CUSTOMERS, auth_options(f"Bearer {token}")).num_rows == 1
    finally:
        client.close()


# --------------------------------------------------------------------------------------
# a mesh of its own: short token and ticket lifetimes, a password with colons
# --------------------------------------------------------------------------------------

COLON_PASSWORD = "pa:ss:wo:rd"


@pytest.fixture(scope="module")
def short_server(start_server, meshgate_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("short-lived")
    doc = {
        "catalog": "mesh",
        "auth": {
            "token_ttl_secs": 1,
            "users": [
                {"name": "ana", "password_hash": hash_password(meshgate_bin, "ana-demo"), "groups": ["analyst"]},
                {"name": "colon", "password_hash": hash_password(meshgate_bin, COLON_PASSWORD), "groups": ["analyst"]},
            ],
        },
        "governance": {"policies": [{
            "grants": [{"id": "analysts", "effect": "permit", "when": "'analyst' in principal.groups"}],
            "row_filters": [{"id": "all-rows", "mode": "permissive", "filter": "true"}],
            "columns": [{"id": "all-columns", "select": "*", "action": "allow"}],
        }]},
        "domains": {"geo": {"owner": "qa@example.com", "products": [
            {"name": "region", "location": f"{DATA / 'customers' / 'region'}/", "format": "parquet"},
        ]}},
    }
    srv = start_server(write_yaml(root / "mesh.yaml", doc), name="short-lived", args=["--ticket-ttl-secs", "1"])
    yield srv
    srv.stop(check=True)


def test_hash_password_prints_argon2id(meshgate_bin):
    a, b = hash_password(meshgate_bin, "x"), hash_password(meshgate_bin, COLON_PASSWORD)
    assert a.startswith("$argon2id$") and b.startswith("$argon2id$") and a != b


@pytest.mark.parametrize("password,ok", [(COLON_PASSWORD, True), ("pa", False), ("pa:ss", False), ("", False)],
                         ids=["full", "first-part", "two-parts", "empty"])
def test_password_with_colons_splits_on_first_colon(short_server, password, ok):
    client = flight.FlightClient(short_server.uri)
    try:
        header = basic_authorization("colon", password)
        if ok:
            assert _run(client, "SELECT count(*) AS n FROM geo.region", auth_options(header)).to_pylist() == [{"n": 5}]
            assert basic_handshake(short_server.uri, "colon", password)[1].startswith(b"Bearer ")
        else:
            _unauthenticated(lambda: _info(client, "SELECT 1", auth_options(header)))
    finally:
        client.close()


def test_expired_bearer(short_server):
    token = basic_handshake(short_server.uri, "ana")[1].decode()
    client = flight.FlightClient(short_server.uri)
    try:
        time.sleep(2.2)  # token_ttl_secs: 1 (sleeping is the only way to let it expire)
        _unauthenticated(lambda: _info(client, "SELECT 1", auth_options(token)))
    finally:
        client.close()


def test_expired_ticket(short_server):
    header = auth_options(basic_authorization("ana", "ana-demo"))
    client = flight.FlightClient(short_server.uri)
    try:
        ticket = _info(client, "SELECT count(*) AS n FROM geo.region", header).endpoints[0].ticket
        time.sleep(2.2)  # --ticket-ttl-secs 1
        with pytest.raises(FLIGHT_ERRORS) as ei:
            client.do_get(ticket, header).read_all()
        assert flight_grpc_code(ei.value) in ("INVALID_ARGUMENT", "UNAUTHENTICATED"), describe_exc(ei.value)
    finally:
        client.close()


def test_bearer_of_another_server(demo_server, short_server):
    """Each server signs with its own key: a token from one is nothing to the other."""
    token = basic_handshake(short_server.uri, "ana")[1].decode()
    client = flight.FlightClient(demo_server.uri)
    try:
        _unauthenticated(lambda: _info(client, "SELECT 1", auth_options(token)))
    finally:
        client.close()
