"""`meshgate serve --view-types`: how strings reach clients.

With the flag, strings travel as Arrow string_view, and the same type is announced
everywhere a client learns a schema: the FlightInfo schema, the DoGet stream, a
prepared statement's dataset_schema and GetTables' table_schema. Without it (the
default), all four say plain string (utf8). Either way ADBC reads the results, the
values are DuckDB's, and governance (row filters, masks) is unchanged.

Temporal columns keep the Parquet files' exact type (unit and time zone) through DoGet
on both servers. The demo data has dates and no timestamps (testdata/README.md), so the
date columns are what is checked today; a timestamp column added to a product is
checked the same way without changing this file.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

import govmodel
from mgtest import (
    DATA,
    DEMO_CONFIG,
    DEMO_PRODUCTS,
    adbc_connect,
    assert_same_rows,
    cmd_get_tables,
    cmd_statement_query,
    demo_mesh_doc,
    duckdb_expected,
    flight_client,
    flight_command,
    load_contract,
    pack_any,
    pb_field,
    pb_string,
    with_open_governance,
    write_yaml,
)

TEXT = {"plain": pa.string(), "views": pa.string_view()}
STRINGY = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
CONTRACT = load_contract()
PRODUCTS = sorted(DEMO_PRODUCTS)
# the demo products without a text column (their other columns are still checked)
WITHOUT_TEXT = {("sales", "customer_features")}


def _parquet_dir(domain: str, product: str) -> Path:
    return DATA / domain / product


def _temporal_columns(domain: str, product: str) -> dict[str, pa.DataType]:
    files = sorted(_parquet_dir(domain, product).rglob("*.parquet"))
    if not files:
        return {}
    schema = pq.read_schema(files[0])
    return {f.name: f.type for f in schema if pa.types.is_temporal(f.type)}


TEMPORAL_PRODUCTS = [p for p in PRODUCTS if _temporal_columns(*p)]


@pytest.fixture(scope="module")
def servers(start_server):
    """The demo mesh twice, with the tests' mask keys: default, and --view-types."""
    plain = start_server(DEMO_CONFIG, env=govmodel.MASK_ENV, name="strings-plain")
    views = start_server(DEMO_CONFIG, env=govmodel.MASK_ENV, name="strings-views", args=["--view-types"])
    yield {"plain": plain, "views": views}
    plain.stop(check=True)
    views.stop(check=True)


# --------------------------------------------------------------------------------------
# the four places a client learns a schema
# --------------------------------------------------------------------------------------


def prepared_dataset_schema(client, sql: str) -> pa.Schema:
    """ActionCreatePreparedStatementResult.dataset_schema (field 2), an IPC schema."""
    action = flight.Action("CreatePreparedStatement",
                           pack_any("ActionCreatePreparedStatementRequest", pb_string(1, sql)))
    results = list(client.do_action(action))
    result = pb_field(results[0].body.to_pybytes(), 2)  # Any.value
    return pa.ipc.read_schema(pa.py_buffer(pb_field(result, 2)))


def get_tables_schemas(client) -> dict[tuple[str, str], pa.Schema]:
    _info, table, _ = flight_command(client, cmd_get_tables(include_schema=True))
    return {(row["db_schema_name"], row["table_name"]): pa.ipc.read_schema(pa.py_buffer(row["table_schema"]))
            for row in table.to_pylist()}


def schemas_seen(client, sql: str, product: tuple[str, str] | None = None) -> dict[str, pa.Schema]:
    info, _table, streams = flight_command(client, cmd_statement_query(sql))
    seen = {"FlightInfo": info.schema, "DoGet": streams[0], "prepared": prepared_dataset_schema(client, sql)}
    if product is not None:
        seen["GetTables"] = get_tables_schemas(client)[product]
    return seen


def text_columns(domain: str, product: str) -> list[str]:
    return [c.name for c in CONTRACT[(domain, product)] if pa.types.is_string(c.type)]


