"""The tests' own model of the demo mesh's policies, used to compute expectations.

The policies in testdata/policies/mesh-wide.yaml and testdata/domains/*/policies/*.yaml
are transcribed here by hand, from docs/governance.md's semantics, into DuckDB SQL over
the raw files: one governed view per (principal, product) = raw rows, the row filter,
then the column masks, minus denied columns. `expected(principal, sql)` runs a query
with DuckDB after replacing each `domain.product` by that principal's governed view, so
an expectation never comes from meshgate itself. `listed_schemas` / `listed_tables` are
what a principal's metadata listings show: the products they read, their domains, and
the system tables every principal is listed (mgtest.SYSTEM_SCHEMA, SYSTEM_TABLES).

keyed_hash is HMAC-SHA256 (hex) of the value as text, keyed with the domain's secret
(MESHGATE_MASK_KEY_<DOMAIN>); `MASK_KEYS` holds the secrets the tests start servers with.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

import duckdb

from mgtest import DUCKDB_SOURCES, Rows, with_system_schema, with_system_tables

# the per-domain keyed_hash secrets tests start servers with (env MESHGATE_MASK_KEY_<DOMAIN>)
MASK_KEYS = {"customers": "customers-test-mask-key-0123456789", "sales": "sales-test-key", "supply": "supply-test-key"}
MASK_ENV = {f"MESHGATE_MASK_KEY_{d.upper()}": k for d, k in MASK_KEYS.items()}


def keyed_hash(key: str, value: Any) -> str | None:
    """hex(HMAC-SHA256(key, value as text)); NULL stays NULL."""
    if value is None:
        return None
    return hmac.new(key.encode(), str(value).encode(), hashlib.sha256).hexdigest()


def show_first(value: str | None, n: int) -> str | None:
    if value is None:
        return None
    return value[:n] + "*" * max(len(value) - n, 0)


def show_last(value: str | None, n: int) -> str | None:
    if value is None:
        return None
    return "*" * max(len(value) - n, 0) + value[max(len(value) - n, 0):]


@dataclass(frozen=True)
class Principal:
    name: str
    groups: frozenset = field(default_factory=frozenset)
    attributes: tuple = ()  # ((name, value), ...) — typed; missing attributes are absent

    def attr(self, name: str) -> Any:
        return dict(self.attributes).get(name)

    def has(self, group: str) -> bool:
        return group in self.groups


def principal(name: str, groups=(), **attributes) -> Principal:
    return Principal(name, frozenset(groups), tuple(sorted(attributes.items())))


DEMO = {
    "ana": principal("ana", ["analyst"], region_key=3, segment="BUILDING"),
    "sam": principal("sam", ["analyst", "data_scientist", "pii_reader"], region_key=1, segment="AUTOMOBILE"),
    "carl": principal("carl", ["contractor"], region_key=3),
    "stella": principal("stella", ["steward"]),
}


def _lit(v: Any) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def _show_last_sql(col: str, n: int) -> str:
    return f"repeat('*', greatest(length({col}) - {n}, 0)) || right({col}, {n})"


def _show_first_sql(col: str, n: int) -> str:
    return f"left({col}, {n}) || repeat('*', greatest(length({col}) - {n}, 0))"


def _hash_sql(col: str, domain: str) -> str:
    return f"mg_hash_{domain}(CAST({col} AS VARCHAR))"


# -- the demo policies, transcribed -----------------------------------------------------

def _readable(p: Principal, domain: str, product: str) -> bool:
    readers = p.has("analyst") or p.has("steward")  # mesh-wide `readers`
    permit = readers or (domain, product) == ("sales", "orders") and p.has("contractor")
    forbid = p.has("contractor") and (domain, product) == ("customers", "customer")  # pii columns
    return permit and not forbid


def _row_filter(p: Principal, domain: str, product: str) -> str:
    """(OR of applicable permissive filters) AND (AND of applicable restrictive ones)."""
    permissive: list[str] = []
    restrictive: list[str] = []
    if p.has("steward"):
        permissive.append("true")
    if domain == "sales":
        if p.has("analyst"):
            permissive.append("true")
        if product == "orders" and p.has("contractor"):
            permissive.append("o_orderdate >= DATE '1997-01-01'")
            restrictive.append("o_orderpriority <> '1-URGENT'")
    elif (domain, product) == ("customers", "customer"):
        seg = p.attr("segment")
        permissive.append(f"c_mktsegment = {_lit(seg)}" if seg is not None else "false")
    elif (domain, product) == ("customers", "nation"):
        rk = p.attr("region_key")
        permissive.append(f"n_regionkey = {_lit(rk)}" if rk is not None else "false")
    elif domain == "customers" or domain == "supply":
        permissive.append("true")
    allow = "(" + " OR ".join(f"COALESCE({f}, false)" for f in permissive) + ")" if permissive else "false"
    return " AND ".join([allow] + [f"COALESCE({f}, false)" for f in restrictive])


# product -> declared column order (schema, then partitions)
COLUMNS = {
    ("sales", "orders"): ["o_orderkey", "o_custkey", "o_orderstatus", "o_totalprice", "o_orderdate",
                          "o_orderpriority", "o_clerk", "o_shippriority", "o_comment", "o_year"],
    ("sales", "lineitem"): ["l_orderkey", "l_partkey", "l_suppkey", "l_linenumber", "l_quantity",
                            "l_extendedprice", "l_discount", "l_tax", "l_returnflag", "l_linestatus",
                            "l_shipdate", "l_commitdate", "l_receiptdate", "l_shipinstruct", "l_shipmode",
                            "l_comment"],
    ("sales", "customer_features"): ["c_custkey", "feature_date", "created_at", "orders_90d", "spend_90d",
                                     "days_since_last_order"],
    ("customers", "customer"): ["c_custkey", "c_name", "c_address", "c_nationkey", "c_phone", "c_email",
                                "c_acctbal", "c_mktsegment", "c_comment"],
    ("customers", "nation"): ["n_nationkey", "n_name", "n_regionkey", "n_comment"],
    ("customers", "region"): ["r_regionkey", "r_name", "r_comment"],
    ("supply", "part"): ["p_partkey", "p_name", "p_mfgr", "p_brand", "p_type", "p_size", "p_container",
                         "p_retailprice", "p_comment"],
    ("supply", "partsupp"): ["ps_partkey", "ps_suppkey", "ps_availqty", "ps_supplycost", "ps_comment"],
    ("supply", "supplier"): ["s_suppkey", "s_name", "s_address", "s_nationkey", "s_phone", "s_acctbal",
                             "s_comment"],
    ("supply", "stock_movements"): ["m_movementkey", "m_partkey", "m_suppkey", "m_quantity", "m_reason", "m_date"],
}
PII = {("customers", "customer"): {"c_name", "c_address", "c_phone", "c_email"}}
ORDER_ALLOWED = {"o_orderkey", "o_custkey", "o_orderstatus", "o_totalprice", "o_orderdate", "o_orderpriority",
                 "o_clerk", "o_shippriority", "o_year"}


def _column(p: Principal, domain: str, product: str, col: str) -> str | None:
    """The SQL producing the governed column (named `col`), or None when denied."""
    steward, pii_reader = p.has("steward"), p.has("pii_reader")
    if (domain, product) == ("sales", "orders"):
        if col == "o_comment":
            return col if steward else None
        if col not in ORDER_ALLOWED:
            return None
        if col == "o_totalprice" and p.has("contractor"):
            return "CAST(floor(o_totalprice / 10000) * 10000 AS DECIMAL(15, 2))"
        if col == "o_orderdate" and p.has("contractor"):
            return "CAST(date_trunc('month', o_orderdate) AS DATE)"
        if col == "o_clerk" and not steward:
            return _show_last_sql(col, 3)
        return col
    if (domain, product) == ("sales", "customer_features"):
        if col == "spend_90d" and not (pii_reader or steward):
            return "CAST(floor(spend_90d / 10000) * 10000 AS DECIMAL(15, 2))"
        return col
    if (domain, product) == ("customers", "customer"):
        if col in PII[(domain, product)] and not (pii_reader or steward):
            return _hash_sql(col, domain)
        if col == "c_acctbal" and not (pii_reader or steward):
            return "CASE WHEN c_acctbal < 0 THEN 'overdrawn' ELSE 'in credit' END"
        if col == "c_comment" and not steward:
            return None
        return col
    if (domain, product) == ("supply", "supplier") and not steward:
        if col == "s_phone":
            return "CASE WHEN s_phone IS NULL THEN NULL ELSE '(redacted)' END"
        if col == "s_acctbal" and not pii_reader:
            return "CAST(NULL AS DOUBLE)"
        if col == "s_name":
            return _show_first_sql(col, 9)
    return col


def visible_columns(p: Principal, domain: str, product: str) -> list[str]:
    return [c for c in COLUMNS[(domain, product)] if _column(p, domain, product, c) is not None]


def readable_products(p: Principal) -> set[tuple[str, str]]:
    """The (domain, product) pairs `p` may read; every other product is hidden from them."""
    return {(d, t) for (d, t) in COLUMNS if _readable(p, d, t)}


def listed_schemas(p: Principal) -> set[str]:
    """The schemas a metadata listing shows `p`: their products' domains and the system schema."""
    return with_system_schema(d for d, _ in readable_products(p))


