"""Token lifecycle (docs/governance.md "Token lifecycle"): a bearer token never outlives
or outranks the credential it came from.

- Renewal (a handshake carrying only `authorization: Bearer <meshgate token>`) answers a
  token with the presented token's expiry, never a fresh lifetime.
- A token exchanged for a JWT expires when the JWT does.
- A reload that removes a user's group (pii_reader, analyst), changes an attribute,
  rotates a password or removes the user takes effect on tokens issued before it; a
  ticket, prepared-statement handle or session cookie issued before is never served
  with the old rights.
- An anonymous token is honoured only while anonymous access is on, as the anonymous
  principal configured now.
- Between two servers sharing MESHGATE_TICKET_SECRET, a token is honoured only for a
  credential configured alike on both (anonymous access, the user's password hash, the
  JWT settings), with the rights of the server that serves the call.

Tokens are read in the tests (base64url protobuf `AccessToken`, proto/meshgate/v1/
tickets.proto) to compare expiries exactly. Waiting for an expiry is done by sleeping
until it has passed: time passing is what is under test.
"""

from __future__ import annotations

import base64
import time

import jwt
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from mgtest import (
    DATA,
    basic_handshake,
    cmd_prepared_statement_query,
    cmd_statement_query,
    create_prepared_statement,
    describe_exc,
    flight_client,
    flight_grpc_code,
    flight_sql_query,
    hash_password,
    pb_fields,
    server_message,
    write_yaml,
)
from test_reload import hangup
from test_sessions import Session

FLIGHT_ERRORS = (flight.FlightError, pa.ArrowException)
INVALID = "invalid credentials"
REQUIRED = "credentials required"

ISSUER = "https://login.test.example"
JWT_SECRET = "jwt-lifecycle-shared-secret-0123456789"
JWT_ENV = {"MESHGATE_TEST_IDP_SECRET": JWT_SECRET}
SHARED_SECRET = {"MESHGATE_TICKET_SECRET": "token-lifecycle-shared-ticket-secret"}

ORIGIN_BASIC, ORIGIN_JWT, ORIGIN_ANONYMOUS = 1, 2, 3  # TokenOrigin

PHONES = "SELECT DISTINCT c_phone = 'hidden' AS hidden FROM crm.customer"
SEGMENTS = "SELECT DISTINCT c_mktsegment AS segment FROM crm.customer"


# --------------------------------------------------------------------------------------
# a mesh with users, an identity provider and (optionally) anonymous access
# --------------------------------------------------------------------------------------


def user(name: str, groups=("analyst",), segment="BUILDING", password: str | None = None) -> dict:
    return {"name": name, "password": password or f"{name}-demo", "groups": list(groups),
            "attributes": {"segment": segment}}


def mesh_doc(meshgate_bin, users: list[dict], *, ttl: int = 3600, anonymous: dict | None = None,
             audience: str = "meshgate") -> dict:
    """One product, crm.customer: analysts read their own market segment; phone numbers
    read 'hidden' unless the principal is in pii_reader."""
    auth = {
        "token_ttl_secs": ttl,
        "users": [{"name": u["name"], "password_hash": hash_password(meshgate_bin, u["password"]),
                   "groups": u["groups"], "attributes": u["attributes"]} for u in users],
        "jwt": {"issuer": ISSUER, "audience": audience, "algorithms": ["HS256"],
                "secret_env": "MESHGATE_TEST_IDP_SECRET",
                "claims": {"name": "sub", "groups": "groups", "attributes": {"segment": "segment"}}},
    }
    if anonymous is not None:
        auth["anonymous"] = anonymous
    return {
        "catalog": "mesh",
        "auth": auth,
        "governance": {
            "attributes": {"segment": "utf8"},
            "policies": [{
                "grants": [{"id": "analysts", "effect": "permit", "when": "'analyst' in principal.groups"}],
                "row_filters": [{"id": "own-segment", "mode": "permissive",
                                 "filter": "c_mktsegment = principal.segment"}],
                "columns": [
                    {"id": "all", "select": "*", "action": "allow"},
                    {"id": "phones", "select": ["c_phone"], "action": {"mask": "redact", "value": "hidden"},
                     "unless": "'pii_reader' in principal.groups"},
                ],
            }],
        },
        "domains": {"crm": {"owner": "qa@example.com", "products": [
            {"name": "customer", "location": f"{DATA / 'customers' / 'customer'}/", "format": "parquet"},
        ]}},
    }


