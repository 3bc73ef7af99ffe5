"""SQLAlchemy through flightsql-dbapi: the path Apache Superset takes to a Flight SQL server.

flightsql-dbapi (influxdata) is a DB-API 2 driver plus a SQLAlchemy 1.4 dialect written on
plain pyarrow.flight. These tests run the real client against meshgate, so they exercise what
it does on the wire (read from its source, flightsql/{client,dbapi,sqlalchemy}.py):

- URL `datafusion+flightsql://user:password@host:port?insecure=True` (the dialect is
  registered by `import flightsql.sqlalchemy`; `insecure` means plain grpc, no TLS). With a
  user/password it does a Basic handshake once, in create_engine, and sends the bearer the
  server answered on every later call. Without credentials it sends `authorization: Bearer
  None` (the literal string), so a server without anonymous access must answer every call
  with a clear UNAUTHENTICATED.
- On first connect the dialect calls GetSqlInfo for the server name, Arrow version, read-only
  flag and identifier quote char, and fails if the quote char or the read-only flag is
  missing.
- Reflection: get_schema_names is GetDbSchemas with no filter. get_table_names(schema) is
  GetTables with the schema as db_schema_filter_pattern. get_columns(table, schema) is
  GetTables(include_schema) with the table name as a pattern, and it decodes only the *first*
  row's table_schema. So a hidden product must answer like a missing one, with no rows.
- Queries are plain CommandStatementQuery, never prepared: the dialect's LiteralBindCompiler
  inlines the values of Core expressions. `text()` bind parameters come out as NULL, which
  is a client bug, so these tests put literal values in the SQL. The client reads only
  `endpoints[0]`, so the whole result must come in the first endpoint (meshgate's default).
  Results go through pandas: DATE columns arrive as pandas Timestamps.
- DB-API `cursor.execute(sql, params)` does prepare, then DoPut, then GetFlightInfo on the
  *original* handle. It ignores the DoPutPreparedStatementResult handle that a stateless
  server answers with, so against meshgate parameters are never bound. The test only
  requires a clear error or correct rows, never wrong rows.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import flightsql
import flightsql.sqlalchemy  # noqa: F401  registers the datafusion+flightsql dialect
import sqlalchemy
from sqlalchemy import MetaData, Table, create_engine, func, inspect, select, text
from sqlalchemy.sql import sqltypes

import govmodel
from mgtest import (
    DATA,
    DEMO_DOMAINS,
    DEMO_PRODUCTS,
    Rows,
    SYSTEM_SCHEMA,
    SYSTEM_TABLES,
    assert_same_rows,
    cmd_statement_query,
    demo_password,
    describe_exc,
    duckdb_expected,
    flight_client,
    flight_grpc_code,
    load_contract,
    parquet_row_count,
    server_message,
    with_system_schema,
)

CONTRACT = load_contract()
FLIGHT_ERRORS = (flight.FlightError, pa.ArrowException)
EXTRA_SCHEMAS = {"information_schema"}  # a server may list it; meshgate's demo does not


def engine_url(server, user: str | None = None, password: str | None = None, **query: str) -> str:
    auth = ""
    if user is not None:
        auth = f"{user}:{demo_password(user) if password is None else password}@"
    params = "&".join(f"{k}={v}" for k, v in {"insecure": "True", **query}.items())
    return f"datafusion+flightsql://{auth}127.0.0.1:{server.port}?{params}"


@pytest.fixture(scope="module")
def engines(demo_server):
    """user -> Engine (made on first use, disposed at the end of the module)."""
    made: dict[str, sqlalchemy.engine.Engine] = {}

    def get(user: str) -> sqlalchemy.engine.Engine:
        if user not in made:
            made[user] = create_engine(engine_url(demo_server, user))
        return made[user]

    yield get
    for eng in made.values():
        eng.dispose()


def readable(user: str) -> set[tuple[str, str]]:
    """(domain, product) pairs `user` may read, from the tests' own policy model."""
    p = govmodel.DEMO[user]
    return {(d, t) for (d, t) in govmodel.COLUMNS if govmodel.view_sql(p, d, t) is not None}


