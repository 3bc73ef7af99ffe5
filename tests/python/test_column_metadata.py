"""Column metadata: what BI tools read about a column besides its Arrow type.

GetTables(include_schema) table schemas and result schemas carry the Flight SQL field
metadata (`ARROW:FLIGHT:SQL:TYPE_NAME`, `PRECISION`, `SCALE`, `CATALOG_NAME`,
`SCHEMA_NAME`, `TABLE_NAME`, `IS_*`, `REMARKS`), and GetTables also the keys the ADBC
Go driver's default get_objects builder reads (`REMARKS`, `XDBC_NULLABLE`,
`XDBC_IS_NULLABLE`, `XDBC_COLUMN_SIZE`, `XDBC_DECIMAL_DIGITS`, ...; arrow-adbc
go/adbc/driver/internal/shared_utils.go). Remarks are the descriptor's descriptions; a
product's description is the table schema's `ARROW:FLIGHT:SQL:REMARKS`.

Clients, each through the real server:
- ADBC `adbc_get_objects(depth="all")` (xdbc_type_name and the column's table come from
  the Flight SQL keys; remarks and nullability stay null in the 1.13.0 Flight SQL driver,
  see test_get_table_schema_has_remarks_nullability_and_the_adbc_keys) and
  `adbc_get_table_schema`.
- The JDBC driver's calls (arrow-java ArrowDatabaseMetadata.getColumns: GetTables with
  include_schema, TYPE_NAME/PRECISION/SCALE/REMARKS read from each field; the prepared
  statement's dataset schema, GetFlightInfo's schema and DoGet's for ResultSetMetaData).
- SQLAlchemy reflection through flightsql-dbapi (test_sqlalchemy's path). sqlalchemy-adbc,
  the dialect that reflects from `adbc_get_objects` (a column's type from xdbc_type_name),
  needs SQLAlchemy 2 while flightsql-dbapi pins SQLAlchemy < 2, so the two cannot share
  this venv; the get_objects field it reads types from is asserted here directly.

Governance: descriptions of denied columns and of hidden products never appear; a masked
column's type name is its masked type.
"""

from __future__ import annotations

import copy

import pyarrow as pa
import pyarrow.flight as flight
import pytest
import yaml

import flightsql.sqlalchemy  # noqa: F401  registers the datafusion+flightsql dialect
from sqlalchemy import create_engine, inspect

from mgtest import (
    current_versions,
    DEMO_CONFIG,
    DEMO_PRODUCTS,
    SYSTEM_SCHEMA,
    SYSTEM_TABLES,
    adbc_connect,
    cmd_get_tables,
    cmd_prepared_statement_query,
    demo_mesh_doc,
    demo_password,
    flight_client,
    flight_command,
    flight_sql_query,
    load_contract,
    pack_any,
    pb_field,
    pb_string,
    with_system_tables,
)

CONTRACT = load_contract()
KEY = "ARROW:FLIGHT:SQL:"
# The SQL type names meshgate announces for each Arrow type of the demo mesh.
TYPE_NAMES = {
    pa.bool_(): "BOOLEAN", pa.int32(): "INTEGER", pa.int64(): "BIGINT", pa.float64(): "DOUBLE",
    pa.string(): "VARCHAR", pa.date32(): "DATE", pa.timestamp("us"): "TIMESTAMP",
}


def type_name(arrow_type: pa.DataType) -> str:
    return "DECIMAL" if pa.types.is_decimal(arrow_type) else TYPE_NAMES[arrow_type]


def descriptors(config=DEMO_CONFIG) -> dict[tuple[str, str], dict]:
    """(domain, product) -> its descriptor, as written in the YAML files."""
    doc = yaml.safe_load(config.read_text())
    out = {}
    for domain, d in doc["domains"].items():
        products = list(d.get("products") or [])
        if d.get("products_dir"):
            folder = (config.parent / d["products_dir"]).resolve()
            products += [yaml.safe_load(f.read_text()) for f in sorted(folder.glob("*.yaml"))]
        for p in current_versions(products):
            out[(domain, p["name"])] = p
    return out


DESCRIPTORS = descriptors()


def column_description(domain: str, product: str, column: str) -> str | None:
    for c in DESCRIPTORS[(domain, product)].get("schema") or []:
        if c["name"] == column:
            return c.get("description") or None
    return None


def meta(field: pa.Field) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}


