"""Authentication with JWTs from an identity provider (docs/governance.md, `auth.jwt`):
one server per key source — HS256 shared secret, RS256 and ES256 public key files, a
JWKS file (the token's kid picks the key) — with claims mapped to the principal.

Valid tokens work and their claims drive row filters; alg none, wrong key, algorithm
confusion (HS256 keyed with the public key), expired, not yet valid, wrong audience or
issuer, stripped signature, unknown kid: all UNAUTHENTICATED `invalid credentials`.
Claim values that try SQL injection or carry the wrong type (array, object, string for a
number) leave the attribute missing: zero rows, a forbid that holds, never more rows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mgtest import (
    DATA,
    adbc_connect,
    adbc_query,
    basic_handshake,
    describe_exc,
    duckdb_expected,
    flight_client,
    flight_grpc_code,
    flight_sql_query,
    server_message,
    write_yaml,
)

FLIGHT_ERRORS = (flight.FlightError, pa.ArrowException)
INVALID = "invalid credentials"


def _unauthenticated(fn):
    with pytest.raises(FLIGHT_ERRORS) as ei:
        fn()
    assert flight_grpc_code(ei.value) == "UNAUTHENTICATED", describe_exc(ei.value)
    assert server_message(ei.value) == INVALID, describe_exc(ei.value)
    return ei.value


# --------------------------------------------------------------------------------------
# JWTs from an identity provider
# --------------------------------------------------------------------------------------

ISSUER = "https://login.test.example"
AUDIENCE = "meshgate"
JWT_SECRET = "jwt-test-shared-secret-0123456789abcdef"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(header: dict, claims: dict, sign=lambda data: b"") -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def jwt_claims(**over) -> dict:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "jane", "groups": ["analyst"], "segment": "AUTOMOBILE",
              "region_key": 1, "iat": now, "nbf": now - 10, "exp": now + 600}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class Idp:
    """An identity provider of one kind: its keys, its meshgate `auth.jwt` block, tokens."""

    def __init__(self, kind: str):
        self.kind = kind
        self.rsa, self.rsa_other = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
        self.ec, self.ec_other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def jwt_block(self, root) -> dict:
        block = {"issuer": ISSUER, "audience": AUDIENCE,
                 "claims": {"name": "sub", "groups": "groups",
                            "attributes": {"region_key": "region_key", "segment": "segment"}}}
        if self.kind == "HS256":
            block.update(algorithms=["HS256"], secret_env="MESHGATE_TEST_IDP_SECRET")
        elif self.kind == "RS256":
            (root / "idp-rsa.pem").write_bytes(_pem(self.rsa))
            block.update(algorithms=["RS256"], public_key_file=str(root / "idp-rsa.pem"))
        elif self.kind == "ES256":
            (root / "idp-ec.pem").write_bytes(_pem(self.ec))
            block.update(algorithms=["ES256"], public_key_file=str(root / "idp-ec.pem"))
        else:  # JWKS: two RSA keys; JWKS-mixed: an RSA and an EC key, both algorithms pinned
            second = (dict(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True),
                           kid="k-ec", use="sig", alg="ES256") if self.kind == "JWKS-mixed" else
                      dict(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa_other.public_key(), as_dict=True),
                           kid="k-rsa2", use="sig", alg="RS256"))
            keys = [dict(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True),
                         kid="k-rsa", use="sig", alg="RS256"), second]
            (root / "jwks.json").write_text(json.dumps({"keys": keys}))
            block.update(algorithms=["RS256", "ES256"] if self.kind == "JWKS-mixed" else ["RS256"],
                         jwks_file=str(root / "jwks.json"))
        return block

    def token(self, claims: dict, *, wrong_key: bool = False, kid: str | None = None) -> str:
        if self.kind == "HS256":
            return jwt.encode(claims, JWT_SECRET + ("x" if wrong_key else ""), algorithm="HS256")
        if self.kind == "ES256":
            return jwt.encode(claims, self.ec_other if wrong_key else self.ec, algorithm="ES256")
        # a JWKS's second RSA key is rsa_other: the wrong key for kid k-rsa
        return jwt.encode(claims, self.rsa_other if wrong_key else self.rsa, algorithm="RS256",
                          headers={"kid": kid or "k-rsa"} if self.kind.startswith("JWKS") else None)

    def signed_with(self, claims: dict, key, algorithm: str, kid: str) -> str:
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})

    def confused(self, claims: dict) -> str:
        """Algorithm confusion: HS256 keyed with the public key (HS256 server: an RS256 token)."""
        if self.kind == "HS256":
            return jwt.encode(claims, self.rsa, algorithm="RS256")
        pem = _pem(self.ec if self.kind == "ES256" else self.rsa)
        return unsigned_jwt({"alg": "HS256", "typ": "JWT", "kid": "k-rsa"}, claims,
                            lambda data: hmac.new(pem, data, hashlib.sha256).digest())


@pytest.fixture(scope="module", params=["HS256", "RS256", "ES256", "JWKS"])
def idp_server(request, start_server, tmp_path_factory):
    idp = Idp(request.param)
    root = tmp_path_factory.mktemp(f"jwt-{request.param}")
    crm = DATA / "customers"
    doc = {
        "catalog": "mesh",
        "auth": {"jwt": idp.jwt_block(root)},
        "governance": {
            "attributes": {"region_key": "int64", "segment": "utf8"},
            "policies": [{
                "grants": [
                    {"id": "analysts", "effect": "permit", "when": "'analyst' in principal.groups"},
                    {"id": "regions-need-a-region", "effect": "forbid", "products": ["region"],
                     "when": "principal.region_key = 99"},
                ],
                "row_filters": [
                    {"id": "own-segment", "mode": "permissive", "products": ["customer"],
                     "filter": "c_mktsegment = principal.segment"},
                    {"id": "own-region", "mode": "permissive", "products": ["nation"],
                     "filter": "n_regionkey = principal.region_key"},
                    {"id": "all-regions", "mode": "permissive", "products": ["region"], "filter": "true"},
                ],
                "columns": [{"id": "all", "select": "*", "action": "allow"}],
            }],
        },
        "domains": {"crm": {"owner": "qa@example.com", "products": [
            {"name": p, "location": f"{crm / p}/", "format": "parquet"} for p in ("customer", "nation", "region")
        ]}},
    }
    srv = start_server(write_yaml(root / "mesh.yaml", doc), env={"MESHGATE_TEST_IDP_SECRET": JWT_SECRET},
                       name=f"jwt-{request.param}")
    yield srv, idp
    srv.stop(check=True)


def _as(srv, token, sql) -> pa.Table:
    client = flight_client(srv.uri, bearer=token)
    try:
        return flight_sql_query(client, sql)
    finally:
        client.close()


def _rejected(srv, token):
    client = flight_client(srv.uri, bearer=token)
    try:
        return _unauthenticated(lambda: flight_sql_query(client, "SELECT count(*) AS n FROM crm.region"))
    finally:
        client.close()


@pytest.mark.parametrize("segment,region", [("AUTOMOBILE", 1), ("BUILDING", 3)])
def test_jwt_claims_drive_row_filters(idp_server, segment, region):
    srv, idp = idp_server
    token = idp.token(jwt_claims(segment=segment, region_key=region))
    got = _as(srv, token, "SELECT c_custkey, c_mktsegment FROM crm.customer")
    assert set(got.column("c_mktsegment").to_pylist()) == {segment}
    expected = duckdb_expected(f"SELECT c_custkey FROM customers.customer WHERE c_mktsegment = '{segment}'")
    assert sorted(got.column("c_custkey").to_pylist()) == sorted(r[0] for r in expected.rows)
    nations = _as(srv, token, "SELECT n_nationkey FROM crm.nation").column("n_nationkey").to_pylist()
    expected = duckdb_expected(f"SELECT n_nationkey FROM customers.nation WHERE n_regionkey = {region}")
    assert sorted(nations) == sorted(r[0] for r in expected.rows)
    if idp.kind == "RS256":  # the same token through ADBC's authorization header
        conn = adbc_connect(srv.uri, bearer=token)
        try:
            assert adbc_query(conn, "SELECT count(*) AS n FROM crm.customer").column("n").to_pylist() == [got.num_rows]
        finally:
            conn.close()


@pytest.mark.parametrize("idp_server", ["JWKS"], indirect=True)
def test_jwks_picks_the_key_by_kid(idp_server):
    srv, idp = idp_server
    sql = "SELECT count(*) AS n FROM crm.region"
    assert _as(srv, idp.signed_with(jwt_claims(), idp.rsa_other, "RS256", "k-rsa2"), sql).to_pylist() == [{"n": 5}]
    assert _as(srv, idp.signed_with(jwt_claims(), idp.rsa, "RS256", "k-rsa"), sql).to_pylist() == [{"n": 5}]
    _rejected(srv, idp.signed_with(jwt_claims(), idp.rsa, "RS256", "k-rsa2"))  # the kid names the other key
    _rejected(srv, idp.signed_with(jwt_claims(), idp.ec, "ES256", "k-rsa"))  # ES256 is not pinned
    _rejected(srv, idp.signed_with(jwt_claims(), idp.rsa, "RS256", "k-unknown"))


@pytest.mark.parametrize("idp_server", ["JWKS-mixed"], indirect=True)
def test_jwks_with_rsa_and_ec_keys(idp_server):
    """algorithms: [RS256, ES256] with one key of each in the JWKS: both kinds of token work."""
    srv, idp = idp_server
    sql = "SELECT count(*) AS n FROM crm.region"
    assert _as(srv, idp.signed_with(jwt_claims(), idp.ec, "ES256", "k-ec"), sql).to_pylist() == [{"n": 5}]
    assert _as(srv, idp.signed_with(jwt_claims(), idp.rsa, "RS256", "k-rsa"), sql).to_pylist() == [{"n": 5}]
    _rejected(srv, idp.signed_with(jwt_claims(), idp.ec, "ES256", "k-rsa"))  # kid of the RSA key
    _rejected(srv, idp.confused(jwt_claims()))


def _bad_tokens(idp: Idp) -> dict[str, str]:
    now = int(time.time())
    good = jwt_claims()
    out = {
        "alg-none": unsigned_jwt({"alg": "none", "typ": "JWT"}, good),
        "alg-None": unsigned_jwt({"alg": "None", "typ": "JWT"}, good),
        "wrong-key": idp.token(good, wrong_key=True),
        "alg-confusion": idp.confused(good),
        "expired": idp.token(jwt_claims(exp=now - 3600, iat=now - 7200, nbf=now - 7200)),
        "not-yet-valid": idp.token(jwt_claims(nbf=now + 3600)),
        "wrong-audience": idp.token(jwt_claims(aud="someone-else")),
        "wrong-issuer": idp.token(jwt_claims(iss="https://evil.example")),
        "signature-stripped": idp.token(good).rsplit(".", 1)[0] + ".",
        "garbage": "abc.def.ghi",
    }
    return out


BAD_TOKEN_CASES = ["alg-none", "alg-None", "wrong-key", "alg-confusion", "expired", "not-yet-valid",
                   "wrong-audience", "wrong-issuer", "signature-stripped", "garbage"]


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
def test_jwt_rejected(idp_server, case):
    srv, idp = idp_server
    _rejected(srv, _bad_tokens(idp)[case])
    assert _as(srv, idp.token(jwt_claims()), "SELECT count(*) AS n FROM crm.region").to_pylist() == [{"n": 5}]


def test_jwt_basic_credentials_are_not_accepted_without_users(idp_server):
    srv, _ = idp_server
    _unauthenticated(lambda: basic_handshake(srv.uri, "jane", "whatever"))


INJECTIONS = {
    # claim values that must bind as typed literals: a quote is data, a wrong type is missing
    "quote-in-segment": ({"segment": "BUILDING' OR '1'='1"}, "SELECT count(*) AS n FROM crm.customer", 0),
    "comment-in-segment": ({"segment": "BUILDING'--"}, "SELECT count(*) AS n FROM crm.customer", 0),
    "array-segment": ({"segment": ["BUILDING", "AUTOMOBILE"]}, "SELECT count(*) AS n FROM crm.customer", 0),
    "object-segment": ({"segment": {"eq": "BUILDING"}}, "SELECT count(*) AS n FROM crm.customer", 0),
    "number-segment": ({"segment": 1}, "SELECT count(*) AS n FROM crm.customer", 0),
    "string-region": ({"region_key": "3"}, "SELECT count(*) AS n FROM crm.nation", 0),
    "expression-region": ({"region_key": "3 OR 1=1"}, "SELECT count(*) AS n FROM crm.nation", 0),
    "bool-region": ({"region_key": True}, "SELECT count(*) AS n FROM crm.nation", 0),
    "array-region": ({"region_key": [3, 1]}, "SELECT count(*) AS n FROM crm.nation", 0),
}


@pytest.mark.parametrize("idp_server", ["HS256"], indirect=True)
@pytest.mark.parametrize("case", list(INJECTIONS))
def test_jwt_claim_injection(idp_server, case):
    srv, idp = idp_server
    over, sql, n = INJECTIONS[case]
    assert _as(srv, idp.token(jwt_claims(**over)), sql).to_pylist() == [{"n": n}]


@pytest.mark.parametrize("idp_server", ["HS256"], indirect=True)
def test_jwt_missing_attribute_makes_forbid_true(idp_server):
    srv, idp = idp_server
    assert _as(srv, idp.token(jwt_claims(region_key=3)), "SELECT count(*) AS n FROM crm.region").to_pylist() == \
        [{"n": 5}]
    no_region = idp.token(jwt_claims(region_key=None))
    client = flight_client(srv.uri, bearer=no_region)
    try:
        with pytest.raises(FLIGHT_ERRORS) as ei:
            flight_sql_query(client, "SELECT count(*) AS n FROM crm.region")
        assert flight_grpc_code(ei.value) == "NOT_FOUND", describe_exc(ei.value)
        assert flight_sql_query(client, "SELECT count(*) AS n FROM crm.nation").to_pylist() == [{"n": 0}]
    finally:
        client.close()


@pytest.mark.parametrize("idp_server", ["HS256"], indirect=True)
@pytest.mark.parametrize("groups", [None, [], ["analyst-ish"]], ids=["absent", "empty", "other"])
def test_jwt_without_the_group_sees_nothing(idp_server, groups):
    """No `analyst` group in the token: no permit, so the product does not exist for it."""
    srv, idp = idp_server
    token = idp.token(jwt_claims(groups=groups) if groups is not None else
                      {k: v for k, v in jwt_claims().items() if k != "groups"})
    client = flight_client(srv.uri, bearer=token)
    try:
        with pytest.raises(FLIGHT_ERRORS) as ei:
            flight_sql_query(client, "SELECT count(*) AS n FROM crm.customer")
        assert flight_grpc_code(ei.value) in ("NOT_FOUND", "UNAUTHENTICATED"), describe_exc(ei.value)
    finally:
        client.close()