@pytest.mark.parametrize("kind", ["plain", "views"])
@pytest.mark.parametrize("product", PRODUCTS, ids=[f"{d}.{p}" for d, p in PRODUCTS])
def test_strings_have_one_type_everywhere(servers, kind, product):
    domain, name = product
    client = flight_client(servers[kind].uri, "stella")
    try:
        seen = schemas_seen(client, f"SELECT * FROM {domain}.{name}", product)
    finally:
        client.close()
    declared = {c.name: c.type for c in CONTRACT[product]}
    texts = text_columns(domain, name)
    assert bool(texts) != (product in WITHOUT_TEXT), f"{domain}.{name}: text columns {texts}"
    wrong = {
        (where, field.name): str(field.type)
        for where, schema in seen.items()
        for field in schema
        if field.name in texts and field.type != TEXT[kind]
    }
    assert not wrong, f"--{kind}: text columns not {TEXT[kind]}: {wrong}"
    # everything else is exactly the declared type, on both servers
    for where, schema in seen.items():
        assert schema.names == list(declared), (where, schema.names)
        for field in schema:
            if field.name not in texts:
                assert field.type == declared[field.name], (where, field.name, field.type)


@pytest.mark.parametrize("kind", ["plain", "views"])
def test_computed_strings_have_the_same_type(servers, kind):
    sql = ("SELECT upper(n_name) AS shout, n_name || '!' AS excl, 'lit' AS lit, "
           "CAST(n_nationkey AS VARCHAR) AS key_text FROM customers.nation")
    client = flight_client(servers[kind].uri, "stella")
    try:
        seen = schemas_seen(client, sql)
        got = flight_command(client, cmd_statement_query(sql))[1]
    finally:
        client.close()
    for where, schema in seen.items():
        assert [f.type for f in schema] == [TEXT[kind]] * 4, f"{where}: {schema}"
    assert_same_rows(got, duckdb_expected(sql))


# --------------------------------------------------------------------------------------
# clients read both, values and governance unchanged
# --------------------------------------------------------------------------------------

ADBC_QUERIES = [
    "SELECT * FROM sales.orders",
    "SELECT * FROM supply.supplier",
    "SELECT n.n_name, r.r_name, count(*) AS customers FROM customers.customer c "
    "JOIN customers.nation n ON c.c_nationkey = n.n_nationkey "
    "JOIN customers.region r ON n.n_regionkey = r.r_regionkey GROUP BY n.n_name, r.r_name",
]


@pytest.mark.parametrize("kind", ["plain", "views"])
@pytest.mark.parametrize("sql", ADBC_QUERIES, ids=["orders", "supplier-csv", "join"])
def test_adbc_reads_the_results_and_values_are_duckdbs(servers, kind, sql):
    conn = adbc_connect(servers[kind].uri, "stella")
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            table = cur.fetch_arrow_table()
    finally:
        conn.close()
    assert_same_rows(table, duckdb_expected(sql))
    texts = [f for f in table.schema if any(is_(f.type) for is_ in STRINGY)]
    assert texts and all(f.type == TEXT[kind] for f in texts), table.schema


GOVERNED = [
    # keyed hashes, balance buckets, the row filter on the market segment
    ("ana", "SELECT c_custkey, c_name, c_email, c_acctbal, c_mktsegment FROM customers.customer"),
    # clerk names as ****…123, prices in buckets, dates truncated, rows filtered
    ("carl", "SELECT o_orderkey, o_clerk, o_totalprice, o_orderdate, o_orderpriority FROM sales.orders"),
    # s_name shown in part, phone redacted
    ("sam", "SELECT s_suppkey, s_name, s_phone, s_acctbal FROM supply.supplier"),
]


@pytest.mark.parametrize("user, sql", GOVERNED, ids=[u for u, _ in GOVERNED])
def test_governance_is_the_same_with_view_types(servers, user, sql):
    results = {}
    for kind, server in servers.items():
        client = flight_client(server.uri, user)
        try:
            results[kind] = flight_command(client, cmd_statement_query(sql))[1]
        finally:
            client.close()
        assert_same_rows(results[kind], govmodel.expected(user, sql))
    assert_same_rows(results["views"], results["plain"])


