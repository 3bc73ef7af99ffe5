"""Governance as docs/governance.md specifies it, through the real server and clients.

Each policy feature is checked for several principals: the demo users ana (analyst,
BUILDING segment, region 3), sam (pii_reader, AUTOMOBILE, region 1), carl (contractor)
and stella (steward) on testdata/mesh.yaml, and principals of a small "lab" mesh written
here (its own data with NULLs, dates, timestamps, decimals). Expectations are computed
independently: DuckDB / pyarrow over the raw files with the filter and masks applied by
the test (govmodel.py transcribes the demo policies; the lab policies are applied in
Python below).

Covered: row filters (permissive OR, restrictive AND, none -> zero rows, NULL is false,
filter before mask), every mask (keyed_hash with NULLs, show_first/show_last, redact,
null, truncate, bucket, expression) with its result type, denied columns (SELECT *,
information_schema, GetTables include_schema, ADBC schemas; failing like a missing
column), hidden products (absent from metadata; failing like a missing table),
mesh-wide forbid/mask/deny not loosened by domain rules, EXPLAIN for non-stewards,
`meshgate policy test` / `policy explain`.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_FLOOR, Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import govmodel
from mgtest import (
    DATA,
    DEMO_CONFIG,
    SYSTEM_SCHEMA,
    SYSTEM_TABLES,
    TESTDATA,
    ClientPool,
    adbc_connect,
    adbc_query,
    assert_fails_alike,
    assert_same_rows,
    cmd_get_db_schemas,
    cmd_get_tables,
    describe_exc,
    duckdb_expected,
    flight_command,
    flight_grpc_code,
    run_meshgate,
    server_message,
    table_rows,
    write_yaml,
)
from govmodel import DEMO, MASK_ENV, MASK_KEYS, keyed_hash, show_first, show_last


@pytest.fixture(scope="module")
def gov_server(start_server):
    """The demo mesh, with known keyed_hash secrets."""
    srv = start_server(DEMO_CONFIG, env=MASK_ENV, name="governance")
    yield srv
    srv.stop(check=True)


@pytest.fixture(scope="module")
def pool(gov_server):
    p = ClientPool(gov_server.uri)
    yield p
    p.close()


def _check(pool, user, sql):
    assert_same_rows(pool.query(user, sql), govmodel.expected(user, sql))


# --------------------------------------------------------------------------------------
# row filters
# --------------------------------------------------------------------------------------

ROW_FILTER_CASES = [
    ("ana", "SELECT c_custkey, c_mktsegment, c_nationkey FROM customers.customer"),
    ("sam", "SELECT c_custkey, c_mktsegment, c_nationkey FROM customers.customer"),
    ("stella", "SELECT c_custkey, c_mktsegment, c_nationkey FROM customers.customer"),
    ("ana", "SELECT n_nationkey, n_name, n_regionkey FROM customers.nation"),
    ("sam", "SELECT n_nationkey, n_name, n_regionkey FROM customers.nation"),
    ("stella", "SELECT n_nationkey, n_name, n_regionkey FROM customers.nation"),
    ("ana", "SELECT o_orderkey, o_orderpriority, o_year FROM sales.orders"),
    ("carl", "SELECT o_orderkey, o_orderpriority, o_year FROM sales.orders"),
    ("ana", "SELECT r_regionkey, r_name FROM customers.region"),
    ("sam", "SELECT ps_partkey, ps_suppkey, ps_availqty FROM supply.partsupp"),
]


@pytest.mark.parametrize("user,sql", ROW_FILTER_CASES,
                         ids=[f"{u}-{s.split('FROM ')[1]}" for u, s in ROW_FILTER_CASES])
def test_row_filter(pool, user, sql):
    _check(pool, user, sql)


def test_row_filter_literal_expectations(pool):
    """The same filters written out by hand, not through govmodel."""
    carl = pool.query("carl", "SELECT o_orderkey FROM sales.orders")
    raw = duckdb_expected("SELECT o_orderkey FROM sales.orders "
                          "WHERE o_orderdate >= DATE '1997-01-01' AND o_orderpriority <> '1-URGENT'")
    assert_same_rows(carl, raw)
    ana = pool.query("ana", "SELECT c_custkey FROM customers.customer")
    assert_same_rows(ana, duckdb_expected("SELECT c_custkey FROM customers.customer WHERE c_mktsegment = 'BUILDING'"))
    nations = pool.query("ana", "SELECT n_nationkey FROM customers.nation")
    assert_same_rows(nations, duckdb_expected("SELECT n_nationkey FROM customers.nation WHERE n_regionkey = 3"))
    assert 0 < carl.num_rows < 15000 and 0 < ana.num_rows < 1500 and nations.num_rows == 5


def test_filter_sees_raw_values_before_masks(pool):
    """carl's filter reads the raw order date; his dates are then truncated, so
    January 1997 survives as 1997-01-01 and nothing from 1996 appears."""
    t = pool.query("carl", "SELECT min(o_orderdate) AS first, count(*) AS n FROM sales.orders")
    assert t.to_pylist() == [{"first": dt.date(1997, 1, 1), "n": govmodel.scalar("carl", "SELECT count(*) FROM sales.orders")}]


def test_row_filters_through_adbc_prepared_statements(gov_server):
    for user in ("ana", "carl"):
        conn = adbc_connect(gov_server.uri, user=user)
        try:
            sql = ("SELECT o_orderkey, o_orderdate FROM sales.orders" if user == "carl"
                   else "SELECT c_custkey, c_email FROM customers.customer")
            assert_same_rows(adbc_query(conn, sql), govmodel.expected(user, sql))
        finally:
            conn.close()


# --------------------------------------------------------------------------------------
# masks on the demo mesh
# --------------------------------------------------------------------------------------


def _raw(path) -> pa.Table:
    files = sorted(path.rglob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])


def test_keyed_hash_is_hmac_of_the_value(pool):
    """ana sees HMAC-SHA256(MESHGATE_MASK_KEY_CUSTOMERS, value) in hex for pii.* columns."""
    raw = _raw(DATA / "customers" / "customer").to_pylist()
    key = MASK_KEYS["customers"]
    cols = ["c_name", "c_address", "c_phone", "c_email"]
    expected = [(r["c_custkey"], *(keyed_hash(key, r[c]) for c in cols)) for r in raw if r["c_mktsegment"] == "BUILDING"]
    got = pool.query("ana", f"SELECT c_custkey, {', '.join(cols)} FROM customers.customer")
    assert_same_rows(table_rows(got), govmodel.Rows(["c_custkey", *cols], expected))
    assert all(pa.types.is_string(got.schema.field(c).type) for c in cols)


def test_pii_reader_and_steward_see_raw_pii(pool):
    for user in ("sam", "stella"):
        _check(pool, user, "SELECT c_custkey, c_name, c_phone, c_email, c_acctbal FROM customers.customer")


def test_show_last_clerk(pool):
    raw = _raw(DATA / "sales" / "orders").to_pylist()
    got = pool.query("ana", "SELECT o_orderkey, o_clerk FROM sales.orders")
    expected = [(r["o_orderkey"], show_last(r["o_clerk"], 3)) for r in raw]
    assert_same_rows(table_rows(got), govmodel.Rows(["o_orderkey", "o_clerk"], expected))
    assert got.column("o_clerk")[0].as_py().startswith("*")
    _check(pool, "stella", "SELECT o_orderkey, o_clerk FROM sales.orders")  # unless steward


def test_show_first_redact_and_null_masks_on_supplier(pool):
    import csv

    with open(DATA / "supply" / "supplier" / "supplier.csv", newline="") as f:
        raw = list(csv.DictReader(f))
    got = pool.query("ana", "SELECT s_suppkey, s_name, s_phone, s_acctbal FROM supply.supplier")
    expected = [(int(r["s_suppkey"]), show_first(r["s_name"], 9), "(redacted)", None) for r in raw]
    assert_same_rows(table_rows(got), govmodel.Rows(["s_suppkey", "s_name", "s_phone", "s_acctbal"], expected))
    assert got.schema.field("s_acctbal").type == pa.float64()  # null mask keeps the type
    sam = pool.query("sam", "SELECT s_suppkey, s_acctbal FROM supply.supplier")  # pii_reader: balance unmasked
    assert_same_rows(table_rows(sam), govmodel.Rows(["s_suppkey", "s_acctbal"],
                                                    [(int(r["s_suppkey"]), float(r["s_acctbal"])) for r in raw]))


def test_truncate_month_and_bucket_for_contractor(pool):
    raw = _raw(DATA / "sales" / "orders").to_pylist()
    visible = [r for r in raw if r["o_orderdate"] >= dt.date(1997, 1, 1) and r["o_orderpriority"] != "1-URGENT"]
    expected = [
        (r["o_orderkey"], r["o_orderdate"].replace(day=1),
         (r["o_totalprice"] / 10000).to_integral_value(ROUND_FLOOR) * 10000)
        for r in visible
    ]
    got = pool.query("carl", "SELECT o_orderkey, o_orderdate, o_totalprice FROM sales.orders")
    assert_same_rows(table_rows(got), govmodel.Rows(["o_orderkey", "o_orderdate", "o_totalprice"], expected))
    assert got.schema.field("o_orderdate").type == pa.date32()
    assert got.schema.field("o_totalprice").type == pa.decimal128(15, 2)
    ana = pool.query("ana", "SELECT o_totalprice FROM sales.orders")  # analysts: unbucketed
    assert ana.schema.field("o_totalprice").type == pa.decimal128(15, 2)
    assert any(v % 10000 != 0 for v in ana.column("o_totalprice").to_pylist())


def test_expression_mask_on_balance(pool):
    raw = [r for r in _raw(DATA / "customers" / "customer").to_pylist() if r["c_mktsegment"] == "BUILDING"]
    got = pool.query("ana", "SELECT c_custkey, c_acctbal FROM customers.customer")
    expected = [(r["c_custkey"], "overdrawn" if r["c_acctbal"] < 0 else "in credit") for r in raw]
    assert_same_rows(table_rows(got), govmodel.Rows(["c_custkey", "c_acctbal"], expected))
    assert {"overdrawn", "in credit"} == set(got.column("c_acctbal").to_pylist())
    for user in ("sam", "stella"):  # pii_reader / steward: the decimal itself
        t = pool.query(user, "SELECT c_acctbal FROM customers.customer")
        assert t.schema.field("c_acctbal").type == pa.decimal128(15, 2)
        _check(pool, user, "SELECT c_custkey, c_acctbal FROM customers.customer")


# --------------------------------------------------------------------------------------
# denied columns
# --------------------------------------------------------------------------------------

SELECT_STAR = [("ana", "sales", "orders"), ("ana", "customers", "customer"), ("sam", "customers", "customer"),
               ("carl", "sales", "orders"), ("stella", "sales", "orders"), ("stella", "customers", "customer"),
               ("ana", "sales", "customer_features"), ("sam", "sales", "customer_features")]


@pytest.mark.parametrize("user,domain,product", SELECT_STAR, ids=[f"{u}-{d}.{p}" for u, d, p in SELECT_STAR])
def test_select_star_is_the_governed_view(pool, user, domain, product):
    t = pool.query(user, f"SELECT * FROM {domain}.{product}")
    assert t.column_names == govmodel.visible_columns(DEMO[user], domain, product)
    assert_same_rows(t, govmodel.expected(user, f"SELECT * FROM {domain}.{product}"))


@pytest.mark.parametrize("user,table,column,fake", [
    ("ana", "sales.orders", "o_comment", "o_remarks"),
    ("carl", "sales.orders", "o_comment", "o_remarks"),
    ("ana", "customers.customer", "c_comment", "c_remarks"),
    ("sam", "customers.customer", "c_comment", "c_remarks"),
])
def test_denied_column_fails_like_a_missing_one(pool, user, table, column, fake):
    for template in ("SELECT {c} FROM {t}", "SELECT count(*) FROM {t} WHERE {c} IS NULL",
                     "SELECT x.{c} FROM {t} x"):
        hidden = pool.error(user, template.format(c=column, t=table))
        unknown = pool.error(user, template.format(c=fake, t=table))
        assert_fails_alike(hidden, column, unknown, fake)


def test_denied_columns_absent_from_information_schema(pool):
    sql = ("SELECT table_schema, table_name, column_name FROM information_schema.columns "
           "WHERE table_schema IN ('sales', 'customers', 'supply')")
    for user in ("ana", "sam", "carl", "stella"):
        got = {(s, t, c) for s, t, c in table_rows(pool.query(user, sql)).rows}
        expected = {(d, p, c) for (d, p) in govmodel.COLUMNS if govmodel.view_sql(DEMO[user], d, p)
                    for c in govmodel.visible_columns(DEMO[user], d, p)}
        assert got == expected, (user, sorted(got ^ expected))


def test_get_tables_schema_is_the_governed_schema(pool):
    """include_schema carries the governed columns with their masked types."""
    for user in ("ana", "carl", "stella"):
        client = pool.client(user)
        _, t, _ = flight_command(client, cmd_get_tables(catalog="mesh", include_schema=True))
        for row in t.to_pylist():
            schema = pa.ipc.read_schema(pa.py_buffer(row["table_schema"]))
            result = pool.query(user, f"SELECT * FROM {row['db_schema_name']}.{row['table_name']} LIMIT 0").schema
            assert schema.names == result.names, (user, row["table_name"])
            assert [f.type for f in schema] == [f.type for f in result], (user, row["table_name"], schema, result)


def test_adbc_table_schema_hides_denied_and_shows_masked_types(gov_server):
    conn = adbc_connect(gov_server.uri, user="ana")
    try:
        orders = conn.adbc_get_table_schema("orders", db_schema_filter="sales")
        customer = conn.adbc_get_table_schema("customer", db_schema_filter="customers")
    finally:
        conn.close()
    assert orders.names == govmodel.visible_columns(DEMO["ana"], "sales", "orders")
    assert customer.names == govmodel.visible_columns(DEMO["ana"], "customers", "customer")
    assert customer.field("c_acctbal").type == pa.string()


# --------------------------------------------------------------------------------------
# hidden products
# --------------------------------------------------------------------------------------


def _readable(user):
    return {(d, p) for (d, p) in govmodel.COLUMNS if govmodel.view_sql(DEMO[user], d, p) is not None}


@pytest.mark.parametrize("user", ["ana", "carl", "stella"])
def test_metadata_lists_only_readable_products(pool, gov_server, user):
    client = pool.client(user)
    _, t, _ = flight_command(client, cmd_get_tables(catalog="mesh"))
    got = set(zip(t.column("db_schema_name").to_pylist(), t.column("table_name").to_pylist()))
    listed = govmodel.listed_tables(DEMO[user])  # the readable products, and the system tables
    assert listed == _readable(user) | {(SYSTEM_SCHEMA, name) for name in SYSTEM_TABLES}
    assert {x for x in got if x[0] != "information_schema"} == listed
    _, s, _ = flight_command(client, cmd_get_db_schemas(catalog="mesh"))
    schemas = set(s.column("db_schema_name").to_pylist()) - {"information_schema"}
    assert schemas == govmodel.listed_schemas(DEMO[user])
    info = pool.query(user, "SELECT table_schema, table_name FROM information_schema.tables "
                            "WHERE table_schema <> 'information_schema'")
    assert set(table_rows(info).rows) == listed
    conn = adbc_connect(gov_server.uri, user=user)
    try:
        objs = conn.adbc_get_objects(depth="tables", catalog_filter="mesh").read_all().to_pylist()
    finally:
        conn.close()
    tables = {(s["db_schema_name"], tb["table_name"]) for c in objs for s in c["catalog_db_schemas"] or []
              for tb in s["db_schema_tables"] or [] if s["db_schema_name"] != "information_schema"}
    assert tables == listed


@pytest.mark.parametrize("user,hidden,fake", [
    ("carl", "customers.customer", "customers.clients"),
    ("carl", "customers.nation", "customers.nations"),
    ("carl", "sales.lineitem", "sales.lineitems"),
    ("carl", "supply.part", "supply.parts"),
    ("carl", "mesh.supply.supplier", "mesh.supply.vendor"),
])
def test_hidden_product_fails_like_a_missing_one(pool, user, hidden, fake):
    for template in ("SELECT * FROM {t}", "SELECT count(*) FROM sales.orders o JOIN {t} x ON true",
                     "SELECT 1 FROM (SELECT * FROM {t}) s"):
        a = pool.error(user, template.format(t=hidden))
        b = pool.error(user, template.format(t=fake))
        assert flight_grpc_code(a) == "NOT_FOUND", describe_exc(a)
        assert_fails_alike(a, hidden, b, fake)


# --------------------------------------------------------------------------------------
# EXPLAIN
# --------------------------------------------------------------------------------------


def _plan_text(t: pa.Table) -> str:
    return "\n".join(str(v) for col in t.columns for v in col.to_pylist())


@pytest.mark.parametrize("user,sql,secrets", [
    ("ana", "SELECT * FROM customers.customer", ["BUILDING", "overdrawn", "c_comment", "own-segment"]),
    ("ana", "SELECT count(*) FROM customers.nation", ["Int64(3)", "= 3", "own-region"]),
    ("ana", "SELECT o_orderkey FROM sales.orders WHERE o_orderkey > 10", ["o_comment", "1-URGENT"]),
    ("carl", "SELECT * FROM sales.orders", ["1-URGENT", "1997-01-01", "o_comment", "10000", "contractors"]),
])
def test_explain_shows_nothing_below_the_barrier(pool, user, sql, secrets):
    for prefix in ("EXPLAIN ", "EXPLAIN VERBOSE "):
        text = _plan_text(pool.query(user, prefix + sql))
        for needle in [*secrets, ".parquet", str(DATA), str(TESTDATA)]:
            assert needle not in text, f"{user}: {prefix}shows {needle!r}:\n{text}"


def test_explain_full_for_steward(pool):
    text = _plan_text(pool.query("stella", "EXPLAIN SELECT * FROM customers.customer"))
    assert ".parquet" in text, text


@pytest.mark.parametrize("user", ["ana", "sam", "carl"])
def test_explain_analyze_refused_for_non_stewards(pool, user):
    err = pool.error(user, "EXPLAIN ANALYZE SELECT count(*) FROM sales.orders")
    assert flight_grpc_code(err) in ("INVALID_ARGUMENT", "PERMISSION_DENIED"), describe_exc(err)
    assert ".parquet" not in str(err) and "1-URGENT" not in str(err)
    assert pool.query(user, "SELECT count(*) AS n FROM sales.orders").num_rows == 1  # still serving


# --------------------------------------------------------------------------------------
# the lab mesh: NULLs, more types, mesh-wide rules against domain rules
# --------------------------------------------------------------------------------------

LAB_KEY = "lab-secret-key-for-tests"
T0 = dt.datetime(2024, 5, 17, 13, 45, 30, 123456)
PEOPLE = pa.table({
    "id": pa.array([1, 2, 3, 4, 5, 6, 7, 8], pa.int64()),
    "email": pa.array(["a@x.org", None, "c@x.org", "d@x.org", None, "f@x.org", "g@x.org", "h@x.org"]),
    "badge": pa.array([101, 102, None, 104, 105, None, 107, 108], pa.int64()),
    "score": pa.array([5, 17, -3, None, 42, 99, 10, 0], pa.int64()),
    "ratio": pa.array([0.2, 1.74, 2.5, 3.01, -0.2, 9.99, 0.5, 1.0], pa.float64()),
    "amount": pa.array([Decimal(x) for x in ["1.234", "7.500", "12.999", "-2.001", "5.000", "14.990", "0.000", "3.3"]],
                       pa.decimal128(10, 3)),
    "born": pa.array([dt.date(1990, 7, 14), dt.date(1985, 1, 1), dt.date(2001, 12, 31), None,
                      dt.date(1970, 3, 3), dt.date(1999, 6, 6), dt.date(2010, 10, 10), dt.date(1980, 2, 29)]),
    "seen": pa.array([T0 + dt.timedelta(hours=7 * i, minutes=13 * i) for i in range(8)], pa.timestamp("us")),
    "flag": pa.array([False, False, False, False, None, True, False, False]),
    "name": pa.array(["Alice", "Bob", "Cyd", "Dee", None, "Fay", "Gus", "Hal"]),
    "note": pa.array([f"note {i}" for i in range(8)]),
})
PEOPLE_SCHEMA = [
    {"name": "id", "type": "int64", "nullable": False},
    {"name": "email", "type": "utf8", "tags": ["pii.email"]},
    {"name": "badge", "type": "int64", "tags": ["pii.badge"]},
    {"name": "score", "type": "int64"},
    {"name": "ratio", "type": "float64"},
    {"name": "amount", "type": "decimal(10, 3)"},
    {"name": "born", "type": "date32"},
    {"name": "seen", "type": "timestamp"},
    {"name": "flag", "type": "bool"},
    {"name": "name", "type": "utf8"},
    {"name": "note", "type": "utf8"},
]
REGION_SCHEMA = [{"name": "r_regionkey", "type": "int64", "nullable": False}, {"name": "r_name", "type": "utf8"},
                 {"name": "r_comment", "type": "utf8"}]
LAB_MESH_WIDE = {
    "grants": [
        {"id": "analysts", "effect": "permit", "when": "'analyst' in principal.groups"},
        {"id": "no-places", "effect": "forbid", "products": ["places"], "when": "'analyst' in principal.groups"},
        {"id": "retired-hidden", "effect": "forbid", "products": {"status": ["retired"]}},
    ],
    "columns": [
        {"id": "pii-hashed", "select": {"tags": ["pii.*"]}, "action": {"mask": "keyed_hash"}},
        {"id": "notes-denied", "products": ["people"], "select": ["note"], "action": "deny"},
        {"id": "names-redacted", "products": ["people"], "select": ["name"], "action": {"mask": "redact", "value": "?"}},
        {"id": "ratio-bucket", "products": ["people"], "select": ["ratio"], "action": {"mask": "bucket", "width": 0.5}},
    ],
}
LAB_DOMAIN = {
    "grants": [{"id": "places-for-analysts", "effect": "permit", "products": ["places"],
                "when": "'analyst' in principal.groups"}],
    "row_filters": [
        {"id": "scored", "mode": "permissive", "products": ["people"], "filter": "score > 0"},
        {"id": "unflagged", "mode": "restrictive", "products": ["people"], "filter": "NOT flag"},
        {"id": "all-places", "mode": "permissive", "products": ["places"], "filter": "true"},
        {"id": "ghosts-only", "mode": "permissive", "products": ["ghosts"], "when": "'ghost' in principal.groups",
         "filter": "true"},
        {"id": "only-restrictive", "mode": "restrictive", "products": ["strict"], "filter": "r_regionkey >= 0"},
    ],
    "columns": [
        {"id": "everything", "select": "*", "action": "allow"},
        {"id": "emails-visible", "products": ["people"], "select": ["email", "badge"], "action": "allow"},
        {"id": "notes-visible", "products": ["people"], "select": ["note"], "action": "allow"},
        {"id": "names-nulled", "products": ["people"], "select": ["name"], "action": {"mask": "null"}},
        {"id": "score-bucket", "products": ["people"], "select": ["score"], "action": {"mask": "bucket", "width": 10}},
        {"id": "ratio-loosened", "products": ["people"], "select": ["ratio"], "action": "allow"},
        {"id": "amount-bucket", "products": ["people"], "select": ["amount"], "action": {"mask": "bucket", "width": 5}},
        {"id": "born-year", "products": ["people"], "select": ["born"], "action": {"mask": "truncate", "unit": "year"}},
        {"id": "seen-hour", "products": ["people"], "select": ["seen"], "action": {"mask": "truncate", "unit": "hour"}},
    ],
}


@pytest.fixture(scope="module")
def lab(start_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-mesh")
    (root / "people").mkdir()
    pq.write_table(PEOPLE, root / "people" / "people.parquet")
    region = f"{DATA / 'customers' / 'region'}/"
    doc = {
        "catalog": "mesh",
        "auth": {"anonymous": {"name": "lab-analyst", "groups": ["analyst"]}},
        "governance": {"policies": [LAB_MESH_WIDE]},
        "domains": {"lab": {
            "owner": "qa@example.com",
            "policies": [LAB_DOMAIN],
            "products": [
                {"name": "people", "location": f"{root / 'people'}/", "format": "parquet", "schema": PEOPLE_SCHEMA},
                {"name": "places", "location": region, "format": "parquet", "schema": REGION_SCHEMA},
                {"name": "ghosts", "location": region, "format": "parquet", "schema": REGION_SCHEMA},
                {"name": "strict", "location": region, "format": "parquet", "schema": REGION_SCHEMA},
                {"name": "archive", "status": "retired", "location": region, "format": "parquet", "schema": REGION_SCHEMA},
            ],
        }},
    }
    cfg = write_yaml(root / "mesh.yaml", doc)
    srv = start_server(cfg, env={"MESHGATE_MASK_KEY_LAB": LAB_KEY}, name="lab")
    p = ClientPool(srv.uri)
    yield p
    p.close()
    srv.stop(check=True)


def _visible_people() -> list[dict]:
    """score > 0 (permissive) AND NOT flag (restrictive); NULL counts as false."""
    return [r for r in PEOPLE.to_pylist() if r["score"] is not None and r["score"] > 0 and r["flag"] is False]


def _floor_to(x, width):
    if x is None:
        return None
    if isinstance(x, Decimal):
        w = Decimal(str(width))
        return ((x / w).to_integral_value(ROUND_FLOOR) * w).quantize(x)
    return (x // width) * width


def test_lab_row_filter_permissive_and_restrictive_with_nulls(lab):
    got = lab.query(None, "SELECT id FROM lab.people")
    assert sorted(got.column("id").to_pylist()) == sorted(r["id"] for r in _visible_people())
    assert sorted(got.column("id").to_pylist()) == [1, 2, 7]  # by hand: 4 (NULL score), 5 (NULL flag) out


def test_lab_no_permissive_filter_means_zero_rows(lab):
    for product in ("ghosts", "strict"):
        t = lab.query(None, f"SELECT * FROM lab.{product}")
        assert t.num_rows == 0 and t.column_names == ["r_regionkey", "r_name", "r_comment"], product
        assert lab.query(None, f"SELECT count(*) AS n FROM lab.{product}").to_pylist() == [{"n": 0}]


def test_lab_keyed_hash_keeps_nulls_and_hashes_numbers_as_text(lab):
    got = lab.query(None, "SELECT id, email, badge FROM lab.people")
    expected = [(r["id"], keyed_hash(LAB_KEY, r["email"]), keyed_hash(LAB_KEY, r["badge"])) for r in _visible_people()]
    assert_same_rows(table_rows(got), govmodel.Rows(["id", "email", "badge"], expected))
    assert got.schema.field("badge").type == pa.string()
    everyone = lab.query(None, "SELECT count(*) AS n, count(email) AS e FROM lab.people").to_pylist()
    assert everyone == [{"n": 3, "e": 2}]  # id 2 has no e-mail: NULL stays NULL


def test_lab_bucket_and_truncate_keep_types(lab):
    got = lab.query(None, "SELECT id, score, ratio, amount, born, seen FROM lab.people")
    expected = [(r["id"], _floor_to(r["score"], 10), _floor_to(r["ratio"], 0.5), _floor_to(r["amount"], 5),
                 None if r["born"] is None else r["born"].replace(month=1, day=1),
                 r["seen"].replace(minute=0, second=0, microsecond=0))
                for r in _visible_people()]
    assert_same_rows(table_rows(got), govmodel.Rows(["id", "score", "ratio", "amount", "born", "seen"], expected))
    s = got.schema
    assert (s.field("score").type, s.field("ratio").type, s.field("amount").type) == \
        (pa.int64(), pa.float64(), pa.decimal128(10, 3))
    assert (s.field("born").type, s.field("seen").type) == (pa.date32(), pa.timestamp("us"))


def test_lab_most_restrictive_mask_wins(lab):
    """Mesh-wide redact vs domain null: null. Mesh-wide keyed_hash vs domain allow: hash.
    Mesh-wide bucket vs domain allow: bucket (a domain cannot loosen a mesh-wide mask)."""
    t = lab.query(None, "SELECT id, name, email, ratio FROM lab.people")
    for row in t.to_pylist():
        raw = next(r for r in PEOPLE.to_pylist() if r["id"] == row["id"])
        assert row["name"] is None
        assert row["email"] == keyed_hash(LAB_KEY, raw["email"])
        assert row["ratio"] == _floor_to(raw["ratio"], 0.5)


def test_lab_mesh_wide_deny_and_forbid_not_loosened(lab):
    t = lab.query(None, "SELECT * FROM lab.people")
    assert "note" not in t.column_names
    assert t.column_names == [c["name"] for c in PEOPLE_SCHEMA if c["name"] != "note"]
    assert_fails_alike(lab.error(None, "SELECT note FROM lab.people"), "note",
                       lab.error(None, "SELECT nope FROM lab.people"), "nope")
    hidden, unknown = lab.error(None, "SELECT * FROM lab.places"), lab.error(None, "SELECT * FROM lab.palaces")
    assert flight_grpc_code(hidden) == "NOT_FOUND", describe_exc(hidden)
    assert_fails_alike(hidden, "lab.places", unknown, "lab.palaces")
    retired, unknown = lab.error(None, "SELECT * FROM lab.archive"), lab.error(None, "SELECT * FROM lab.archives")
    assert_fails_alike(retired, "lab.archive", unknown, "lab.archives")  # forbid by status
    _, tables, _ = flight_command(lab.client(None), cmd_get_tables(catalog="mesh", db_schema_filter_pattern="lab"))
    assert set(tables.column("table_name").to_pylist()) == {"people", "ghosts", "strict"}


# --------------------------------------------------------------------------------------
# tooling
# --------------------------------------------------------------------------------------


def _policy_cases() -> list[str]:
    names = []
    for f in sorted((TESTDATA / "domains").glob("*/policies/*.yaml")) + sorted((TESTDATA / "policies").glob("*.yaml")):
        names += [t["name"] for t in (yaml.safe_load(f.read_text()) or {}).get("tests") or []]
    return names


def test_policy_test_command_runs_every_case(meshgate_bin):
    res = run_meshgate(meshgate_bin, "policy", "test", "--config", str(DEMO_CONFIG))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    cases = _policy_cases()
    assert len(cases) >= 9
    for name in cases:
        assert sum(name in line for line in out.splitlines()) == 1, f"no single line for {name!r}:\n{out}"


@pytest.mark.parametrize("user,sql,needles", [
    ("carl", "SELECT * FROM customers.customer", ["contractors-no-pii"]),
    ("ana", "SELECT * FROM customers.customer", ["readers", "c_mktsegment", "keyed_hash", "c_comment"]),
    ("carl", "SELECT * FROM sales.orders", ["contractors-see-orders", "o_orderdate", "1-URGENT", "bucket",
                                              "truncate"]),
], ids=["carl-customer", "ana-customer", "carl-orders"])
def test_policy_explain_names_the_rules(meshgate_bin, user, sql, needles):
    res = run_meshgate(meshgate_bin, "policy", "explain", "--config", str(DEMO_CONFIG), "--as", user, sql)
    out = res.stdout + res.stderr
    for needle in needles:
        assert needle in out, f"{needle!r} not in:\n{out}"


def test_server_message_of_hidden_product_names_nothing_else(pool):
    err = pool.error("carl", "SELECT c_email FROM customers.customer")
    msg = server_message(err)
    for needle in ("pii", "contractor", "forbid", "policy", "permission"):
        assert needle not in msg.lower(), msg