def assert_includes(actual: dict[str, str], expected: dict[str, str], what: str) -> None:
    wrong = {k: (actual.get(k), v) for k, v in expected.items() if actual.get(k) != v}
    assert not wrong, f"{what}: (sent, expected) {wrong}"


def mesh_columns(objects: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """(schema, table) -> get_objects columns, in ordinal order: the products, and the
    system tables under SYSTEM_SCHEMA."""
    out = {}
    for catalog in objects:
        if catalog["catalog_name"] != "mesh":
            continue
        for schema in catalog["catalog_db_schemas"] or []:
            for table in schema["db_schema_tables"] or []:
                columns = sorted(table["table_columns"] or [], key=lambda c: c["ordinal_position"])
                out[(schema["db_schema_name"], table["table_name"])] = columns
    return out


def products_only(tables: dict[tuple[str, str], object]) -> dict[tuple[str, str], object]:
    """`tables` without the system tables, after checking they are all listed."""
    assert {t for s, t in tables if s == SYSTEM_SCHEMA} == SYSTEM_TABLES, sorted(tables)
    return {key: value for key, value in tables.items() if key[0] != SYSTEM_SCHEMA}


def table_schemas(client: flight.FlightClient, **filters) -> dict[tuple[str, str], pa.Schema]:
    """GetTables(include_schema=true) as the JDBC driver's getColumns reads it: the
    products, and the system tables under SYSTEM_SCHEMA."""
    _, t, _ = flight_command(client, cmd_get_tables(None, include_schema=True, **filters))
    return {(r["db_schema_name"], r["table_name"]): pa.ipc.read_schema(pa.py_buffer(r["table_schema"]))
            for r in t.to_pylist() if r["catalog_name"] == "mesh"}


# --------------------------------------------------------------------------------------
# ADBC
# --------------------------------------------------------------------------------------


def test_get_objects_columns_have_type_names(adbc_conn):
    """What sqlalchemy-adbc reflects a column's type from: xdbc_type_name."""
    columns = products_only(mesh_columns(adbc_conn.adbc_get_objects(depth="all").read_all().to_pylist()))
    assert set(columns) == DEMO_PRODUCTS
    for (domain, product), declared in CONTRACT.items():
        got = columns[(domain, product)]
        assert [c["column_name"] for c in got] == [c.name for c in declared]
        for column, want in zip(got, declared):
            where = f"{domain}.{product}.{want.name}"
            assert column["xdbc_type_name"] == type_name(want.type), where
            assert (column["xdbc_scope_catalog"], column["xdbc_scope_schema"], column["xdbc_scope_table"]) == (
                "mesh", domain, product), where
            assert column["xdbc_is_autoincrement"] is False, where


def test_get_table_schema_has_remarks_nullability_and_the_adbc_keys(adbc_conn):
    """Remarks and nullability as the driver returns the table schema. Its get_objects
    leaves remarks, xdbc_nullable and xdbc_is_nullable null for Flight SQL (1.13.0:
    flightSqlMetadata.SetMetadata does not hand the metadata to the default builder that
    reads REMARKS and XDBC_*), so the keys it would read are checked here."""
    for (domain, product), declared in CONTRACT.items():
        schema = adbc_conn.adbc_get_table_schema(product, db_schema_filter=domain)
        for want in declared:
            where = f"{domain}.{product}.{want.name}"
            field = schema.field(want.name)
            m = meta(field)
            description = column_description(domain, product, want.name)
            assert m.get(KEY + "REMARKS") == description == m.get("REMARKS"), where
            if want.nullable is False:
                assert not field.nullable, f"{where} is declared NOT NULL"
            assert_includes(m, {"XDBC_NULLABLE": str(int(field.nullable)),
                                "XDBC_IS_NULLABLE": "YES" if field.nullable else "NO"}, where)
            if pa.types.is_decimal(want.type):
                assert_includes(m, {"XDBC_COLUMN_SIZE": str(want.type.precision),
                                    "XDBC_DECIMAL_DIGITS": str(want.type.scale), "XDBC_NUM_PREC_RADIX": "10"}, where)
            if want.type == pa.date32():
                assert_includes(m, {"XDBC_COLUMN_SIZE": "10", "XDBC_DATETIME_SUB": "1"}, where)


def xdbc_type_names(client: flight.FlightClient) -> set[str]:
    _, types, _ = flight_command(client, pack_any("CommandGetXdbcTypeInfo", b""))
    return set(types.column("type_name").to_pylist())


def assert_type_names_listed(schemas: dict[str, pa.Schema], announced: set[str]) -> None:
    """Every column of `schemas` (named by where it comes from) has a TYPE_NAME, and
    GetXdbcTypeInfo lists it."""
    untyped = [f"{where}.{f.name}" for where, schema in schemas.items() for f in schema
               if KEY + "TYPE_NAME" not in meta(f)]
    unlisted = {}
    for where, schema in schemas.items():
        for f in schema:
            name = meta(f).get(KEY + "TYPE_NAME")
            if name is not None and name not in announced:
                unlisted.setdefault(name, []).append(f"{where}.{f.name} ({f.type})")
    assert not untyped and not unlisted, (
        f"columns without a TYPE_NAME: {untyped}\n"
        f"type names GetXdbcTypeInfo does not list ({sorted(announced)}), with their columns: {unlisted}")


def test_type_names_are_the_ones_get_xdbc_type_info_lists(demo_server):
    client = flight_client(demo_server.uri, user="stella")
    try:
        announced = xdbc_type_names(client)
        schemas = {".".join(key): schema for key, schema in products_only(table_schemas(client)).items()}
    finally:
        client.close()
    assert len(schemas) == len(DEMO_PRODUCTS)
    assert_type_names_listed(schemas, announced)


def test_system_table_type_names_are_the_ones_get_xdbc_type_info_lists(demo_server):
    """The system tables' columns (text lists, timestamps with a zone among them), as
    GetTables describes them and as a query over them returns them."""
    client = flight_client(demo_server.uri, user="stella")
    try:
        announced = xdbc_type_names(client)
        listed = table_schemas(client, db_schema_filter_pattern=SYSTEM_SCHEMA)
        schemas = {f"GetTables {s}.{t}": schema for (s, t), schema in listed.items()}
        for table in sorted(SYSTEM_TABLES):
            result = flight_sql_query(client, f"SELECT * FROM {SYSTEM_SCHEMA}.{table} LIMIT 0").schema
            schemas[f"result of {SYSTEM_SCHEMA}.{table}"] = result
    finally:
        client.close()
    assert set(listed) == with_system_tables(set())
    assert_type_names_listed(schemas, announced)


def test_get_table_schema_carries_descriptions(adbc_conn):
    schema = adbc_conn.adbc_get_table_schema("orders", db_schema_filter="sales")
    assert_includes(meta(schema.field("o_totalprice")), {
        KEY + "CATALOG_NAME": "mesh", KEY + "SCHEMA_NAME": "sales", KEY + "TABLE_NAME": "orders",
        KEY + "TYPE_NAME": "DECIMAL", KEY + "PRECISION": "15", KEY + "SCALE": "2",
        KEY + "IS_READ_ONLY": "1", KEY + "IS_AUTO_INCREMENT": "0", KEY + "IS_SEARCHABLE": "1",
        KEY + "IS_CASE_SENSITIVE": "0", KEY + "REMARKS": column_description("sales", "orders", "o_totalprice"),
    }, "o_totalprice")
    assert KEY + "REMARKS" not in meta(schema.field("o_comment")), "o_comment has no description"
    assert meta(schema.field("o_comment"))[KEY + "IS_CASE_SENSITIVE"] == "1"
    product = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    assert product.get(KEY + "REMARKS") == DESCRIPTORS[("sales", "orders")]["description"]


# --------------------------------------------------------------------------------------
# the JDBC driver's calls
# --------------------------------------------------------------------------------------


def test_jdbc_get_columns_reads_type_size_scale_and_remarks(demo_server):
    """ArrowDatabaseMetadata.getColumns: TYPE_NAME, COLUMN_SIZE (PRECISION), DECIMAL_DIGITS
    (SCALE) and REMARKS from each field's metadata, IS_NULLABLE from the field."""
    client = flight_client(demo_server.uri, user="stella")
    try:
        schemas = products_only(table_schemas(client, db_schema_filter_pattern="%", table_name_filter_pattern="%"))
    finally:
        client.close()
    assert set(schemas) == DEMO_PRODUCTS
    for (domain, product), declared in CONTRACT.items():
        for want in declared:
            m = meta(schemas[(domain, product)].field(want.name))
            where = f"{domain}.{product}.{want.name}"
            assert m[KEY + "TYPE_NAME"] == type_name(want.type), where
            assert m.get(KEY + "REMARKS") == column_description(domain, product, want.name), where
            assert (m[KEY + "SCHEMA_NAME"], m[KEY + "TABLE_NAME"]) == (domain, product), where
            if pa.types.is_decimal(want.type):
                assert (m[KEY + "PRECISION"], m[KEY + "SCALE"]) == (str(want.type.precision), str(want.type.scale))
            if want.type == pa.int64():
                assert (m[KEY + "PRECISION"], m[KEY + "SCALE"]) == ("19", "0"), where


RESULT_SQL = ("SELECT o.o_orderkey, o.o_totalprice, o.o_totalprice * 2 AS doubled, c.c_name AS buyer, "
              "count(*) OVER () AS n FROM sales.orders o JOIN customers.customer c ON o.o_custkey = c.c_custkey "
              "WHERE o.o_orderkey < 100")


def check_result_metadata(schema: pa.Schema) -> None:
    m = {f.name: meta(f) for f in schema}
    assert_includes(m["o_orderkey"], {
        KEY + "CATALOG_NAME": "mesh", KEY + "SCHEMA_NAME": "sales", KEY + "TABLE_NAME": "orders",
        KEY + "TYPE_NAME": "BIGINT", KEY + "REMARKS": column_description("sales", "orders", "o_orderkey"),
    }, "o_orderkey")
    assert (m["o_totalprice"][KEY + "TYPE_NAME"], m["o_totalprice"][KEY + "TABLE_NAME"]) == ("DECIMAL", "orders")
    assert (m["buyer"][KEY + "TABLE_NAME"], m["buyer"][KEY + "REMARKS"]) == (
        "customer", column_description("customers", "customer", "c_name")), "an alias of a column is that column"
    for computed in ("doubled", "n"):
        assert KEY + "TYPE_NAME" in m[computed], computed
        assert not {KEY + "TABLE_NAME", KEY + "REMARKS"} & set(m[computed]), (computed, m[computed])
    assert m["doubled"][KEY + "TYPE_NAME"] == "DECIMAL" and m["n"][KEY + "TYPE_NAME"] == "BIGINT"


def test_jdbc_result_set_metadata_is_the_same_in_every_call(demo_server):
    """CreatePreparedStatement's dataset schema (ResultSetMetaData before execution),
    GetFlightInfo's schema and DoGet's stream schema: one schema, metadata included."""
    client = flight_client(demo_server.uri, user="stella")
    try:
        action = flight.Action("CreatePreparedStatement",
                               pack_any("ActionCreatePreparedStatementRequest", pb_string(1, RESULT_SQL)))
        result = pb_field(list(client.do_action(action))[0].body.to_pybytes(), 2)
        handle, dataset = pb_field(result, 1), pa.ipc.read_schema(pa.py_buffer(pb_field(result, 2)))
        prepared_info, _, prepared_streams = flight_command(client, cmd_prepared_statement_query(handle))
        info, table, streams = flight_command(client, pack_any("CommandStatementQuery", pb_string(1, RESULT_SQL)))
    finally:
        client.close()
    assert table.num_rows > 0
    check_result_metadata(info.schema)
    for other in [dataset, prepared_info.schema, *prepared_streams, *streams, table.schema]:
        assert other.equals(info.schema, check_metadata=True), f"{other}\n!=\n{info.schema}"


def test_adbc_results_carry_the_metadata(demo_server):
    conn = adbc_connect(demo_server.uri, user="stella")
    try:
        with conn.cursor() as cur:
            cur.execute(RESULT_SQL)
            check_result_metadata(cur.fetch_arrow_table().schema)
    finally:
        conn.close()


def test_unqualified_tables_resolve_in_the_session_schema(demo_server):
    client = flight_client(demo_server.uri, user="stella")
    try:
        options = flight.FlightCallOptions(headers=[(b"x-meshgate-schema", b"sales")])
        info, _, streams = flight_command(
            client, pack_any("CommandStatementQuery", pb_string(1, "SELECT o_orderkey FROM orders LIMIT 1")), options)
    finally:
        client.close()
    assert_includes(meta(info.schema.field("o_orderkey")), {
        KEY + "SCHEMA_NAME": "sales", KEY + "TABLE_NAME": "orders",
        KEY + "REMARKS": column_description("sales", "orders", "o_orderkey")}, "o_orderkey")
    assert streams[0].equals(info.schema, check_metadata=True)


# --------------------------------------------------------------------------------------
# SQLAlchemy
# --------------------------------------------------------------------------------------


def test_sqlalchemy_reflection_reads_the_described_schemas(demo_server, adbc_conn):
    """The dialect decodes the first table_schema GetTables answers: the described schema
    reflects with the names, nullability and types of the product's columns."""
    engine = create_engine(f"datafusion+flightsql://stella:{demo_password('stella')}@127.0.0.1:{demo_server.port}"
                           "?insecure=True")
    try:
        columns = inspect(engine).get_columns("orders", schema="sales")
    finally:
        engine.dispose()
    schema = adbc_conn.adbc_get_table_schema("orders", db_schema_filter="sales")
    assert [(c["name"], c["nullable"]) for c in columns] == [(f.name, f.nullable) for f in schema]
    assert [c.name for c in CONTRACT[("sales", "orders")]] == schema.names
    assert all(type(c["type"]).__name__ != "NullType" for c in columns), columns


# --------------------------------------------------------------------------------------
# governance
# --------------------------------------------------------------------------------------

DENIED_REMARK = "Free-text notes about the customer, for the steward only"
HIDDEN_REMARK = "Region id (0-4)"  # customers.region.r_regionkey


@pytest.fixture(scope="module")
def described_server(start_server, tmp_path_factory):
    """The demo mesh with a description on customer.c_comment, a column only stewards see."""
    doc = demo_mesh_doc()
    for product in doc["domains"]["customers"]["products"]:
        if product["name"] == "customer":
            for column in product["schema"]:
                if column["name"] == "c_comment":
                    column["description"] = DENIED_REMARK
    path = tmp_path_factory.mktemp("described") / "mesh.yaml"
    path.write_text(yaml.safe_dump(copy.deepcopy(doc), sort_keys=False))
    srv = start_server(path, name="described")
    yield srv
    srv.stop(check=True)


def all_metadata_text(uri: str, user: str) -> str:
    client = flight_client(uri, user=user)
    try:
        schemas = table_schemas(client)
    finally:
        client.close()
    return "\n".join(f"{k}={v}" for s in schemas.values()
                     for k, v in list((s.metadata or {}).items()) + [kv for f in s for kv in (f.metadata or {}).items()])


def test_denied_columns_and_hidden_products_are_not_described(described_server):
    stella = all_metadata_text(described_server.uri, "stella")
    assert DENIED_REMARK in stella and HIDDEN_REMARK in stella, "the steward sees both"
    ana = all_metadata_text(described_server.uri, "ana")
    assert DENIED_REMARK not in ana, "ana cannot see c_comment"
    carl = all_metadata_text(described_server.uri, "carl")
    visible = {column_description("sales", "orders", c.name) for c in CONTRACT[("sales", "orders")]}
    hidden = {column_description(d, p, c.name) for (d, p), cols in CONTRACT.items() if (d, p) != ("sales", "orders")
              for c in cols} | {desc["description"] for key, desc in DESCRIPTORS.items() if key != ("sales", "orders")}
    leaked = {text for text in hidden - visible - {None} if text in carl}
    assert not leaked and DENIED_REMARK not in carl, leaked

    conn = adbc_connect(described_server.uri, user="ana")
    try:
        columns = mesh_columns(conn.adbc_get_objects(depth="all").read_all().to_pylist())
    finally:
        conn.close()
    customer = {c["column_name"]: c for c in columns[("customers", "customer")]}
    assert "c_comment" not in customer
    # Masked for ana: c_acctbal is text ('overdrawn' / 'in credit').
    assert customer["c_acctbal"]["xdbc_type_name"] == "VARCHAR"
    assert customer["c_custkey"]["xdbc_type_name"] == "BIGINT"


def test_a_masked_column_in_a_result_has_its_masked_type(described_server):
    client = flight_client(described_server.uri, user="ana")
    try:
        info, table, streams = flight_command(
            client, pack_any("CommandStatementQuery", pb_string(1, "SELECT c_acctbal FROM customers.customer")))
    finally:
        client.close()
    field = info.schema.field("c_acctbal")
    assert field.type == pa.string() and meta(field)[KEY + "TYPE_NAME"] == "VARCHAR"
    assert meta(field)[KEY + "TABLE_NAME"] == "customer"
    assert streams[0].equals(info.schema, check_metadata=True)
