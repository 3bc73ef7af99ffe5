"""Shared pieces of the governance attack suite (test_attacks.py, test_attacks_sidedoors.py).

- `attack_mesh(root)`: the demo mesh (its users and policies) plus an HS256 JWT identity
  provider, written with absolute paths; conftest's `attack_server` serves it in six
  configurations (parquet filter pushdown on/off x target partitions 1/4, every product
  accelerated, and a gateway spreading queries over three workers).
- hidden values picked from the raw files: keys, prices and e-mails of rows the attacking
  principal must not see, used as oracles;
- `Case` and `run_case`: one attack, its principal, and what must come back — the
  governed result computed by govmodel (DuckDB over the raw files), or an error that
  reveals nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import jwt
import pyarrow as pa

import govmodel
from mgtest import (
    DATA,
    ClientPool,
    Rows,
    assert_fails_alike,
    assert_same_rows,
    describe_exc,
    demo_mesh_doc,
    flight_grpc_code,
    table_rows,
    values_equal,
    write_yaml,
)

JWT_SECRET = "attack-suite-idp-secret-0123456789abcdef"
JWT_ENV = {"MESHGATE_ATTACK_IDP_SECRET": JWT_SECRET}
ISSUER = "https://idp.attack.example"
AUDIENCE = "meshgate"

# (parquet filter pushdown, target partitions, every product accelerated, spread over
# three distributed workers)
CONFIGS = [
    (False, 1, False, False),
    (False, 4, False, False),
    (True, 1, False, False),
    (True, 4, False, False),
    (False, 4, True, False),
    (False, 2, False, True),
]


def config_id(cfg) -> str:
    return (f"{'pushdown' if cfg[0] else 'nopushdown'}-tp{cfg[1]}" + ("-accelerated" if cfg[2] else "")
            + ("-distributed" if cfg[3] else ""))


def serve_args(cfg) -> list[str]:
    return ["--target-partitions", str(cfg[1])] + (["--parquet-pushdown-filters"] if cfg[0] else [])


def attack_mesh(root, accelerated: bool = False) -> str:
    """The demo mesh with a JWT identity provider; with `accelerated`, every product is
    held in memory and served from there (the mesh-wide acceleration default)."""
    doc = demo_mesh_doc()
    if accelerated:
        doc["acceleration"] = {"default": {"engine": "memory", "refresh": "manual"}}
    doc["auth"]["jwt"] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "algorithms": ["HS256"],
        "secret_env": "MESHGATE_ATTACK_IDP_SECRET",
        "claims": {"name": "sub", "groups": "groups", "attributes": {"region_key": "region_key", "segment": "segment"}},
    }
    return write_yaml(root / "attack-mesh.yaml", doc)


def jwt_token(*, key: str = JWT_SECRET, algorithm: str = "HS256", **over) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "jules", "groups": ["analyst"], "segment": "BUILDING",
              "region_key": 3, "iat": now, "exp": now + 600}
    claims.update(over)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=algorithm)


# -- hidden values (from the raw files) --------------------------------------------------


def _one(sql: str):
    return govmodel.raw(sql).rows[0][0]


# a customer neither ana (BUILDING) nor sam (AUTOMOBILE) sees
HIDDEN_CUSTKEY = _one("SELECT min(c_custkey) FROM customers.customer WHERE c_mktsegment NOT IN ('BUILDING', 'AUTOMOBILE')")
VISIBLE_CUSTKEY = _one("SELECT min(c_custkey) FROM customers.customer WHERE c_mktsegment = 'BUILDING'")
# orders carl does not see: urgent in 1997 (restrictive filter), and from 1995 (permissive)
HIDDEN_URGENT_ORDER = _one("SELECT min(o_orderkey) FROM sales.orders "
                           "WHERE o_orderdate >= DATE '1997-01-01' AND o_orderpriority = '1-URGENT'")
HIDDEN_OLD_ORDER = _one("SELECT min(o_orderkey) FROM sales.orders WHERE o_orderdate < DATE '1997-01-01'")
HIDDEN_PRICE = _one(f"SELECT o_totalprice FROM sales.orders WHERE o_orderkey = {HIDDEN_URGENT_ORDER}")
VISIBLE_EMAILS = [r[0] for r in govmodel.raw(
    "SELECT c_email FROM customers.customer WHERE c_mktsegment = 'BUILDING' ORDER BY c_custkey").rows]
VISIBLE_PRICES = [r[0] for r in govmodel.raw(
    "SELECT o_totalprice FROM sales.orders WHERE o_orderdate >= DATE '1997-01-01' "
    "AND o_orderpriority <> '1-URGENT' ORDER BY o_orderkey LIMIT 300").rows]
assert HIDDEN_PRICE % 10000 != 0  # never equal to one of carl's bucketed prices

# text no error may contain: file locations, raw personal data
LEAKS = [str(DATA), ".parquet", "@example.com", "testdata/"]


def values_list(values, name: str) -> str:
    """`(VALUES (...), ...) AS v(name)` for a list of literals."""
    def lit(v):
        return "'" + v.replace("'", "''") + "'" if isinstance(v, str) else str(v)

    return "(VALUES " + ", ".join(f"({lit(v)})" for v in values) + f") AS v({name})"


# -- cases -------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    user: str
    sql: str
    expect: str = "same"  # same | ordered | error | alike | check
    model: str | None = None  # the query govmodel runs instead (DuckDB semantics differ)
    codes: tuple = ("INVALID_ARGUMENT",)  # for "error"
    unknown: tuple | None = None  # for "alike": (hidden name, unknown sql, unknown name)
    check: Callable | None = None  # for "check": check(pool, case)
    leaks: list | None = None  # what the error must not contain (default LEAKS)


def assert_ordered_rows(actual: Rows, expected: Rows) -> None:
    assert actual.names == expected.names, (actual.names, expected.names)
    assert len(actual.rows) == len(expected.rows), (len(actual.rows), len(expected.rows))
    for i, (a, e) in enumerate(zip(actual.rows, expected.rows)):
        assert all(values_equal(x, y) for x, y in zip(a, e)), f"row {i}: got {a}, expected {e}"


def assert_no_leak(err: BaseException, leaks=None) -> None:
    text = str(err)
    for needle in LEAKS if leaks is None else leaks:
        assert needle not in text, f"error reveals {needle!r}: {describe_exc(err)}"


def run_case(pool: ClientPool, case: Case) -> None:
    if case.expect in ("same", "ordered"):
        got = table_rows(pool.query(case.user, case.sql))
        expected = govmodel.expected(case.user, case.model or case.sql)
        if case.expect == "same":
            assert_same_rows(got, expected)
        else:
            assert_ordered_rows(got, expected)
    elif case.expect == "error":
        err = pool.error(case.user, case.sql)
        assert flight_grpc_code(err) in case.codes, describe_exc(err)
        assert_no_leak(err, case.leaks)
    elif case.expect == "alike":
        hidden_name, unknown_sql, unknown_name = case.unknown
        hidden = pool.error(case.user, case.sql)
        unknown = pool.error(case.user, unknown_sql)
        assert_fails_alike(hidden, hidden_name, unknown, unknown_name)
        assert_no_leak(hidden)
    elif case.expect == "check":
        case.check(pool, case)
    else:  # pragma: no cover
        raise ValueError(case.expect)
    # whatever happened, the server still answers this principal correctly
    check = "SELECT count(*) AS n FROM sales.orders"
    assert pool.query(case.user, check).column("n").to_pylist() == [govmodel.scalar(case.user, check)]


def error_or(check: Callable[[pa.Table], None]) -> Callable:
    """A check for statements that may be refused; if they run, `check(table)` must hold."""
    def run(pool, case):
        try:
            t = pool.query(case.user, case.sql)
        except Exception as err:  # noqa: BLE001 - any refusal is fine, as long as it says nothing
            assert flight_grpc_code(err) in ("INVALID_ARGUMENT", "NOT_FOUND", "UNIMPLEMENTED",
                                             "PERMISSION_DENIED"), describe_exc(err)
            assert_no_leak(err)
            return
        check(t)

    return run


def ids(cases) -> list[str]:
    seen = set()
    for c in cases:
        assert c.id not in seen, c.id
        seen.add(c.id)
    return [c.id for c in cases]