# --------------------------------------------------------------------------------------
# temporal types
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["plain", "views"])
@pytest.mark.parametrize("product", TEMPORAL_PRODUCTS, ids=[f"{d}.{p}" for d, p in TEMPORAL_PRODUCTS])
def test_temporal_columns_keep_the_parquet_type(servers, kind, product):
    domain, name = product
    temporal = _temporal_columns(domain, name)
    sql = f"SELECT {', '.join(temporal)} FROM {domain}.{name}"
    client = flight_client(servers[kind].uri, "stella")
    try:
        info, table, streams = flight_command(client, cmd_statement_query(sql))
    finally:
        client.close()
    for col, parquet_type in temporal.items():
        assert streams[0].field(col).type == parquet_type, (col, streams[0].field(col).type, parquet_type)
        assert info.schema.field(col).type == parquet_type
        if pa.types.is_timestamp(parquet_type):
            assert (streams[0].field(col).type.unit, streams[0].field(col).type.tz) == (parquet_type.unit, parquet_type.tz)
    assert_same_rows(table, duckdb_expected(sql))


def test_the_demo_has_temporal_columns():
    """Guards the test above against checking nothing."""
    assert TEMPORAL_PRODUCTS, "no Parquet product of the demo has a temporal column"


# --------------------------------------------------------------------------------------
# a product without a declared schema: the Parquet reader's own types
# --------------------------------------------------------------------------------------


def _served_both_ways(start_server, cfg, name: str):
    """`cfg` served by default (plain strings) and with --view-types; stopped after."""
    servers = {
        "plain": start_server(cfg, name=f"{name}-plain"),
        "views": start_server(cfg, name=f"{name}-views", args=["--view-types"]),
    }
    yield servers
    for server in servers.values():
        server.stop(check=True)


@pytest.fixture(scope="module")
def undeclared(start_server, tmp_path_factory):
    """A mesh whose product declares no schema (open governance), served both ways."""
    root = tmp_path_factory.mktemp("undeclared")
    doc = with_open_governance({"catalog": "mesh", "domains": {"geo": {"owner": "qa@example.com", "products": [
        {"name": "nation", "location": f"{_parquet_dir('customers', 'nation')}/", "format": "parquet"},
    ]}}})
    cfg = write_yaml(root / "mesh.yaml", doc)
    yield from _served_both_ways(start_server, cfg, "undeclared")


def _assert_one_string_type(server, kind):
    client = flight_client(server.uri)
    try:
        seen = schemas_seen(client, "SELECT * FROM geo.nation", ("geo", "nation"))
        table = flight_command(client, cmd_statement_query("SELECT * FROM geo.nation"))[1]
    finally:
        client.close()
    for where, schema in seen.items():
        assert schema.field("n_name").type == TEXT[kind], f"{where}: {schema}"
        assert schema.field("n_comment").type == TEXT[kind], f"{where}: {schema}"
    assert_same_rows(table, duckdb_expected("SELECT * FROM customers.nation"))
    conn = adbc_connect(server.uri)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM geo.nation")
            adbc_table = cur.fetch_arrow_table()
    finally:
        conn.close()
    assert adbc_table.schema.field("n_name").type == TEXT[kind]
    assert_same_rows(adbc_table, duckdb_expected("SELECT * FROM customers.nation"))


@pytest.mark.parametrize("kind", ["plain", "views"])
def test_an_undeclared_parquet_product_has_one_string_type_everywhere(undeclared, kind):
    _assert_one_string_type(undeclared[kind], kind)


@pytest.fixture(scope="module")
def view_hinted(start_server, tmp_path_factory):
    """The same product from files written out of string views (as DataFusion and
    tpchgen write them: the footer's Arrow schema says string_view), served both ways."""
    root = tmp_path_factory.mktemp("view-hinted")
    table = pq.read_table(_parquet_dir("customers", "nation"))
    views = pa.schema([f.with_type(pa.string_view()) if pa.types.is_string(f.type) else f for f in table.schema])
    (root / "nation").mkdir()
    pq.write_table(table.cast(views), root / "nation" / "part-0.parquet")
    assert pq.read_schema(root / "nation" / "part-0.parquet").field("n_name").type == pa.string_view()
    doc = with_open_governance({"catalog": "mesh", "domains": {"geo": {"owner": "qa@example.com", "products": [
        {"name": "nation", "location": f"{root / 'nation'}/", "format": "parquet"},
    ]}}})
    cfg = write_yaml(root / "mesh.yaml", doc)
    yield from _served_both_ways(start_server, cfg, "view-hinted")


