"""Cross-domain SQL through ADBC and plain pyarrow.flight, checked against DuckDB on the same files."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mgtest import (
    DATA,
    Rows,
    adbc_query,
    assert_same_rows,
    cmd_statement_query,
    duckdb_expected,
    flight_command,
    flight_sql_query,
    parquet_row_count,
    parquet_table,
)

REGION_REVENUE = """
SELECT r.r_name, n.n_name, COUNT(*) AS order_count, SUM(o.o_totalprice) AS revenue,
       COUNT(DISTINCT c.c_custkey) AS customers
FROM sales.orders o
JOIN customers.customer c ON o.o_custkey = c.c_custkey
JOIN customers.nation n ON c.c_nationkey = n.n_nationkey
JOIN customers.region r ON n.n_regionkey = r.r_regionkey
GROUP BY r.r_name, n.n_name
"""

BRAND_LINES = """
SELECT p.p_brand, COUNT(*) AS line_count, SUM(l.l_extendedprice) AS gross, SUM(l.l_quantity) AS qty,
       MIN(l.l_shipdate) AS first_ship, MAX(l.l_shipdate) AS last_ship
FROM sales.lineitem l
JOIN supply.part p ON l.l_partkey = p.p_partkey
WHERE p.p_size <= 10
GROUP BY p.p_brand
"""

ORDERS_BY_YEAR = """
SELECT o_year, COUNT(*) AS order_count, SUM(o_totalprice) AS total,
       MIN(o_orderdate) AS first_day, MAX(o_orderdate) AS last_day
FROM sales.orders
GROUP BY o_year
"""

SUPPLIERS_BY_NATION = """
SELECT n.n_name, COUNT(*) AS supplier_count, SUM(s.s_acctbal) AS balance, MAX(s.s_name) AS last_name
FROM supply.supplier s
JOIN customers.nation n ON s.s_nationkey = n.n_nationkey
GROUP BY n.n_name
"""

# row-level (no aggregation): strings, dates and decimals must survive exactly
BIG_ORDERS_1995 = """
SELECT o.o_orderkey, o.o_orderdate, o.o_totalprice, o.o_year, c.c_name, c.c_email, n.n_name
FROM sales.orders o
JOIN customers.customer c ON o.o_custkey = c.c_custkey
JOIN customers.nation n ON c.c_nationkey = n.n_nationkey
WHERE o.o_year = 1995 AND o.o_totalprice > 250000
"""

# three domains in one query
SUPPLY_CHAIN = """
SELECT s.s_name, COUNT(DISTINCT l.l_orderkey) AS orders_served, SUM(l.l_extendedprice) AS gross,
       SUM(ps.ps_availqty) AS stock
FROM sales.lineitem l
JOIN supply.partsupp ps ON l.l_partkey = ps.ps_partkey AND l.l_suppkey = ps.ps_suppkey
JOIN supply.supplier s ON ps.ps_suppkey = s.s_suppkey
JOIN customers.nation n ON s.s_nationkey = n.n_nationkey
WHERE n.n_name IN ('GERMANY', 'FRANCE', 'JAPAN', 'BRAZIL')
GROUP BY s.s_name
"""

CROSS_DOMAIN_QUERIES = {
    "region_revenue": REGION_REVENUE,
    "brand_lines": BRAND_LINES,
    "orders_by_year": ORDERS_BY_YEAR,
    "suppliers_by_nation": SUPPLIERS_BY_NATION,
    "big_orders_1995": BIG_ORDERS_1995,
    "supply_chain": SUPPLY_CHAIN,
}


@pytest.mark.parametrize("name", list(CROSS_DOMAIN_QUERIES))
def test_cross_domain_query_matches_duckdb(run_query, name):
    sql = CROSS_DOMAIN_QUERIES[name]
    expected = duckdb_expected(sql)
    assert expected.rows, f"{name}: DuckDB returned nothing; the query does not test anything"
    actual = run_query(sql)
    assert_same_rows(actual, expected)


def test_demo_data_shape():
    """The sizes the brief promises; other tests rely on them being non-trivial."""
    assert parquet_row_count(DATA / "sales" / "orders") >= 10_000
    assert parquet_row_count(DATA / "customers" / "customer") >= 1_000
    assert parquet_row_count(DATA / "customers" / "nation") == 25
    assert parquet_row_count(DATA / "customers" / "region") == 5


def test_orders_by_year_partitions_are_consistent(run_query):
    """o_year comes from the directory name; every order's date must fall in that year."""
    t = run_query(ORDERS_BY_YEAR)
    years = sorted(
        (int(p.name.split("=", 1)[1]), parquet_row_count(p))
        for p in (DATA / "sales" / "orders").iterdir()
        if p.is_dir() and p.name.startswith("o_year=")
    )
    got = sorted(zip(t.column("o_year").to_pylist(), t.column("order_count").to_pylist()))
    assert got == years
    for row in t.to_pylist():
        assert row["first_day"].year == row["o_year"] == row["last_day"].year, row