def listed_tables(p: Principal) -> set[tuple[str, str]]:
    """The (schema, table) pairs a metadata listing shows `p`: their products and the system tables."""
    return with_system_tables(readable_products(p))


def view_sql(p: Principal, domain: str, product: str) -> str | None:
    """DuckDB SQL for what `p` reads of the product; None when it is hidden from them."""
    if not _readable(p, domain, product):
        return None
    cols = []
    for c in COLUMNS[(domain, product)]:
        expr = _column(p, domain, product, c)
        if expr is not None:
            cols.append(f"{expr} AS {c}")
    source = DUCKDB_SOURCES[f"{domain}.{product}"]
    return f"(SELECT {', '.join(cols)} FROM {source} WHERE {_row_filter(p, domain, product)})"


_REF_RE = re.compile(r"(?<![\w.'])(?:mesh\.)?(sales|customers|supply)\.(\w+)\b(?!\.)")


def governed_sql(p: Principal, sql: str) -> str:
    """The query with every product reference replaced by `p`'s governed view."""

    def repl(m: re.Match) -> str:
        view = view_sql(p, m.group(1), m.group(2))
        if view is None:
            raise LookupError(f"{m.group(1)}.{m.group(2)} is hidden from {p.name}")
        return view

    return _REF_RE.sub(repl, sql)


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for domain, key in MASK_KEYS.items():
        con.create_function(f"mg_hash_{domain}", _hasher(key), ["VARCHAR"], "VARCHAR")
    return con


def _hasher(key: str):
    def mask(value):
        return keyed_hash(key, value)

    return mask


def expected(p: Principal | str, sql: str) -> Rows:
    """`sql` computed by DuckDB over `p`'s governed views of the raw files."""
    if isinstance(p, str):
        p = DEMO[p]
    con = connect()
    try:
        cur = con.execute(governed_sql(p, sql))
        return Rows([d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()])
    finally:
        con.close()


def raw(sql: str) -> Rows:
    """`sql` over the raw files (what a steward sees), for picking hidden values."""
    return expected(DEMO["stella"], sql)


def scalar(p: Principal | str, sql: str) -> Any:
    rows = expected(p, sql).rows
    assert len(rows) == 1 and len(rows[0]) == 1, rows
    return rows[0][0]