def start(start_server, meshgate_bin, path, users, *, name, env=None, **kw):
    write_yaml(path, mesh_doc(meshgate_bin, users, **kw))
    return start_server(path, env={**JWT_ENV, **(env or {})}, name=name)


def reload(server, meshgate_bin, path, users, **kw):
    write_yaml(path, mesh_doc(meshgate_bin, users, **kw))
    hangup(server, "reloaded")


# --------------------------------------------------------------------------------------
# handshakes, tokens, calls
# --------------------------------------------------------------------------------------


class _Exchange(flight.ClientAuthHandler):
    """A Flight Handshake that sends nothing but the call's headers and keeps the token
    the server answers with (it is also the response payload). It writes no request
    message: the server answers without reading one, and a write racing that answer
    sometimes left pyarrow's read waiting forever."""

    def __init__(self):
        super().__init__()
        self.token: bytes | None = None

    def authenticate(self, outgoing, incoming):
        self.token = incoming.read()

    def get_token(self):
        return b""


def handshake(uri: str, bearer: str | None) -> str:
    """The meshgate token a handshake carrying only `authorization: Bearer <bearer>`
    (or no credentials at all) answers with."""
    # The header goes in the call options, not a (Python) client middleware: pyarrow
    # holds the GIL while the handler reads, so a middleware callback would deadlock.
    headers = [(b"authorization", f"Bearer {bearer}".encode())] if bearer is not None else []
    client = flight.FlightClient(uri)
    try:
        exchange = _Exchange()
        client.authenticate(exchange, options=flight.FlightCallOptions(headers=headers, timeout=60))
        assert exchange.token, "the handshake answered without a token"
        return exchange.token.decode()
    finally:
        client.close()


def login(uri: str, name: str, password: str | None = None) -> str:
    header, value = basic_handshake(uri, name, password)
    assert header.lower() == b"authorization" and value.startswith(b"Bearer "), (header, value)
    return value[len(b"Bearer "):].decode()


def token_fields(token: str) -> dict:
    """The AccessToken inside `mgt2.<payload>.<signature>`: name, expires_at_ms, origin,
    issued_at_ms and groups."""
    prefix, payload, _ = token.split(".")
    assert prefix == "mgt2", token
    fields = pb_fields(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    one = {f: v for f, _, v in fields}
    return {"name": one[1].decode(), "expires_at_ms": one.get(4, 0), "origin": one.get(5, 0),
            "issued_at_ms": one.get(7, 0), "groups": [v.decode() for f, _, v in fields if f == 2]}


def query(uri: str, token: str | None, sql: str) -> list:
    client = flight_client(uri, bearer=token)
    try:
        return flight_sql_query(client, sql).column(0).to_pylist()
    finally:
        client.close()


def refused(fn, *messages) -> BaseException:
    with pytest.raises(FLIGHT_ERRORS) as ei:
        fn()
    assert flight_grpc_code(ei.value) == "UNAUTHENTICATED", describe_exc(ei.value)
    message = server_message(ei.value)
    assert any(message == m or message.startswith(m + ": ") for m in messages or (INVALID,)), describe_exc(ei.value)
    return ei.value


def not_found(fn) -> None:
    with pytest.raises(FLIGHT_ERRORS) as ei:
        fn()
    assert flight_grpc_code(ei.value) == "NOT_FOUND", describe_exc(ei.value)


def sleep_past(expires_at_ms: int, margin: float = 0.3) -> None:
    time.sleep(max(0.0, expires_at_ms / 1000 - time.time()) + margin)


def idp_token(**claims) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "meshgate", "sub": "jane", "groups": ["analyst"], "segment": "MACHINERY",
            "iat": now, "nbf": now - 10, "exp": now + 600}
    body.update(claims)
    return jwt.encode(body, JWT_SECRET, algorithm="HS256")


# --------------------------------------------------------------------------------------
# renewal and JWT expiry
# --------------------------------------------------------------------------------------


