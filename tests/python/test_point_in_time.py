"""Point-in-time feature joins: `SELECT * FROM point_in_time(entities, event_time,
features [, ttl])` (docs/ml.md) through the real server with pyarrow.flight and ADBC on
the demo mesh, checked against DuckDB's `ASOF LEFT JOIN` computing the same thing on the
same Parquet files (pitkit.asof).

Cases: sales.customer_features (a daily feature product with deliberate recomputations)
and the static customers.customer for every order, TTL expiry, ties broken by
created_at, missing features, shards (x-meshgate-shards), governance (masks and row
filters of the feature products apply, a forbidden product or column fails like a
missing one), errors with their gRPC codes. TPC-H-derived feature products:
test_point_in_time_tpch.py."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import govmodel
from mgtest import (
    DATA,
    DEMO_CONFIG,
    Rows,
    adbc_connect,
    adbc_grpc_code,
    assert_fails_alike,
    assert_same_rows,
    cmd_statement_query,
    flight_client,
    flight_grpc_code,
    flight_sql_query,
    server_message,
    table_rows,
)
from pitkit import Feature, asof, pit, query_error, raw, shards, source

STEWARD = "stella"
FEATURES = "sales.customer_features"
FEATURE_COLUMNS = ["orders_90d", "spend_90d", "days_since_last_order"]
ORDERS_AS_ENTITIES = "SELECT o_orderkey, o_custkey AS c_custkey, o_orderdate FROM sales.orders"
CUSTOMER_FEATURES = dict(keys=["c_custkey"], event_time="feature_date", created_at="created_at")


def demo_features(*columns: str) -> list[str]:
    return [f"{FEATURES}.{c}" for c in columns or FEATURE_COLUMNS]


def orders_entities(sql: str = "SELECT o_orderkey, o_custkey AS c_custkey, o_orderdate FROM {orders}") -> str:
    return sql.replace("{orders}", source("sales.orders"))


def customer_features(*columns: str, ttl: str | None = None, src: str | None = None) -> Feature:
    return Feature(src or source(FEATURES), columns=list(columns or FEATURE_COLUMNS), ttl=ttl, **CUSTOMER_FEATURES)


def segment(src: str | None = None) -> Feature:
    return Feature(src or source("customers.customer"), ["c_custkey"], None, None, ["c_mktsegment"])


# --------------------------------------------------------------------------------------
# servers and clients
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(start_server):
    """The demo mesh with the tests' keyed_hash secrets (so govmodel's masks hold)."""
    srv = start_server(DEMO_CONFIG, env=govmodel.MASK_ENV, name="point-in-time")
    yield srv
    srv.stop(check=True)


@pytest.fixture(scope="module")
def steward(server):
    client = flight_client(server.uri, STEWARD)
    yield client
    client.close()


# --------------------------------------------------------------------------------------
# (a) the demo mesh
# --------------------------------------------------------------------------------------

DEMO_SQL = pit(ORDERS_AS_ENTITIES, "o_orderdate", demo_features() + ["customers.customer.c_mktsegment"])


def demo_expected() -> Rows:
    return asof(orders_entities(), "o_orderdate", [customer_features(), segment()])


def test_orders_with_customer_features_match_duckdb_asof(steward):
    got = flight_sql_query(steward, DEMO_SQL)
    assert got.column_names == ["o_orderkey", "c_custkey", "o_orderdate"] + FEATURE_COLUMNS + ["c_mktsegment"]
    assert got.schema.field("spend_90d").type == pa.decimal128(15, 2)
    assert got.schema.field("days_since_last_order").type == pa.int32()
    expected = demo_expected()
    assert_same_rows(got, expected)
    # Not vacuous: most orders find features, first orders do not, every order a segment.
    rows = table_rows(got).rows
    assert len(rows) == 15_000
    with_features = sum(r[3] is not None for r in rows)
    assert 12_000 < with_features < 15_000, with_features
    assert all(r[6] is not None for r in rows)


def test_the_same_through_adbc(server):
    with adbc_connect(server.uri, user=STEWARD) as conn, conn.cursor() as cur:
        cur.execute(DEMO_SQL)
        got = cur.fetch_arrow_table()
    assert_same_rows(got, demo_expected())


def test_explain_analyze_shows_what_the_index_read_and_cost(steward):
    """A steward's EXPLAIN ANALYZE reports each as-of join's feature rows, index build
    time and lookup time (docs/ml.md)."""
    plan = flight_sql_query(steward, f"EXPLAIN ANALYZE {DEMO_SQL}").column("plan").to_pylist()
    line = next(row for row in "\n".join(plan).splitlines() if f"AsOfJoinExec: features={FEATURES}" in row)
    metrics = dict(re.findall(r"(\w+)=([^,\]]+)", line.split("metrics=[", 1)[1]))
    (rows,) = raw(f"SELECT count(*) FROM {source(FEATURES)}")[0]
    number, *unit = metrics["feature_rows"].split()
    shown = float(number) * {"": 1, "K": 1e3, "M": 1e6}["".join(unit)]
    assert abs(shown - rows) <= rows * 0.005, (metrics["feature_rows"], rows)
    assert metrics["output_rows"] == "15.00 K"
    assert "index_build_time" in metrics and "elapsed_compute" in metrics, metrics


def test_features_never_come_from_the_entity_day_or_later(steward):
    """An order's own day is summarized the next day: what an order sees is the
    customer's latest feature day before or on the order's (no leakage), computed here
    from the feature days in Python."""
    got = flight_sql_query(steward, pit(ORDERS_AS_ENTITIES, "o_orderdate", demo_features("feature_date")))
    days: dict[int, list] = {}
    for c, d in raw("SELECT c_custkey, feature_date FROM {sales.customer_features}"):
        days.setdefault(c, []).append(d)
    for _, c, day, seen in table_rows(got).rows:
        assert seen == max((d for d in days.get(c, []) if d <= day), default=None), (c, day, seen)


def test_a_product_as_entities(steward):
    """Entities named as a product: its columns, then the features; a feature whose name
    the entities already use is named <product>__<column>."""
    got = flight_sql_query(steward, pit(FEATURES, "feature_date", [f"{FEATURES}.orders_90d",
                                                                  "customers.customer.c_mktsegment"]))
    entity_columns = ["c_custkey", "feature_date", "created_at"] + FEATURE_COLUMNS
    assert got.column_names == entity_columns + ["customer_features__orders_90d", "c_mktsegment"]
    expected = asof(f"SELECT * FROM {source(FEATURES)}", "feature_date",
                    [customer_features("orders_90d", src=source(FEATURES)), segment()])
    expected.names = got.column_names
    assert_same_rows(got, expected)


def test_a_pinned_product_version_as_entities(steward):
    """sales."orders@0" (the deprecated 0.9.0: 1992's orders) named as the entities,
    with a feature of the current sales.orders (entity key o_orderkey)."""
    got = flight_sql_query(steward, pit('sales."orders@0"', "o_orderdate", ["sales.orders.o_orderpriority"]))
    v0 = f"read_parquet('{DATA}/sales/orders_v0/*.parquet')"
    feature = Feature(source("sales.orders"), ["o_orderkey"], "o_orderdate", None, ["o_orderpriority"],
                      names=["orders__o_orderpriority"])
    expected = asof(f"SELECT * FROM {v0}", "o_orderdate", [feature])
    assert got.column_names == expected.names
    assert_same_rows(got, expected)
    assert len(expected.rows) == 2319 and all(r[-1] is not None for r in expected.rows)


def test_a_feature_named_like_an_entity_column_of_a_query(steward):
    entities = "SELECT o_orderkey, o_custkey AS c_custkey, o_orderdate, 0 AS orders_90d FROM {orders}"
    got = flight_sql_query(steward, pit(entities.replace("{orders}", "sales.orders"), "o_orderdate",
                                        [f"{FEATURES}.orders_90d"]))
    assert got.column_names == ["o_orderkey", "c_custkey", "o_orderdate", "orders_90d",
                                "customer_features__orders_90d"]
    expected = asof(orders_entities(entities), "o_orderdate",
                    [customer_features("orders_90d", src=source(FEATURES))])
    expected.names = got.column_names
    assert_same_rows(got, expected)
    assert set(got.column("orders_90d").to_pylist()) == {0}


# --------------------------------------------------------------------------------------
# (b) TTL
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", ["30 days", "1 week", "2160 hours"])
def test_features_older_than_the_ttl_are_null(steward, ttl):
    got = flight_sql_query(steward, pit(ORDERS_AS_ENTITIES, "o_orderdate", demo_features(), ttl))
    expected = asof(orders_entities(), "o_orderdate", [customer_features(ttl=ttl)])
    assert_same_rows(got, expected)
    no_ttl = asof(orders_entities(), "o_orderdate", [customer_features()])
    expired = sum(r[3] is None for r in expected.rows) - sum(r[3] is None for r in no_ttl.rows)
    assert expired > 100, f"{ttl}: only {expired} rows expire"


def test_the_ttl_bound_is_inclusive(steward):
    """A feature exactly TTL old still applies; one day older does not."""
    boundary = raw("SELECT count(*) FROM {sales.orders} o JOIN {sales.customer_features} f "
                   "ON o.o_custkey = f.c_custkey AND o.o_orderdate - f.feature_date = 30")[0][0]
    assert boundary > 0, "the demo data has orders exactly 30 days after a feature date"
    for ttl in ("30 days", "29 days"):
        got = flight_sql_query(steward, pit(ORDERS_AS_ENTITIES, "o_orderdate", demo_features("feature_date"), ttl))
        assert_same_rows(got, asof(orders_entities(), "o_orderdate", [customer_features("feature_date", ttl=ttl)]))
        ages = {(day - d).days for _, _, day, d in table_rows(got).rows if d is not None}
        assert max(ages) == int(ttl.split()[0])


def test_a_ttl_per_product(steward):
    """The TTL names the product it applies to; the static product has none."""
    sql = pit(ORDERS_AS_ENTITIES, "o_orderdate", demo_features() + ["customers.customer.c_mktsegment"],
              f"{FEATURES}=45 days")
    got = flight_sql_query(steward, sql)
    expected = asof(orders_entities(), "o_orderdate", [customer_features(ttl="45 days"), segment()])
    assert_same_rows(got, expected)
    assert all(r[6] is not None for r in expected.rows)


# --------------------------------------------------------------------------------------
# (c) ties: the latest created_at wins
# --------------------------------------------------------------------------------------

RECOMPUTED = (
    "SELECT c_custkey, feature_date FROM {sales.customer_features} GROUP BY ALL HAVING count(*) > 1"
)


def test_recomputed_days_give_the_latest_created_row(steward):
    ties = raw(RECOMPUTED)
    assert len(ties) == 25, ties
    values = ", ".join(f"({c}, DATE '{d.isoformat()}')" for c, d in ties)
    entities = f"SELECT * FROM (VALUES {values}) AS t(c_custkey, as_of)"
    columns = ["created_at", "orders_90d", "spend_90d"]
    got = flight_sql_query(steward, pit(entities, "as_of", demo_features(*columns)))
    expected = asof(entities, "as_of", [customer_features(*columns)])
    assert_same_rows(got, expected)
    # Independently of DuckDB: each is the group's last row, whose values differ from
    # the first's (the nightly run missed an order, or the rerun had no spend figures).
    rows = {(c, d): (created, n, spend) for c, d, created, n, spend in table_rows(got).rows}
    runs = raw("SELECT c_custkey, feature_date, created_at, orders_90d, spend_90d FROM {sales.customer_features} "
               f"WHERE (c_custkey, feature_date) IN ({RECOMPUTED}) ORDER BY ALL")
    by_day: dict[tuple, list] = {}
    for c, d, created, n, spend in runs:
        by_day.setdefault((c, d), []).append((created, n, spend))
    for day, (first, last) in by_day.items():
        assert rows[day] == last, day
        assert first[0] < last[0] and first[1:] != last[1:], day
    assert sum(spend is None for _, _, spend in rows.values()) == 12


def test_a_later_entity_time_still_takes_the_latest_created_row(steward):
    """The tie is between rows of one event time, whatever the entity time after it."""
    entities = orders_entities()
    got = flight_sql_query(steward, pit(ORDERS_AS_ENTITIES, "o_orderdate",
                                        demo_features("feature_date", "created_at", "orders_90d")))
    expected = asof(entities, "o_orderdate", [customer_features("feature_date", "created_at", "orders_90d")])
    assert_same_rows(got, expected)
    ties = set(raw(RECOMPUTED))
    hit = [r for r in table_rows(got).rows if (r[1], r[3]) in ties]
    assert len(hit) >= 10, "orders after a recomputed day"
    assert all(r[4].hour == 9 and r[4].minute == 30 for r in hit), hit[:3]


# --------------------------------------------------------------------------------------
# (d) missing features
# --------------------------------------------------------------------------------------


def test_entities_without_an_earlier_feature_row_get_nulls(steward):
    got = table_rows(flight_sql_query(steward, pit(ORDERS_AS_ENTITIES, "o_orderdate", demo_features())))
    missing = {r[0] for r in got.rows if r[3:] == (None, None, None)}
    first_orders = {k for (k,) in raw(
        "SELECT o_orderkey FROM {sales.orders} QUALIFY o_orderdate = min(o_orderdate) OVER (PARTITION BY o_custkey)")}
    assert missing == first_orders
    assert len({r[1] for r in got.rows if r[0] in missing}) == 1000  # each customer who ordered, once or more


def test_unknown_keys_and_null_times_get_nulls(steward):
    entities = ("SELECT c_custkey, DATE '1998-12-31' AS as_of FROM customers.customer "
                "UNION ALL SELECT * FROM (VALUES (0, DATE '1998-12-31'), (CAST(NULL AS BIGINT), DATE '1998-12-31'), "
                "(7, CAST(NULL AS DATE))) AS v(c_custkey, as_of)")
    got = flight_sql_query(steward, pit(entities, "as_of", demo_features()))
    duck_entities = entities.replace("customers.customer", source("customers.customer"))
    expected = asof(duck_entities, "as_of", [customer_features()])
    assert_same_rows(got, expected)
    rows = table_rows(got).rows
    assert len(rows) == 1503
    never_ordered = [r for r in rows if r[0] is not None and r[0] > 0 and r[0] % 3 == 0]
    assert len(never_ordered) == 500 and all(r[2:] == (None, None, None) for r in never_ordered)
    odd = [r for r in rows if r[0] in (0, None) or r[1] is None]
    assert len(odd) == 3 and all(r[2:] == (None, None, None) for r in odd)


def test_duplicate_entity_rows_each_get_their_features(steward):
    """Entity rows are told apart by position, not by value: a row given twice comes
    back twice, each with its features."""
    entities = f"{ORDERS_AS_ENTITIES} UNION ALL {ORDERS_AS_ENTITIES} WHERE o_orderkey % 7 = 0"
    got = flight_sql_query(steward, pit(entities, "o_orderdate", demo_features()))
    duck = orders_entities() + " UNION ALL " + orders_entities() + " WHERE o_orderkey % 7 = 0"
    expected = asof(duck, "o_orderdate", [customer_features()])
    assert len(expected.rows) == 15_000 + 15_000 // 7
    assert_same_rows(got, expected)


# --------------------------------------------------------------------------------------
# (e) shards
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [None, "60 days"])
def test_the_union_of_shards_is_the_result(server, steward, ttl):
    sql = pit(ORDERS_AS_ENTITIES, "o_orderdate", demo_features() + ["customers.customer.c_mktsegment"], ttl)
    whole = flight_sql_query(steward, sql)
    info = steward.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)), shards(4))
    assert len(info.endpoints) == 4
    parts = []
    for endpoint in info.endpoints:  # each on its own connection
        client = flight_client(server.uri, STEWARD)
        try:
            parts.append(client.do_get(endpoint.ticket, shards(4)).read_all())
        finally:
            client.close()
    keys = [set(p.column("o_orderkey").to_pylist()) for p in parts]
    assert sum(len(k) for k in keys) == len(set().union(*keys)) == 15_000, "disjoint and complete"
    assert sum(1 for k in keys if k) >= 2, "the orders' seven files spread over several shards"
    union = pa.concat_tables(parts)
    assert sorted(table_rows(union).rows, key=repr) == sorted(table_rows(whole).rows, key=repr)
    expected = asof(orders_entities(), "o_orderdate",
                    [customer_features(ttl=ttl), segment()])
    assert_same_rows(union, expected)


def test_shards_through_adbc(server):
    """The call header through the ADBC driver: three partitions, each read on its own."""
    header = {"adbc.flight.sql.rpc.call_header.x-meshgate-shards": "3"}
    with adbc_connect(server.uri, user=STEWARD, db_kwargs=header) as conn, conn.cursor() as cur:
        partitions, _schema = cur.adbc_execute_partitions(DEMO_SQL)
        assert len(partitions) == 3
        parts = []
        for partition in partitions:
            cur.adbc_read_partition(partition)
            parts.append(cur.fetch_arrow_table())
    assert sum(1 for p in parts if p.num_rows) >= 2
    assert_same_rows(pa.concat_tables(parts), demo_expected())


# --------------------------------------------------------------------------------------
# (f) governance
# --------------------------------------------------------------------------------------


def governed(user: str, product: str) -> str:
    domain, name = product.split(".")
    view = govmodel.view_sql(govmodel.DEMO[user], domain, name)
    assert view is not None, f"{product} is hidden from {user}"
    return view


def test_a_masked_feature_stays_masked(server):
    """ana (an analyst without pii_reader) sees spend_90d in steps of 10,000 and only
    her market segment's customers: the join works on what she may read."""
    client = flight_client(server.uri, "ana")
    try:
        got = flight_sql_query(client, DEMO_SQL)
    finally:
        client.close()
    expected = asof(orders_entities("SELECT o_orderkey, o_custkey AS c_custkey, o_orderdate FROM "
                                    + governed("ana", "sales.orders")),
                    "o_orderdate",
                    [customer_features(src=governed("ana", FEATURES)), segment(governed("ana", "customers.customer"))])
    assert_same_rows(got, expected)
    spends = [s for s in got.column("spend_90d").to_pylist() if s is not None]
    assert spends and all(s % 10_000 == 0 for s in spends)
    assert set(got.column("c_mktsegment").to_pylist()) == {"BUILDING", None}
    # ...while the steward's are to the cent
    assert any(r[4] is not None and r[4] % 10_000 != 0 for r in demo_expected().rows)


@pytest.mark.parametrize("feature, unknown", [
    (f"{FEATURES}.orders_90d", "sales.no_such_features.orders_90d"),
    ("customers.customer.c_mktsegment", "customers.no_such_customer.c_mktsegment"),
])
def test_a_forbidden_feature_product_fails_like_a_missing_one(server, feature, unknown):
    """carl (a contractor) reads sales.orders but neither product of these features."""
    client = flight_client(server.uri, "carl")
    try:
        assert flight_sql_query(client, ORDERS_AS_ENTITIES).num_rows > 0
        hidden = query_error(client, pit(ORDERS_AS_ENTITIES, "o_orderdate", [feature]))
        missing = query_error(client, pit(ORDERS_AS_ENTITIES, "o_orderdate", [unknown]))
    finally:
        client.close()
    assert flight_grpc_code(hidden) == "NOT_FOUND", server_message(hidden)
    assert_fails_alike(hidden, ".".join(feature.split(".")[:2]), missing, ".".join(unknown.split(".")[:2]))


def test_a_denied_feature_column_fails_like_a_missing_one(server):
    """c_comment of customers.customer is denied to ana: asking for it as a feature
    fails exactly like a column that does not exist."""
    client = flight_client(server.uri, "ana")
    try:
        hidden = query_error(client, pit(ORDERS_AS_ENTITIES, "o_orderdate", ["customers.customer.c_comment"]))
        missing = query_error(client, pit(ORDERS_AS_ENTITIES, "o_orderdate", ["customers.customer.c_remarks"]))
    finally:
        client.close()
    assert flight_grpc_code(hidden) == "INVALID_ARGUMENT"
    assert_fails_alike(hidden, "c_comment", missing, "c_remarks")


# --------------------------------------------------------------------------------------
# (g) errors
# --------------------------------------------------------------------------------------

USAGE = "call it as point_in_time("
E = ORDERS_AS_ENTITIES
ERRORS = [
    ("bad-ttl", pit(E, "o_orderdate", demo_features(), "30 fortnights"), "the ttl '30 fortnights' does not parse"),
    ("zero-ttl", pit(E, "o_orderdate", demo_features(), "0 days"), "the ttl '0 days' must be more than zero and at most 100 years"),
    ("ttl-without-unit", pit(E, "o_orderdate", demo_features(), "30"), "the ttl '30' does not parse"),
    ("ttl-for-another-product", pit(E, "o_orderdate", demo_features(), "sales.orders=3 days"),
     "the ttl names sales.orders, which no feature comes from"),
    ("no-entity-key", pit(E, "o_orderdate", ["customers.nation.n_name"]),
     "customers.nation declares no entity key (a schema column with role: entity_key)"),
    ("entities-product-without-the-key", pit("customers.nation", "n_nationkey", demo_features()),
     "the entities have no column c_custkey, the entity key of sales.customer_features"),
    ("entities-query-without-the-key",
     pit("SELECT o_orderkey, o_orderdate FROM sales.orders", "o_orderdate", demo_features()),
     "point_in_time: the entities have no column c_custkey, the entity key of sales.customer_features"),
    ("no-such-event-time", pit(E, "o_shipdate", demo_features()), "point_in_time: the entities have no column o_shipdate, named as their event time"),
    ("text-event-time", pit("SELECT o_custkey AS c_custkey, CAST(o_orderdate AS VARCHAR) AS d FROM sales.orders", "d",
                            demo_features()), "event times must be dates or timestamps, not Utf8"),
    ("no-such-feature-column", pit(E, "o_orderdate", [f"{FEATURES}.orders_30d"]),
     "sales.customer_features has no column orders_30d"),
    ("feature-not-qualified", pit(E, "o_orderdate", ["orders_90d"]),
     "feature 'orders_90d' must be named domain.product.column"),
    ("no-features", pit(E, "o_orderdate", []), "name at least one feature"),
    ("entities-syntax-error", pit("SELECT o_orderkey o_custkey AS c_custkey FROM sales.orders", "o_orderdate",
                                  demo_features()), "the entities query does not parse"),
    ("entities-two-queries", pit("SELECT 1 AS c_custkey; SELECT 2 AS c_custkey", "o_orderdate", demo_features()),
     "the entities must be a product name (domain.product) or one query"),
    ("two-arguments", f"SELECT * FROM point_in_time('{FEATURES}', 'feature_date')", "it takes 3 or 4 arguments, not 2"),
    ("column-argument", f"SELECT * FROM point_in_time('{FEATURES}', feature_date, '{FEATURES}.orders_90d')",
     "every argument must be a string literal"),
    ("expression-argument",
     f"SELECT * FROM point_in_time('{FEATURES}', 'feature_date', '{FEATURES}.' || 'orders_90d')",
     "every argument must be a string literal"),
    ("number-ttl", f"SELECT * FROM point_in_time('{FEATURES}', 'feature_date', '{FEATURES}.orders_90d', 30)",
     "every argument must be a string literal"),
    ("reserved-names", f"SELECT __mesh_entity_row FROM point_in_time('{FEATURES}', 'feature_date', "
     f"'customers.customer.c_mktsegment')", "names starting with __mesh_ are reserved"),
]


@pytest.mark.parametrize("sql, says", [(sql, says) for _, sql, says in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_are_invalid_argument_and_say_what_is_wrong(steward, sql, says):
    error = query_error(steward, sql)
    assert flight_grpc_code(error) == "INVALID_ARGUMENT", server_message(error)
    assert says in server_message(error)


def test_usage_errors_show_the_call(steward):
    error = query_error(steward, f"SELECT * FROM point_in_time('{FEATURES}', 'feature_date')")
    assert USAGE in server_message(error)


def test_errors_reach_adbc_with_their_code(server):
    with adbc_connect(server.uri, user=STEWARD) as conn, conn.cursor() as cur:
        with pytest.raises(Exception) as caught:
            cur.execute(pit(E, "o_orderdate", demo_features(), "30 fortnights"))
    assert adbc_grpc_code(caught.value) == "INVALID_ARGUMENT"
    assert "the ttl '30 fortnights' does not parse" in str(caught.value)