@pytest.mark.parametrize("kind", ["plain", "views"])
def test_files_written_from_string_views_follow_the_server_not_the_writer(view_hinted, kind):
    """Without --view-types the table, every schema a client sees and the stream are
    plain strings even though the files say string_view; with it, views throughout."""
    _assert_one_string_type(view_hinted[kind], kind)


GEO_POLICY = """\
grants:
  - { id: readers, effect: permit, when: "'analyst' in principal.groups or 'steward' in principal.groups" }
row_filters:
  - { id: stewards-all, mode: permissive, when: "'steward' in principal.groups", filter: "true" }
  - { id: own-region, mode: permissive, filter: "n_regionkey = principal.region_key" }
columns:
  - { id: everything, select: "*", action: allow }
  - id: name-last-letters
    select: [n_name]
    action: { mask: show_last, n: 3 }
    unless: "'steward' in principal.groups"
  - id: comments-stewards-only
    select: [n_comment]
    action: deny
    unless: "'steward' in principal.groups"
"""


@pytest.fixture(scope="module")
def governed_undeclared(start_server, tmp_path_factory):
    """The demo users, one undeclared Parquet product and a policy with a row filter, a
    string mask and a denied string column; served both ways."""
    root = tmp_path_factory.mktemp("governed-undeclared")
    (root / "geo.yaml").write_text(GEO_POLICY)
    doc = demo_mesh_doc()
    doc["governance"]["policies"] = [str(root / "geo.yaml")]
    doc["domains"] = {"geo": {"owner": "qa@example.com", "products": [
        {"name": "nation", "location": f"{_parquet_dir('customers', 'nation')}/", "format": "parquet"},
    ]}}
    cfg = write_yaml(root / "mesh.yaml", doc)
    yield from _served_both_ways(start_server, cfg, "governed")


@pytest.mark.parametrize("kind", ["plain", "views"])
def test_governance_applies_to_view_columns(governed_undeclared, kind):
    """ana (region 3) reads her region's nations, names masked to the last 3 letters,
    no comments; stella reads everything; string columns are the server's type."""
    sql = "SELECT * FROM geo.nation"
    ana = flight_client(governed_undeclared[kind].uri, "ana")
    stella = flight_client(governed_undeclared[kind].uri, "stella")
    try:
        got = flight_command(ana, cmd_statement_query(sql))[1]
        everything = flight_command(stella, cmd_statement_query(sql))[1]
        probe = cmd_statement_query("SELECT n_nationkey FROM geo.nation WHERE n_name LIKE 'GER%'")
        ana_probe = flight_command(ana, probe)[1]
        stella_probe = flight_command(stella, probe)[1]
    finally:
        ana.close()
        stella.close()
    assert got.schema.names == ["n_nationkey", "n_name", "n_regionkey"]
    assert got.schema.field("n_name").type == TEXT[kind]
    assert_same_rows(got, duckdb_expected(
        "SELECT n_nationkey, repeat('*', greatest(length(n_name) - 3, 0)) || right(n_name, 3) AS n_name, "
        "n_regionkey FROM customers.nation WHERE n_regionkey = 3"))
    assert_same_rows(everything, duckdb_expected("SELECT * FROM customers.nation"))
    assert everything.schema.field("n_comment").type == TEXT[kind]
    # a filter on the masked column sees the masked value: GERMANY is ****ANY to ana
    assert ana_probe.num_rows == 0
    assert stella_probe.column("n_nationkey").to_pylist() == [
        r[0] for r in duckdb_expected("SELECT n_nationkey FROM customers.nation WHERE n_name LIKE 'GER%'").rows]