def test_renewal_keeps_the_login_expiry(start_server, meshgate_bin, tmp_path):
    server = start(start_server, meshgate_bin, tmp_path / "mesh.yaml", [user("ana")], ttl=4, name="renewal")
    first = login(server.uri, "ana")
    login_fields = token_fields(first)
    assert login_fields["origin"] == ORIGIN_BASIC and login_fields["name"] == "ana", login_fields
    time.sleep(2)  # half the lifetime passes before the renewal

    renewed = handshake(server.uri, first)
    again = handshake(server.uri, renewed)
    for token in (renewed, again):
        fields = token_fields(token)
        assert (fields["expires_at_ms"], fields["issued_at_ms"], fields["origin"]) == \
            (login_fields["expires_at_ms"], login_fields["issued_at_ms"], ORIGIN_BASIC), (fields, login_fields)
    assert query(server.uri, again, SEGMENTS) == ["BUILDING"]

    # At the login's expiry every renewal is dead too, and cannot be renewed again.
    sleep_past(login_fields["expires_at_ms"])
    for token in (first, renewed, again):
        refused(lambda: query(server.uri, token, SEGMENTS))
        refused(lambda: handshake(server.uri, token))
    assert query(server.uri, login(server.uri, "ana"), SEGMENTS) == ["BUILDING"]  # a new login works
    server.stop(check=True)


def test_a_token_for_a_jwt_expires_with_the_jwt(start_server, meshgate_bin, tmp_path):
    server = start(start_server, meshgate_bin, tmp_path / "mesh.yaml", [user("ana")], name="jwt-expiry")
    exp = int(time.time()) + 4
    exchanged = handshake(server.uri, idp_token(exp=exp))
    fields = token_fields(exchanged)
    assert fields["origin"] == ORIGIN_JWT and fields["name"] == "jane", fields
    assert fields["expires_at_ms"] == exp * 1000, fields  # the token lifetime is an hour
    renewed = handshake(server.uri, exchanged)
    assert token_fields(renewed)["expires_at_ms"] == exp * 1000
    assert query(server.uri, renewed, SEGMENTS) == ["MACHINERY"]  # the JWT's claims

    # A JWT that outlives the token lifetime still gets at most the lifetime.
    long_lived = token_fields(handshake(server.uri, idp_token(exp=int(time.time()) + 7 * 24 * 3600)))
    assert long_lived["expires_at_ms"] - long_lived["issued_at_ms"] == 3600 * 1000, long_lived

    sleep_past(exp * 1000)
    for token in (exchanged, renewed):
        refused(lambda: query(server.uri, token, SEGMENTS))
        refused(lambda: handshake(server.uri, token))
    server.stop(check=True)


# --------------------------------------------------------------------------------------
# a reload demotes tokens, tickets, handles and cookies issued before it
# --------------------------------------------------------------------------------------


def test_a_reload_demotes_tokens_issued_before_it(start_server, meshgate_bin, tmp_path):
    path = tmp_path / "mesh.yaml"
    before = [user("ana", ["analyst", "pii_reader"]), user("carl"), user("bo", segment="BUILDING"),
              user("ed"), user("fay")]
    server = start(start_server, meshgate_bin, path, before, name="demotion")
    uri = server.uri
    tokens = {u["name"]: login(uri, u["name"]) for u in before}
    assert query(uri, tokens["ana"], PHONES) == [False]  # clear phone numbers
    assert query(uri, tokens["carl"], SEGMENTS) == ["BUILDING"]
    assert query(uri, tokens["bo"], SEGMENTS) == ["BUILDING"]
    for name in ("ed", "fay"):
        assert query(uri, tokens[name], SEGMENTS) == ["BUILDING"]

    # What ana holds besides her token: a ticket, a prepared-statement handle, a session.
    ana = flight_client(uri, bearer=tokens["ana"])
    ticket = ana.get_flight_info(flight.FlightDescriptor.for_command(
        cmd_statement_query("SELECT c_phone FROM crm.customer"))).endpoints[0].ticket
    handle = create_prepared_statement(ana, "SELECT c_phone FROM crm.customer")
    session = Session(uri, "ana")
    session.set({"schema": "crm"}, cookie=None)
    assert session.scalar("SELECT count(*) AS n FROM customer") > 0

    # ana loses pii_reader, carl analyst, bo changes segment, ed's password is rotated,
    # fay is removed.
    after = [user("ana"), user("carl", groups=[]), user("bo", segment="MACHINERY"),
             user("ed", password="ed-rotated")]
    reload(server, meshgate_bin, path, after)

    assert query(uri, tokens["ana"], PHONES) == [True]
    not_found(lambda: query(uri, tokens["carl"], SEGMENTS))
    assert query(uri, tokens["bo"], SEGMENTS) == ["MACHINERY"]
    for name in ("ed", "fay"):
        refused(lambda: query(uri, tokens[name], SEGMENTS))
        refused(lambda: handshake(uri, tokens[name]))
    refused(lambda: login(uri, "ed"))
    assert query(uri, login(uri, "ed", "ed-rotated"), SEGMENTS) == ["BUILDING"]
    # A renewal of a demoted token is as demoted as the token.
    assert query(uri, handshake(uri, tokens["ana"]), PHONES) == [True]

    # Issued under the old rights, never served under them: refused, or planned anew.
    for redeem in (lambda: ana.do_get(ticket).read_all(),
                   lambda: ana.do_get(ana.get_flight_info(flight.FlightDescriptor.for_command(
                       cmd_prepared_statement_query(handle))).endpoints[0].ticket).read_all()):
        try:
            phones = redeem().column("c_phone").to_pylist()
        except FLIGHT_ERRORS as error:
            assert flight_grpc_code(error) == "UNAUTHENTICATED", describe_exc(error)
        else:
            assert set(phones) == {"hidden"}, phones[:5]
    refused(lambda: session.scalar("SELECT count(*) AS n FROM customer"),
            "the session cookie belongs to another principal")
    ana.close()
    session.close()
    server.stop(check=True)


