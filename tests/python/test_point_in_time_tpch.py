"""Point-in-time joins on TPC-H-derived feature products, in a temporary mesh of the
demo's orders and lineitem and two feature products computed here from them with DuckDB:
features.customer_daily (per customer and ship day, the 30 days up to it; a timestamp
event time, four files), features.customer_returns (per customer and receipt day, the
90 days up to it; a date event time, ties broken by computed_at, two files), the
static features.customer_profile (a row per customer and year, the latest applies) and
features.customer_modes (two entity keys, rows with NULL keys and times). Checked
against DuckDB's ASOF LEFT JOIN (pitkit.asof) with order dates and order times as
entity times, day and sub-day TTLs, both products at once with their own TTLs, and as
shards."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from mgtest import (
    DATA,
    Rows,
    assert_same_rows,
    cmd_statement_query,
    flight_client,
    flight_sql_query,
    with_open_governance,
    write_yaml,
)
from pitkit import Feature, asof, pit, shards, source


# Per customer and ship day, over the 30 days up to that day (the day included): the
# quantity, extended price and number of lines shipped; available at 18:00 that day.
DAILY_SQL = """
WITH lines AS (
    SELECT o.o_custkey AS c_custkey, l.l_shipdate AS day, l.l_quantity, l.l_extendedprice
    FROM {lineitem} l JOIN {orders} o ON l.l_orderkey = o.o_orderkey
), daily AS (
    SELECT c_custkey, day, sum(l_quantity) AS q, sum(l_extendedprice) AS p, count(*) AS n FROM lines GROUP BY ALL
)
SELECT c_custkey, CAST(day AS TIMESTAMP) + INTERVAL 18 HOUR AS as_of,
       CAST(sum(q) OVER w AS DECIMAL(15, 2)) AS qty_30d,
       CAST(sum(p) OVER w AS DECIMAL(15, 2)) AS price_30d,
       sum(n) OVER w AS lines_30d
FROM daily
WINDOW w AS (PARTITION BY c_custkey ORDER BY day RANGE BETWEEN INTERVAL 29 DAYS PRECEDING AND CURRENT ROW)
"""
DAILY_SCHEMA = pa.schema([
    pa.field("c_custkey", pa.int64(), nullable=False),
    pa.field("as_of", pa.timestamp("us"), nullable=False),
    pa.field("qty_30d", pa.decimal128(15, 2)),
    pa.field("price_30d", pa.decimal128(15, 2)),
    pa.field("lines_30d", pa.int64()),
])
DAILY_COLUMNS = ["qty_30d", "price_30d", "lines_30d"]

# Per customer and receipt day, over the 90 days up to that day: the lines returned and
# their value, computed the next day at 01:00; every 50th or so (by key and day) computed
# again at 05:00 with other values, so rows of one customer and day tie.
RETURNS_SQL = """
WITH d AS (
    SELECT o.o_custkey AS c_custkey, l.l_receiptdate AS day, count(*) AS n, sum(l.l_extendedprice) AS v
    FROM {lineitem} l JOIN {orders} o ON l.l_orderkey = o.o_orderkey WHERE l.l_returnflag = 'R' GROUP BY ALL
), w AS (
    SELECT c_custkey, day, sum(n) OVER w AS returned_lines_90d,
           CAST(sum(v) OVER w AS DECIMAL(15, 2)) AS returned_value_90d
    FROM d WINDOW w AS (PARTITION BY c_custkey ORDER BY day RANGE BETWEEN INTERVAL 89 DAYS PRECEDING AND CURRENT ROW)
)
SELECT c_custkey, day, CAST(day AS TIMESTAMP) + INTERVAL 25 HOUR AS computed_at, returned_lines_90d, returned_value_90d
FROM w
UNION ALL
SELECT c_custkey, day, CAST(day AS TIMESTAMP) + INTERVAL 29 HOUR, returned_lines_90d + 100, NULL
FROM w WHERE (c_custkey + (day - DATE '1992-01-01')) % 50 = 0
"""
RETURNS_SCHEMA = pa.schema([
    pa.field("c_custkey", pa.int64(), nullable=False),
    pa.field("day", pa.date32(), nullable=False),
    pa.field("computed_at", pa.timestamp("us"), nullable=False),
    pa.field("returned_lines_90d", pa.int64()),
    pa.field("returned_value_90d", pa.decimal128(15, 2)),
])
RETURNS_COLUMNS = ["returned_lines_90d", "returned_value_90d"]

# A static product: per customer and ship year, the lines shipped that year, updated on
# the year's last day; the latest update is the customer's row at any time.
PROFILE_SQL = """
SELECT o.o_custkey AS c_custkey, make_timestamp(year(l.l_shipdate), 12, 31, 23, 0, 0) AS updated_at,
       count(*) AS lines_in_year, max(l.l_shipmode) AS last_mode