def sqlalchemy_type(t: pa.DataType):
    """The SQLAlchemy type a column of Arrow type `t` must reflect as."""
    if pa.types.is_int64(t):
        return sqltypes.BIGINT
    if pa.types.is_integer(t):
        return sqltypes.INTEGER
    if pa.types.is_decimal(t):
        return sqltypes.DECIMAL
    if pa.types.is_floating(t):
        return sqltypes.FLOAT
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return sqltypes.TEXT
    if pa.types.is_date(t):
        return sqltypes.DATE
    if pa.types.is_timestamp(t):
        return sqltypes.TIMESTAMP
    if pa.types.is_boolean(t):
        return sqltypes.BOOLEAN
    raise AssertionError(f"no SQLAlchemy type expected for {t}")


def _plain(v):
    """pandas Timestamps (how flightsql-dbapi returns DATE) -> datetime."""
    return v.to_pydatetime() if isinstance(v, pd.Timestamp) else v


def _as_datetime(v):
    return dt.datetime.combine(v, dt.time()) if type(v) is dt.date else v


def result_rows(result) -> Rows:
    return Rows(list(result.keys()), [tuple(_plain(v) for v in row) for row in result.fetchall()])


def expected_rows(sql: str, principal: str = "stella") -> Rows:
    exp = duckdb_expected(sql) if principal == "stella" else govmodel.expected(principal, sql)
    return Rows(exp.names, [tuple(_as_datetime(v) for v in row) for row in exp.rows])


# --------------------------------------------------------------------------------------
# the engine and the dialect's first-connect SqlInfo
# --------------------------------------------------------------------------------------


def test_dialect_initializes_from_sql_info(engines):
    eng = engines("stella")
    with eng.connect() as conn:
        assert conn.execute(text("SELECT 1 AS one")).scalar() == 1
    dialect = eng.dialect
    assert (dialect.name, dialect.driver) == ("datafusion", "flightsql")
    assert dialect.sql_info[flightsql.flightsql_pb2.FLIGHT_SQL_SERVER_NAME] == "meshgate"
    assert dialect.identifier_preparer.initial_quote == '"'
    assert dialect.sql_info[flightsql.flightsql_pb2.FLIGHT_SQL_SERVER_READ_ONLY] is True
    assert dialect.supports_delete is False  # read-only server


# --------------------------------------------------------------------------------------
# reflection: schemas, tables, columns as each principal may see them
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["stella", "ana", "carl"])
def test_schema_names(engines, user):
    names = inspect(engines(user)).get_schema_names()
    domains = {d for d, _ in readable(user)}
    assert len(names) == len(set(names)), names
    assert set(names) - EXTRA_SCHEMAS == with_system_schema(domains), names
    if user == "stella":
        assert domains == DEMO_DOMAINS


@pytest.mark.parametrize("user", ["stella", "ana", "carl"])
def test_table_names(engines, user):
    insp = inspect(engines(user))
    visible = readable(user)
    for domain in sorted(DEMO_DOMAINS):
        tables = insp.get_table_names(schema=domain)
        assert sorted(tables) == sorted(p for d, p in visible if d == domain), (user, domain, tables)
    # a domain the user cannot see lists like one that does not exist: no tables
    assert insp.get_table_names(schema="nowhere") == []
    assert sorted(insp.get_table_names(schema=SYSTEM_SCHEMA)) == sorted(SYSTEM_TABLES), user
    if user == "stella":
        assert visible == DEMO_PRODUCTS


@pytest.mark.parametrize("domain, product", sorted(DEMO_PRODUCTS))
def test_columns_match_the_contract(engines, domain, product):
    cols = inspect(engines("stella")).get_columns(product, schema=domain)
    declared = CONTRACT[(domain, product)]
    assert [c["name"] for c in cols] == [c.name for c in declared]
    for col, dec in zip(cols, declared):
        got = col["type"] if isinstance(col["type"], type) else type(col["type"])  # inspect() instantiates
        assert got is sqlalchemy_type(dec.type), (col["name"], col["type"], dec.type)
        if dec.nullable is not None:
            assert col["nullable"] == dec.nullable, (col["name"], col["nullable"], dec.nullable)


@pytest.mark.parametrize("user", ["ana", "carl"])
def test_columns_are_governed(engines, user):
    """Denied columns are absent from reflection; masked ones are still listed."""
    insp = inspect(engines(user))
    p = govmodel.DEMO[user]
    for domain, product in sorted(readable(user)):
        names = [c["name"] for c in insp.get_columns(product, schema=domain)]
        assert names == govmodel.visible_columns(p, domain, product), (user, domain, product, names)


def _reflection_error(insp, table, schema) -> BaseException:
    with pytest.raises(Exception) as ei:
        insp.get_columns(table, schema=schema)
    return ei.value


