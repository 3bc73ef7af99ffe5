"""Helpers of the point-in-time tests (test_point_in_time.py, test_point_in_time_tpch.py):
the SQL of a `point_in_time(...)` call (`pit`), and the same join computed by DuckDB
with ASOF LEFT JOIN (`asof`), written from the semantics (docs/ml.md), not from
meshgate's plan: per feature product, rows with the same keys and event time are first
reduced to the one with the latest created_at; then ASOF LEFT JOIN picks, per entity
row, the row with the greatest event time <= the entity's; a TTL turns a picked row
older than the entity's time minus the TTL into NULLs; a static product (no event time)
is a plain LEFT JOIN on its row per key with the latest created_at."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import govmodel
from mgtest import DUCKDB_SOURCES, Rows, flight_sql_query


def pit(entities: str, event_time: str, features: list[str], ttl: str | None = None) -> str:
    """The SQL of a point_in_time call (string arguments quoted for SQL)."""
    args = [entities, event_time, ", ".join(features)] + ([ttl] if ttl is not None else [])
    return "SELECT * FROM point_in_time(" + ", ".join("'" + a.replace("'", "''") + "'" for a in args) + ")"


def source(product: str) -> str:
    return DUCKDB_SOURCES[product]


def raw(sql: str) -> list[tuple]:
    """A query over the demo files (mgtest.DUCKDB_SOURCES names), for picking test data."""
    con = duckdb.connect()
    try:
        for name, src in DUCKDB_SOURCES.items():
            sql = sql.replace(f"{{{name}}}", src)
        return [tuple(r) for r in con.execute(sql).fetchall()]
    finally:
        con.close()


def shards(n: int) -> flight.FlightCallOptions:
    return flight.FlightCallOptions(headers=[(b"x-meshgate-shards", str(n).encode())])


def query_error(client: flight.FlightClient, sql: str) -> BaseException:
    with pytest.raises((flight.FlightError, pa.ArrowException)) as caught:
        flight_sql_query(client, sql)
    return caught.value


@dataclass
class Feature:
    """One feature product as DuckDB reads it."""

    source: str  # a DuckDB relation: read_parquet(...) or a (SELECT ...) view
    keys: list[str]
    event_time: str | None  # None: static
    created_at: str | None
    columns: list[str]  # feature columns, in the order asked
    ttl: str | None = None  # a DuckDB interval literal, e.g. '30 days'
    names: list[str] | None = None  # result names (default: the column names)


CUSTOMER_FEATURES = dict(keys=["c_custkey"], event_time="feature_date", created_at="created_at")


def asof(entities: str, event_time: str, features: list[Feature]) -> Rows:
    """The point-in-time join of `entities` (DuckDB SQL) computed with ASOF LEFT JOIN."""
    sql = f"SELECT * FROM ({entities})"
    for f in features:
        names = f.names or f.columns
        wanted = list(dict.fromkeys(f.keys + ([f.event_time] if f.event_time else []) + f.columns))
        latest = f"SELECT {', '.join(wanted)} FROM {f.source}"
        if f.created_at:  # per key and event time; a static product: per key
            latest += (f" QUALIFY row_number() OVER (PARTITION BY {', '.join(f.keys + [f.event_time or f.keys[0]])} "
                       f"ORDER BY {f.created_at} DESC) = 1")
        on = " AND ".join(f"__e.{k} = __f.{k}" for k in f.keys)
        if f.event_time is None:
            join = "LEFT JOIN"
            fresh = "true"
        else:
            join = "ASOF LEFT JOIN"
            on += f" AND __e.{event_time} >= __f.{f.event_time}"
            fresh = f"__f.{f.event_time} >= __e.{event_time} - INTERVAL '{f.ttl}'" if f.ttl else "true"
        picked = ", ".join(f"CASE WHEN {fresh} THEN __f.{c} END AS {n}" for c, n in zip(f.columns, names))
        sql = f"SELECT __e.*, {picked} FROM ({sql}) AS __e {join} ({latest}) AS __f ON {on}"
    con = govmodel.connect()  # with the keyed_hash masks, for governed views
    try:
        con.execute("SET TimeZone = 'UTC'")
        cur = con.execute(sql)
        return Rows([d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()])
    finally:
        con.close()