FROM {lineitem} l JOIN {orders} o ON l.l_orderkey = o.o_orderkey GROUP BY ALL
"""
PROFILE_SCHEMA = pa.schema([
    pa.field("c_custkey", pa.int64(), nullable=False),
    pa.field("updated_at", pa.timestamp("us"), nullable=False),
    pa.field("lines_in_year", pa.int64()),
    pa.field("last_mode", pa.string()),
])
PROFILE_COLUMNS = ["lines_in_year", "last_mode"]

# Two entity keys (customer and ship mode): per customer, mode and ship day, the lines
# and quantity of the 60 days up to it; plus rows that can never apply (a NULL key, and
# a NULL event time with values no real row has).
MODES_SQL = """
WITH d AS (
    SELECT o.o_custkey AS c_custkey, l.l_shipmode, l.l_shipdate AS day, count(*) AS n, sum(l.l_quantity) AS q
    FROM {lineitem} l JOIN {orders} o ON l.l_orderkey = o.o_orderkey GROUP BY ALL
)
SELECT c_custkey, l_shipmode, day, sum(n) OVER w AS mode_lines_60d,
       CAST(sum(q) OVER w AS DECIMAL(15, 2)) AS mode_qty_60d
FROM d
WINDOW w AS (PARTITION BY c_custkey, l_shipmode ORDER BY day RANGE BETWEEN INTERVAL 59 DAYS PRECEDING AND CURRENT ROW)
UNION ALL SELECT NULL, 'AIR', DATE '1995-01-01', 999, 999
UNION ALL SELECT DISTINCT c_custkey, l_shipmode, NULL, 999, 999 FROM d WHERE c_custkey % 97 = 1
"""
MODES_SCHEMA = pa.schema([
    pa.field("c_custkey", pa.int64()),
    pa.field("l_shipmode", pa.string()),
    pa.field("day", pa.date32()),
    pa.field("mode_lines_60d", pa.int64()),
    pa.field("mode_qty_60d", pa.decimal128(15, 2)),
])
MODES_COLUMNS = ["mode_lines_60d", "mode_qty_60d"]
LINES_AS_ENTITIES = ("SELECT l.l_orderkey, l.l_linenumber, o.o_custkey AS c_custkey, l.l_shipmode, "
                     "l.l_commitdate AS at FROM {lineitem} l JOIN {orders} o ON l.l_orderkey = o.o_orderkey")


def write_features(folder: Path, sql: str, schema: pa.Schema, files: int) -> None:
    """`sql` over the demo's lineitem and orders, computed by DuckDB, as Parquet files
    in `folder` (customers split by key modulo `files`)."""
    folder.mkdir()
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        relation = con.sql(sql.format(lineitem=source("sales.lineitem"), orders=source("sales.orders")))
        table = relation.to_arrow_table().cast(schema)
    finally:
        con.close()
    table = table.sort_by([(schema.names[0], "ascending"), (schema.names[1], "ascending")])
    keys = table.column(schema.names[0]).to_pylist()
    for part in range(files):
        rows = table.filter(pa.array([(k or 0) % files == part for k in keys]))
        assert rows.num_rows > 0
        pq.write_table(rows, folder / f"part-{part}.parquet", row_group_size=4_000)


@pytest.fixture(scope="module")
def tpch(start_server, tmp_path_factory):
    """A mesh of the demo's orders and lineitem, and two feature products written here
    from them: features.customer_daily (four files, a timestamp event time) and
    features.customer_returns (two files, a date event time, ties broken by
    computed_at)."""
    root = tmp_path_factory.mktemp("pit-tpch")
    folder = root / "customer_daily"
    write_features(folder, DAILY_SQL, DAILY_SCHEMA, 4)
    returns = root / "customer_returns"
    write_features(returns, RETURNS_SQL, RETURNS_SCHEMA, 2)
    profile = root / "customer_profile"
    write_features(profile, PROFILE_SQL, PROFILE_SCHEMA, 1)
    modes = root / "customer_modes"
    write_features(modes, MODES_SQL, MODES_SCHEMA, 1)
    mesh = with_open_governance({
        "catalog": "mesh",
        "domains": {
            "sales": {"owner": "sales-data@corp.example", "products": [
                {"name": "orders", "location": str(DATA / "sales" / "orders") + "/", "format": "parquet",
                 "partitions": [{"name": "o_year", "type": "int32"}]},
                {"name": "lineitem", "location": str(DATA / "sales" / "lineitem") + "/", "format": "parquet"},
            ]},
            "features": {"owner": "ml@corp.example", "products": [
                {"name": "customer_daily", "location": str(folder) + "/", "format": "parquet",
                 "description": "What each customer had shipped in the 30 days up to a day, from sales.lineitem",
                 "schema": [
                     {"name": "c_custkey", "type": "int64", "nullable": False, "role": "entity_key"},
                     {"name": "as_of", "type": "timestamp", "nullable": False, "role": "event_time"},
                     {"name": "qty_30d", "type": "decimal(15, 2)", "role": "feature"},
                     {"name": "price_30d", "type": "decimal(15, 2)", "role": "feature"},
                     {"name": "lines_30d", "type": "int64", "role": "feature"},
                 ]},
                {"name": "customer_profile", "location": str(profile) + "/", "format": "parquet",
                 "description": "Lines each customer had shipped per year, updated at the year's end",
                 "schema": [
                     {"name": "c_custkey", "type": "int64", "nullable": False, "role": "entity_key"},
                     {"name": "updated_at", "type": "timestamp", "nullable": False, "role": "created_at"},
                     {"name": "lines_in_year", "type": "int64", "role": "feature"},
                     {"name": "last_mode", "type": "utf8", "role": "feature"},
                 ]},
                {"name": "customer_modes", "location": str(modes) + "/", "format": "parquet",
                 "description": "Lines and quantity each customer had shipped by each mode in 60 days",
                 "schema": [
                     {"name": "c_custkey", "type": "int64", "role": "entity_key"},
                     {"name": "l_shipmode", "type": "utf8", "role": "entity_key"},
                     {"name": "day", "type": "date32", "role": "event_time"},
                     {"name": "mode_lines_60d", "type": "int64", "role": "feature"},
                     {"name": "mode_qty_60d", "type": "decimal(15, 2)", "role": "feature"},
                 ]},
                {"name": "customer_returns", "location": str(returns) + "/", "format": "parquet",
                 "description": "What each customer returned in the 90 days up to a day, from sales.lineitem",
                 "schema": [
                     {"name": "c_custkey", "type": "int64", "nullable": False, "role": "entity_key"},
                     {"name": "day", "type": "date32", "nullable": False, "role": "event_time"},
                     {"name": "computed_at", "type": "timestamp", "nullable": False, "role": "created_at"},
                     {"name": "returned_lines_90d", "type": "int64", "role": "feature"},
                     {"name": "returned_value_90d", "type": "decimal(15, 2)", "role": "feature"},
                 ]},
            ]},
        },
    })
    srv = start_server(write_yaml(root / "mesh.yaml", mesh), name="pit-tpch")
    client = flight_client(srv.uri)
    yield client, str(folder), str(returns), str(profile), str(modes)
    client.close()
    srv.stop(check=True)


def daily(folder: str, ttl: str | None = None) -> Feature:
    return Feature(f"read_parquet('{folder}/*.parquet')", ["c_custkey"], "as_of", None, list(DAILY_COLUMNS), ttl)


def profile_of(folder: str) -> Feature:
    return Feature(f"read_parquet('{folder}/*.parquet')", ["c_custkey"], None, "updated_at", list(PROFILE_COLUMNS))


def returned(folder: str, ttl: str | None = None) -> Feature:
    return Feature(f"read_parquet('{folder}/*.parquet')", ["c_custkey"], "day", "computed_at", list(RETURNS_COLUMNS),
                   ttl)


TPCH_ENTITIES = {
    # order dates (midnight) against 18:00 features: a day's shipments count from the next day
    "dates": ("SELECT o_orderkey, o_custkey AS c_custkey, o_orderdate AS at FROM {orders}"),
    # order times in the afternoon
    "times": ("SELECT o_orderkey, o_custkey AS c_custkey, CAST(o_orderdate AS TIMESTAMP) + INTERVAL '20 hours' AS at "
              "FROM {orders}"),
}


# Features are at 18:00: for orders at midnight the newest is at least 6 hours old (none
# within 3 hours), for orders at 20:00 those of the day are 2 hours old.
TPCH_TTLS = [None, "30 days", "3 weeks", "36 hours", "180 minutes"]


@pytest.mark.parametrize("ttl", TPCH_TTLS)
@pytest.mark.parametrize("entities", sorted(TPCH_ENTITIES))
def test_tpch_daily_features_match_duckdb_asof(tpch, entities, ttl):
    client, folder, _, _, _ = tpch
    template = TPCH_ENTITIES[entities]
    sql = pit(template.replace("{orders}", "sales.orders"), "at",
              [f"features.customer_daily.{c}" for c in DAILY_COLUMNS], ttl)
    got = flight_sql_query(client, sql)
    assert got.column_names == ["o_orderkey", "c_custkey", "at"] + DAILY_COLUMNS
    expected = asof(template.replace("{orders}", source("sales.orders")), "at", [daily(folder, ttl)])
    assert_same_rows(got, expected)
    found = sum(r[3] is not None for r in expected.rows)
    if (entities, ttl) == ("dates", "180 minutes"):
        assert found == 0
    else:
        assert found > 100, found


TWO_PRODUCTS_TTL = "features.customer_daily=30 days; features.customer_returns=90 days"


def two_products_sql() -> str:
    features = [f"features.customer_daily.{c}" for c in DAILY_COLUMNS]
    features += [f"features.customer_returns.{c}" for c in RETURNS_COLUMNS]
    return pit(TPCH_ENTITIES["dates"].replace("{orders}", "sales.orders"), "at", features, TWO_PRODUCTS_TTL)


def two_products_expected(daily_folder: str, returns_folder: str) -> Rows:
    return asof(TPCH_ENTITIES["dates"].replace("{orders}", source("sales.orders")), "at",
                [daily(daily_folder, "30 days"), returned(returns_folder, "90 days")])


def test_tpch_two_feature_products_with_their_own_ttls_and_ties(tpch):
    client, folder, returns, _, _ = tpch
    got = flight_sql_query(client, two_products_sql())
    assert got.column_names == ["o_orderkey", "c_custkey", "at"] + DAILY_COLUMNS + RETURNS_COLUMNS
    expected = two_products_expected(folder, returns)
    assert_same_rows(got, expected)
    # the recomputed rows (100 more lines, no value) are picked where they apply
    recomputed = [r for r in expected.rows if r[6] is not None and r[6] > 100]
    assert recomputed and all(r[7] is None for r in recomputed)
    assert sum(r[6] is not None for r in expected.rows) > 1_000


def test_tpch_a_static_product_gives_each_key_its_latest_row(tpch):
    """Without an event time, the row per key with the latest created_at applies at any
    time, even before it was created; the TTL does not apply to it."""
    client, folder, _, profile, _ = tpch
    features = [f"features.customer_profile.{c}" for c in PROFILE_COLUMNS] + ["features.customer_daily.qty_30d"]
    got = flight_sql_query(client, pit(TPCH_ENTITIES["dates"].replace("{orders}", "sales.orders"), "at", features,
                                       "30 days"))
    assert got.column_names == ["o_orderkey", "c_custkey", "at"] + PROFILE_COLUMNS + ["qty_30d"]
    expected = asof(TPCH_ENTITIES["dates"].replace("{orders}", source("sales.orders")), "at",
                    [profile_of(profile), Feature(daily(folder).source, ["c_custkey"], "as_of", None, ["qty_30d"],
                                                  "30 days")])
    assert_same_rows(got, expected)
    assert all(r[3] is not None for r in expected.rows), "every customer who ordered has a profile"
    assert len({r[3] for r in expected.rows}) > 10  # each customer's last year's count, not one constant


def test_tpch_shards_make_the_result(tpch):
    client, folder, returns, _, _ = tpch
    sql = two_products_sql()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)), shards(5))
    assert len(info.endpoints) == 5
    union = pa.concat_tables([client.do_get(e.ticket, shards(5)).read_all() for e in info.endpoints])
    keys = union.column("o_orderkey").to_pylist()
    assert len(keys) == len(set(keys)) == 15_000
    assert_same_rows(union, two_products_expected(folder, returns))


def test_tpch_two_entity_keys(tpch):
    """A product keyed by customer and ship mode, for every line item (entities from a
    join of two products); its rows with a NULL key or a NULL event time never apply."""
    client, _, _, _, modes = tpch
    features = [f"features.customer_modes.{c}" for c in MODES_COLUMNS]
    sql = pit(LINES_AS_ENTITIES.format(lineitem="sales.lineitem", orders="sales.orders"), "at", features, "45 days")
    got = flight_sql_query(client, sql)
    assert got.column_names == ["l_orderkey", "l_linenumber", "c_custkey", "l_shipmode", "at"] + MODES_COLUMNS
    entities = LINES_AS_ENTITIES.format(lineitem=source("sales.lineitem"), orders=source("sales.orders"))
    expected = asof(entities, "at", [Feature(f"read_parquet('{modes}/*.parquet')", ["c_custkey", "l_shipmode"], "day",
                                             None, list(MODES_COLUMNS), "45 days")])
    assert_same_rows(got, expected)
    found = [r[5] for r in expected.rows if r[5] is not None]
    assert len(expected.rows) == 60_125 and len(found) > 1_000 and 999 not in found
    # as shards: the entities' driving product is lineitem, named first
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)), shards(3))
    assert len(info.endpoints) == 3
    parts = [client.do_get(e.ticket, shards(3)).read_all() for e in info.endpoints]
    assert sum(1 for p in parts if p.num_rows) >= 2
    assert_same_rows(pa.concat_tables(parts), expected)