def test_hidden_products_reflect_like_missing_ones(engines):
    """carl (contractor) reads sales.orders only: customers.customer and supply.part fail
    in reflection exactly like products that do not exist."""
    insp = inspect(engines("carl"))
    for hidden, unknown in [(("customer", "customers"), ("clients", "customers")),
                            (("part", "supply"), ("part", "nowhere")),
                            (("lineitem", "sales"), ("lineitems", "sales"))]:
        h, u = _reflection_error(insp, *hidden), _reflection_error(insp, *unknown)
        assert type(h) is type(u) and str(h) == str(u), (describe_exc(h), describe_exc(u))
        assert not insp.has_table(hidden[0], schema=hidden[1])
    assert insp.has_table("orders", schema="sales")


def test_table_autoload_and_core_query(engines):
    """What Superset's dataset editor does: reflect a Table, then run SQLAlchemy-built SQL."""
    eng = engines("stella")
    orders = Table("orders", MetaData(), schema="sales", autoload_with=eng)
    assert [c.name for c in orders.columns] == [c.name for c in CONTRACT[("sales", "orders")]]
    q = (select(orders.c.o_orderpriority, func.count().label("n"))
         .where(orders.c.o_orderstatus == "F")
         .group_by(orders.c.o_orderpriority))
    with eng.connect() as conn:
        got = result_rows(conn.execute(q))
    assert_same_rows(got, expected_rows(
        "SELECT o_orderpriority, count(*) AS n FROM sales.orders WHERE o_orderstatus = 'F' GROUP BY o_orderpriority"))


def test_metadata_reflect_schema(engines):
    md = MetaData(schema="customers")
    md.reflect(bind=engines("stella"))
    assert {t.name for t in md.sorted_tables} == {"customer", "nation", "region"}


# --------------------------------------------------------------------------------------
# queries: the same rows as DuckDB on the files
# --------------------------------------------------------------------------------------

QUERIES = [
    "SELECT r_regionkey, r_name FROM customers.region",
    "SELECT n.n_name, count(*) AS customers, sum(c.c_acctbal) AS balance "
    "FROM customers.customer c JOIN customers.nation n ON c.c_nationkey = n.n_nationkey GROUP BY n.n_name",
    "SELECT o_orderkey, o_orderdate, o_totalprice, o_year FROM sales.orders WHERE o_orderkey < 200",
    "SELECT o_year, count(*) AS n, avg(o_totalprice) AS avg_price FROM sales.orders GROUP BY o_year",
    "SELECT s_name, s_acctbal FROM supply.supplier WHERE s_acctbal > 9000",
]


@pytest.mark.parametrize("sql", QUERIES, ids=range(len(QUERIES)))
def test_select_same_rows_as_duckdb(engines, sql):
    with engines("stella").connect() as conn:
        got = result_rows(conn.execute(text(sql)))
    assert_same_rows(got, expected_rows(sql))


def test_select_is_governed(engines):
    """ana sees her nations only, and customers' balances masked."""
    sql = "SELECT c_custkey, c_nationkey, c_acctbal FROM customers.customer"
    with engines("ana").connect() as conn:
        got = result_rows(conn.execute(text(sql)))
    assert_same_rows(got, expected_rows(sql, "ana"))


def test_whole_result_in_the_first_endpoint(engines, demo_server):
    """flightsql-dbapi reads endpoints[0] only: a large result must be complete there."""
    sql = "SELECT l_orderkey, l_linenumber FROM sales.lineitem"
    client = flight_client(demo_server.uri, user="stella")
    try:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)))
    finally:
        client.close()
    assert len(info.endpoints) == 1, len(info.endpoints)
    with engines("stella").connect() as conn:
        rows = conn.execute(text(sql)).fetchall()
    assert len(rows) == parquet_row_count(DATA / "sales" / "lineitem")


def test_bad_sql_fails_clearly_and_the_engine_goes_on(engines):
    """flightsql-dbapi does not map Flight errors to DB-API classes: SQLAlchemy re-raises
    pyarrow's exception, whose gRPC code and message are what Superset shows."""
    eng = engines("stella")
    with eng.connect() as conn:
        with pytest.raises(FLIGHT_ERRORS) as ei:
            conn.execute(text("SELECT * FROM sales.nope"))
        assert flight_grpc_code(ei.value) == "NOT_FOUND", describe_exc(ei.value)
        assert "sales.nope" in server_message(ei.value)
        with pytest.raises(FLIGHT_ERRORS) as ei:
            conn.execute(text("SELEC 1"))
        assert flight_grpc_code(ei.value) == "INVALID_ARGUMENT", describe_exc(ei.value)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM customers.region")).scalar() == 5