@pytest.mark.parametrize(
    "where, years",
    [
        ("o_year = 1994", [1994]),
        ("o_year IN (1992, 1998)", [1992, 1998]),
        ("o_year >= 1997", [1997, 1998]),
        ("o_year BETWEEN 1993 AND 1995 AND o_totalprice > 100000", None),
    ],
)
def test_partition_filter(run_query, where, years):
    sql = f"SELECT COUNT(*) AS n, SUM(o_totalprice) AS total, MIN(o_year) AS lo, MAX(o_year) AS hi FROM sales.orders WHERE {where}"
    actual = run_query(sql)
    assert_same_rows(actual, duckdb_expected(sql))
    if years is not None:
        # independent of DuckDB: row counts straight from the partition directories' footers
        expected_n = sum(parquet_row_count(DATA / "sales" / "orders" / f"o_year={y}") for y in years)
        assert actual.column("n").to_pylist() == [expected_n]
        assert actual.column("lo").to_pylist() == [min(years)]
        assert actual.column("hi").to_pylist() == [max(years)]


def test_partition_filter_rows(run_query):
    sql = "SELECT o_orderkey, o_custkey, o_orderdate, o_totalprice, o_year FROM sales.orders WHERE o_year = 1996"
    actual = run_query(sql)
    direct = parquet_table(DATA / "sales" / "orders" / "o_year=1996")
    assert actual.num_rows == direct.num_rows > 0
    assert set(actual.column("o_year").to_pylist()) == {1996}
    assert sorted(actual.column("o_orderkey").to_pylist()) == sorted(direct.column("o_orderkey").to_pylist())
    assert_same_rows(actual, duckdb_expected(sql))


def test_fully_qualified_name(run_query):
    sql = "SELECT COUNT(*) AS n FROM mesh.sales.orders o JOIN mesh.customers.customer c ON o.o_custkey = c.c_custkey"
    actual = run_query(sql)
    assert actual.column("n").to_pylist() == [duckdb_expected(sql).rows[0][0]]


def test_whole_table_equals_files(run_query):
    """SELECT * of a product is exactly the file's content (values and types)."""
    t = run_query("SELECT * FROM customers.customer")
    direct = parquet_table(DATA / "customers" / "customer")
    assert t.num_rows == direct.num_rows
    assert t.schema.names == direct.schema.names
    for f in direct.schema:
        assert t.schema.field(f.name).type == f.type, f.name
    assert t.sort_by("c_custkey").equals(direct.sort_by("c_custkey").cast(t.schema))


def test_wire_types(run_query):
    """utf8 (not Utf8View) strings, decimal128(15,2), date32, int32 partition column."""
    t = run_query(
        "SELECT o_orderkey, o_orderstatus, o_totalprice, o_orderdate, o_year, o_shippriority "
        "FROM sales.orders WHERE o_year = 1993 LIMIT 10"
    )
    assert t.num_rows == 10
    assert t.schema.field("o_orderkey").type == pa.int64()
    assert t.schema.field("o_orderstatus").type == pa.string()
    assert t.schema.field("o_totalprice").type == pa.decimal128(15, 2)
    assert t.schema.field("o_orderdate").type == pa.date32()
    assert t.schema.field("o_year").type == pa.int32()
    assert t.schema.field("o_shippriority").type == pa.int32()
    assert all(isinstance(v, Decimal) for v in t.column("o_totalprice").to_pylist())


def test_csv_product_types(run_query):
    t = run_query("SELECT * FROM supply.supplier")
    assert t.num_rows == 100
    assert t.schema.field("s_suppkey").type == pa.int64()
    assert t.schema.field("s_acctbal").type == pa.float64()
    assert t.schema.field("s_phone").type == pa.string()
    assert_same_rows(t, duckdb_expected("SELECT * FROM supply.supplier"))