def test_an_anonymous_token_lives_only_while_anonymous_access_is_on(start_server, meshgate_bin, tmp_path):
    path = tmp_path / "mesh.yaml"
    guest = {"name": "guest", "groups": ["analyst"], "attributes": {"segment": "HOUSEHOLD"}}
    server = start(start_server, meshgate_bin, path, [user("ana")], anonymous=guest, name="anonymous")
    token = handshake(server.uri, None)
    assert token_fields(token)["origin"] == ORIGIN_ANONYMOUS
    assert query(server.uri, token, SEGMENTS) == ["HOUSEHOLD"]

    # The anonymous principal configured now: a demotion applies to the token.
    reload(server, meshgate_bin, path, [user("ana")], anonymous={**guest, "groups": []})
    not_found(lambda: query(server.uri, token, SEGMENTS))

    reload(server, meshgate_bin, path, [user("ana")])
    refused(lambda: query(server.uri, token, SEGMENTS))
    refused(lambda: handshake(server.uri, token))
    refused(lambda: query(server.uri, None, SEGMENTS), REQUIRED)

    # Anonymous access on again under another name: the old token is still refused.
    reload(server, meshgate_bin, path, [user("ana")], anonymous={**guest, "name": "visitor"})
    refused(lambda: query(server.uri, token, SEGMENTS))
    assert query(server.uri, None, SEGMENTS) == ["HOUSEHOLD"]
    server.stop(check=True)


# --------------------------------------------------------------------------------------
# two servers sharing MESHGATE_TICKET_SECRET
# --------------------------------------------------------------------------------------


def test_a_second_server_sharing_the_secret_honours_only_what_it_configures(start_server, meshgate_bin,
                                                                            tmp_path):
    guest = {"name": "guest", "groups": ["analyst"], "attributes": {"segment": "HOUSEHOLD"}}
    a = start(start_server, meshgate_bin, tmp_path / "a.yaml",
              [user("ana"), user("sam", ["analyst", "pii_reader"])],
              anonymous=guest, env=SHARED_SECRET, name="shared-a")
    # B: no anonymous access, ana with another password, sam alike but without
    # pii_reader, JWTs for another audience.
    b = start(start_server, meshgate_bin, tmp_path / "b.yaml",
              [user("ana", password="ana-on-b"), user("sam", ["analyst"])],
              env=SHARED_SECRET, audience="meshgate-b", name="shared-b")

    anonymous = handshake(a.uri, None)
    ana, sam = login(a.uri, "ana"), login(a.uri, "sam")
    exchanged = handshake(a.uri, idp_token())
    assert query(a.uri, anonymous, SEGMENTS) == ["HOUSEHOLD"]
    assert query(a.uri, ana, SEGMENTS) == ["BUILDING"]
    assert query(a.uri, sam, PHONES) == [False]
    assert query(a.uri, exchanged, SEGMENTS) == ["MACHINERY"]

    for token in (anonymous, ana, exchanged):
        refused(lambda: query(b.uri, token, SEGMENTS))
        refused(lambda: handshake(b.uri, token))
    # sam's credential is configured alike: B honours the token, with B's rights.
    assert query(b.uri, sam, PHONES) == [True]
    assert query(b.uri, login(b.uri, "ana", "ana-on-b"), SEGMENTS) == ["BUILDING"]
    a.stop(check=True)
    b.stop(check=True)