# --------------------------------------------------------------------------------------
# the plain DB-API
# --------------------------------------------------------------------------------------


@pytest.fixture
def dbapi_conn(demo_server):
    client = flightsql.FlightSQLClient(host="127.0.0.1", port=demo_server.port, user="sam",
                                       password=demo_password("sam"), insecure=True)
    conn = flightsql.connect(client)
    try:
        yield conn
    finally:
        conn.close()
        client.close()


def test_dbapi_cursor_execute_fetchall(dbapi_conn):
    assert flightsql.paramstyle == "qmark" and flightsql.apilevel == "2.0"
    sql = "SELECT n_nationkey, n_name, n_regionkey FROM customers.nation"
    cur = dbapi_conn.cursor()
    cur.execute(sql)
    assert [d[0] for d in cur.description] == ["n_nationkey", "n_name", "n_regionkey"]
    assert [d[1] for d in cur.description] == [sqltypes.BIGINT, sqltypes.TEXT, sqltypes.BIGINT]
    rows = cur.fetchall()
    assert_same_rows(Rows(["n_nationkey", "n_name", "n_regionkey"], [tuple(r) for r in rows]),
                     govmodel.expected("sam", sql))
    cur.execute("SELECT r_name FROM customers.region")
    first = cur.fetchone()
    rest = cur.fetchmany(10)
    assert sorted([first[0]] + [r[0] for r in rest]) == sorted(r[0] for r in duckdb_expected(
        "SELECT r_name FROM customers.region").rows)
    assert cur.fetchone() is None


def test_dbapi_parameters_never_give_wrong_rows(dbapi_conn):
    """cursor.execute(sql, params) binds through DoPut but executes the original handle (see
    the module docstring): against meshgate it must fail clearly, or be right."""
    cur = dbapi_conn.cursor()
    for sql in ["SELECT r_name FROM customers.region WHERE r_regionkey = ?",
                "SELECT r_name FROM customers.region WHERE r_regionkey = $1"]:
        try:
            cur.execute(sql, (3,))
        except FLIGHT_ERRORS as e:
            assert flight_grpc_code(e) == "INVALID_ARGUMENT", describe_exc(e)
            assert "parameter" in server_message(e), describe_exc(e)
        else:
            assert [tuple(r) for r in cur.fetchall()] == [("EUROPE",)], sql
        cur.execute("SELECT count(*) AS n FROM customers.region")  # still serving
        assert cur.fetchall() == [[5]]


# --------------------------------------------------------------------------------------
# credentials
# --------------------------------------------------------------------------------------


def _assert_unauthenticated(exc: BaseException, *messages: str) -> None:
    orig = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps DB-API errors
    assert flight_grpc_code(orig) == "UNAUTHENTICATED", describe_exc(orig)
    msg = server_message(orig)
    assert any(msg == m or msg.startswith(m + ":") for m in messages), describe_exc(orig)


def test_engine_without_credentials_is_refused_clearly(demo_server, engines):
    """No user in the URL: flightsql-dbapi sends `authorization: Bearer None`."""
    eng = create_engine(engine_url(demo_server))
    try:
        with pytest.raises(Exception) as ei:
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
        _assert_unauthenticated(ei.value, "credentials required", "invalid credentials")
        with pytest.raises(Exception) as ei:
            inspect(eng).get_schema_names()
        _assert_unauthenticated(ei.value, "credentials required", "invalid credentials")
    finally:
        eng.dispose()
    with engines("stella").connect() as conn:  # the server still serves
        assert conn.execute(text("SELECT count(*) FROM customers.region")).scalar() == 5


def test_engine_with_a_wrong_password_or_token(demo_server, engines):
    with pytest.raises(FLIGHT_ERRORS) as ei:  # the handshake runs in create_engine
        create_engine(engine_url(demo_server, "ana", "not-her-password"))
    _assert_unauthenticated(ei.value, "invalid credentials")
    eng = create_engine(engine_url(demo_server, token="not-a-token"))
    try:
        with pytest.raises(Exception) as ei:
            inspect(eng).get_schema_names()
        _assert_unauthenticated(ei.value, "invalid credentials")
    finally:
        eng.dispose()
    assert inspect(engines("ana")).get_schema_names()  # the server still serves