def test_empty_result_keeps_schema(run_query):
    t = run_query("SELECT o_orderkey, o_totalprice, o_orderdate FROM sales.orders WHERE o_orderkey < 0")
    assert t.num_rows == 0
    assert t.schema.names == ["o_orderkey", "o_totalprice", "o_orderdate"]
    assert t.schema.field("o_totalprice").type == pa.decimal128(15, 2)
    assert t.schema.field("o_orderdate").type == pa.date32()


@pytest.mark.parametrize(
    "sql",
    [
        BIG_ORDERS_1995,
        "SELECT * FROM sales.lineitem",
        "SELECT * FROM supply.supplier",
        "SELECT o_orderkey FROM sales.orders WHERE o_orderkey < 0",
        REGION_REVENUE,
    ],
    ids=["join", "lineitem", "csv", "empty", "aggregate"],
)
def test_flightinfo_schema_equals_stream_schema(flight_client, sql):
    """Interop trap 1: FlightInfo's schema must equal each DoGet stream's schema exactly."""
    info, table, stream_schemas = flight_command(flight_client, cmd_statement_query(sql))
    assert info.schema is not None
    assert stream_schemas, "no endpoints"
    for s in stream_schemas:
        assert s.equals(info.schema, check_metadata=True), f"FlightInfo {info.schema}\n!= DoGet {s}"
    assert info.total_records in (-1, table.num_rows)


def test_fetch_record_batch_streams(adbc_conn):
    expected_rows = parquet_row_count(DATA / "sales" / "lineitem")
    direct = parquet_table(DATA / "sales" / "lineitem")
    expected_sum = pc.sum(direct.column("l_extendedprice")).as_py()
    expected_keys = pc.sum(direct.column("l_orderkey")).as_py()
    with adbc_conn.cursor() as cur:
        cur.execute("SELECT l_orderkey, l_extendedprice FROM sales.lineitem")
        reader = cur.fetch_record_batch()
        assert isinstance(reader, pa.RecordBatchReader)
        rows = batches = 0
        total = Decimal(0)
        keys = 0
        for batch in reader:
            batches += 1
            rows += batch.num_rows
            total += pc.sum(batch.column("l_extendedprice")).as_py() or 0
            keys += pc.sum(batch.column("l_orderkey")).as_py() or 0
    assert rows == expected_rows
    assert total == expected_sum
    assert keys == expected_keys
    assert batches >= 1


def test_fetch_df_pandas(adbc_conn):
    sql = REGION_REVENUE
    with adbc_conn.cursor() as cur:
        cur.execute(sql)
        df = cur.fetch_df()
    assert list(df.columns) == ["r_name", "n_name", "order_count", "revenue", "customers"]
    actual = Rows(list(df.columns), [tuple(r) for r in df.itertuples(index=False, name=None)])
    assert_same_rows(actual, duckdb_expected(sql))


def test_polars_read_database(adbc_conn):
    import polars as pl

    sql = SUPPLIERS_BY_NATION
    df = pl.read_database(sql, adbc_conn)
    assert df.columns == ["n_name", "supplier_count", "balance", "last_name"]
    assert_same_rows(Rows(df.columns, df.rows()), duckdb_expected(sql))


def test_fetchall_dbapi_rows(adbc_conn):
    sql = "SELECT r.r_regionkey, r.r_name, COUNT(*) AS nations FROM customers.region r JOIN customers.nation n ON n.n_regionkey = r.r_regionkey GROUP BY r.r_regionkey, r.r_name"
    with adbc_conn.cursor() as cur:
        cur.execute(sql)
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    assert names == ["r_regionkey", "r_name", "nations"]
    assert_same_rows(Rows(names, rows), duckdb_expected(sql))
    assert sum(r[2] for r in rows) == 25


def test_many_queries_one_connection(adbc_conn, flight_client):
    """Several statements on one connection / client, interleaved."""
    for year in (1992, 1995, 1998):
        sql = f"SELECT COUNT(*) AS n FROM sales.orders WHERE o_year = {year}"
        expected = parquet_row_count(DATA / "sales" / "orders" / f"o_year={year}")
        assert adbc_query(adbc_conn, sql).column("n").to_pylist() == [expected]
        assert flight_sql_query(flight_client, sql).column("n").to_pylist() == [expected]
