"""Catalog metadata: ADBC get_objects / get_table_schema / get_table_types / get_info and the
raw Flight SQL metadata commands (GetCatalogs, GetDbSchemas, GetTables, GetSqlInfo)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mgtest import (
    DEMO_DOMAINS,
    DEMO_PRODUCTS,
    SQLINFO_IDENTIFIER_QUOTE_CHAR,
    SQLINFO_SERVER_NAME,
    SQLINFO_SERVER_READ_ONLY,
    SYSTEM_SCHEMA,
    SYSTEM_TABLE_TYPE,
    SYSTEM_TABLES,
    assert_schema_matches_contract,
    cmd_get_catalogs,
    cmd_get_db_schemas,
    cmd_get_sql_info,
    cmd_get_table_types,
    cmd_get_tables,
    flight_command,
    load_contract,
    with_system_schema,
    with_system_tables,
)

CONTRACT = load_contract()
ALLOWED_EXTRA_SCHEMAS = {"information_schema"}
PRODUCT_TABLE_TYPE = "TABLE"


def _objects(conn, **kw):
    return conn.adbc_get_objects(**kw).read_all().to_pylist()


def _mesh_catalog(objects):
    cats = [c for c in objects if c["catalog_name"] == "mesh"]
    assert len(cats) == 1, [c["catalog_name"] for c in objects]
    return cats[0]


def _schemas_by_name(catalog):
    return {s["db_schema_name"]: s for s in catalog["catalog_db_schemas"] or []}


# --------------------------------------------------------------------------------------
# ADBC
# --------------------------------------------------------------------------------------


def test_get_objects_catalogs(adbc_conn):
    objs = _objects(adbc_conn, depth="catalogs")
    assert [c["catalog_name"] for c in objs] == ["mesh"]


def test_get_objects_db_schemas(adbc_conn):
    cat = _mesh_catalog(_objects(adbc_conn, depth="db_schemas"))
    names = set(_schemas_by_name(cat))
    assert names - ALLOWED_EXTRA_SCHEMAS == with_system_schema(DEMO_DOMAINS), names


def test_get_objects_db_schema_filter(adbc_conn):
    cat = _mesh_catalog(_objects(adbc_conn, depth="db_schemas", db_schema_filter="s%"))
    assert set(_schemas_by_name(cat)) == {"sales", "supply"}


def test_get_objects_tables(adbc_conn, demo_server):
    cat = _mesh_catalog(_objects(adbc_conn, depth="tables"))
    found = {
        (s["db_schema_name"], t["table_name"]): t["table_type"]
        for s in cat["catalog_db_schemas"] or []
        for t in s["db_schema_tables"] or []
        if s["db_schema_name"] not in ALLOWED_EXTRA_SCHEMAS
    }
    assert set(found) == with_system_tables(DEMO_PRODUCTS)
    for key, table_type in found.items():
        assert table_type == (SYSTEM_TABLE_TYPE if key[0] == SYSTEM_SCHEMA else PRODUCT_TABLE_TYPE), (key, table_type)
    table_types = set(adbc_conn.adbc_get_table_types())
    assert set(found.values()) <= table_types, (set(found.values()), table_types)


def test_get_objects_table_filter(adbc_conn):
    cat = _mesh_catalog(_objects(adbc_conn, depth="tables", table_name_filter="%item"))
    found = {
        (s["db_schema_name"], t["table_name"])
        for s in cat["catalog_db_schemas"] or []
        for t in s["db_schema_tables"] or []
    }
    assert found == {("sales", "lineitem")}


@pytest.mark.parametrize("depth", ["columns", "all"])
def test_get_objects_columns(adbc_conn, depth):
    cat = _mesh_catalog(_objects(adbc_conn, depth=depth))
    schemas = _schemas_by_name(cat)
    seen = set()
    for domain in DEMO_DOMAINS:
        for t in schemas[domain]["db_schema_tables"]:
            key = (domain, t["table_name"])
            seen.add(key)
            cols = sorted(t["table_columns"] or [], key=lambda c: c["ordinal_position"])
            names = [c["column_name"] for c in cols]
            assert names == [c.name for c in CONTRACT[key]], key
            assert [c["ordinal_position"] for c in cols] == list(range(1, len(cols) + 1)), key
    assert seen == DEMO_PRODUCTS
    system = {t["table_name"]: t["table_columns"] for t in schemas[SYSTEM_SCHEMA]["db_schema_tables"] or []}
    assert set(system) == SYSTEM_TABLES
    assert all(system.values()), {name: columns for name, columns in system.items() if not columns}


def test_get_objects_column_filter(adbc_conn):
    cat = _mesh_catalog(_objects(adbc_conn, depth="columns", column_name_filter="%custkey"))
    found = set()
    for s in cat["catalog_db_schemas"] or []:
        for t in s["db_schema_tables"] or []:
            for c in t["table_columns"] or []:
                found.add((s["db_schema_name"], t["table_name"], c["column_name"]))
    assert found == {("sales", "orders", "o_custkey"), ("sales", "customer_features", "c_custkey"),
                     ("customers", "customer", "c_custkey")}


@pytest.mark.parametrize("domain, product", sorted(DEMO_PRODUCTS))
def test_get_table_schema(adbc_conn, domain, product):
    schema = adbc_conn.adbc_get_table_schema(product, db_schema_filter=domain)
    assert isinstance(schema, pa.Schema)
    assert_schema_matches_contract(schema, CONTRACT[(domain, product)], f"{domain}.{product}")


def test_get_table_schema_with_catalog(adbc_conn):
    schema = adbc_conn.adbc_get_table_schema("orders", catalog_filter="mesh", db_schema_filter="sales")
    assert schema.field("o_totalprice").type == pa.decimal128(15, 2)
    assert schema.field("o_orderdate").type == pa.date32()
    assert schema.field("o_year").type == pa.int32()
    assert schema.field("o_orderkey").nullable is False
    assert schema.field("o_comment").type == pa.string()


def test_get_table_schema_unknown(adbc_conn):
    import adbc_driver_manager

    with pytest.raises(adbc_driver_manager.Error):
        adbc_conn.adbc_get_table_schema("nope", db_schema_filter="sales")


def test_get_table_types(adbc_conn):
    types = adbc_conn.adbc_get_table_types()
    assert isinstance(types, list)
    assert sorted(types) == sorted({PRODUCT_TABLE_TYPE, SYSTEM_TABLE_TYPE}), types


def test_get_info(adbc_conn):
    info = adbc_conn.adbc_get_info()
    assert info.get("vendor_name") == "meshgate", info
    assert info.get("vendor_version"), info
    assert info.get("driver_name"), info  # from the driver itself; sanity that get_info ran


# --------------------------------------------------------------------------------------
# raw Flight SQL commands
# --------------------------------------------------------------------------------------


def test_flight_get_catalogs(flight_client):
    _, t, _ = flight_command(flight_client, cmd_get_catalogs())
    assert t.column_names == ["catalog_name"]
    assert t.column("catalog_name").to_pylist() == ["mesh"]


def test_flight_get_db_schemas(flight_client):
    _, t, _ = flight_command(flight_client, cmd_get_db_schemas())
    assert t.column_names == ["catalog_name", "db_schema_name"]
    rows = set(zip(t.column("catalog_name").to_pylist(), t.column("db_schema_name").to_pylist()))
    domains = {s for c, s in rows if c == "mesh"}
    assert domains - ALLOWED_EXTRA_SCHEMAS == with_system_schema(DEMO_DOMAINS), domains
    _, t, _ = flight_command(flight_client, cmd_get_db_schemas(catalog="mesh", db_schema_filter_pattern="cust%"))
    assert t.column("db_schema_name").to_pylist() == ["customers"]


def _decode_tables(t: pa.Table):
    out = {}
    for row in t.to_pylist():
        schema = None
        if row.get("table_schema") is not None:
            schema = pa.ipc.read_schema(pa.py_buffer(row["table_schema"]))
        out[(row["catalog_name"], row["db_schema_name"], row["table_name"])] = (row["table_type"], schema)
    return out


def test_flight_get_tables_with_schema(flight_client):
    info, t, stream_schemas = flight_command(flight_client, cmd_get_tables(include_schema=True))
    assert t.column_names == ["catalog_name", "db_schema_name", "table_name", "table_type", "table_schema"]
    assert t.schema.field("table_schema").type == pa.binary()
    assert stream_schemas[0].equals(info.schema)
    tables = _decode_tables(t)
    listed = {(d, p): v for (c, d, p), v in tables.items() if c == "mesh" and d not in ALLOWED_EXTRA_SCHEMAS}
    assert set(listed) == with_system_tables(DEMO_PRODUCTS)
    for key, (table_type, schema) in listed.items():
        assert schema is not None, key
        if key[0] == SYSTEM_SCHEMA:
            assert table_type == SYSTEM_TABLE_TYPE and len(schema) > 0, (key, table_type, schema)
        else:
            assert table_type == PRODUCT_TABLE_TYPE, (key, table_type)
            assert_schema_matches_contract(schema, CONTRACT[key], ".".join(key))


def test_flight_get_tables_without_schema(flight_client):
    _, t, _ = flight_command(flight_client, cmd_get_tables(include_schema=False))
    assert "table_schema" not in t.column_names
    assert t.column_names == ["catalog_name", "db_schema_name", "table_name", "table_type"]


def test_flight_get_tables_filters(flight_client):
    _, t, _ = flight_command(
        flight_client,
        cmd_get_tables(catalog="mesh", db_schema_filter_pattern="supply", table_name_filter_pattern="part%"),
    )
    got = set(zip(t.column("db_schema_name").to_pylist(), t.column("table_name").to_pylist()))
    assert got == {("supply", "part"), ("supply", "partsupp")}


def test_flight_get_tables_type_filter(flight_client, adbc_conn):
    _, all_t, _ = flight_command(flight_client, cmd_get_tables(catalog="mesh", db_schema_filter_pattern="sales"))
    types = set(all_t.column("table_type").to_pylist())
    assert len(types) == 1, types
    (table_type,) = types
    _, t, _ = flight_command(flight_client, cmd_get_tables(catalog="mesh", table_types=[table_type]))
    got = set(zip(t.column("db_schema_name").to_pylist(), t.column("table_name").to_pylist()))
    assert got == DEMO_PRODUCTS
    _, t, _ = flight_command(flight_client, cmd_get_tables(catalog="mesh", table_types=[SYSTEM_TABLE_TYPE]))
    got = set(zip(t.column("db_schema_name").to_pylist(), t.column("table_name").to_pylist()))
    assert got == with_system_tables(set())
    _, t, _ = flight_command(flight_client, cmd_get_tables(catalog="mesh", table_types=["NO_SUCH_TYPE"]))
    assert t.num_rows == 0


def test_flight_get_table_types(flight_client, adbc_conn):
    _, t, _ = flight_command(flight_client, cmd_get_table_types())
    assert t.column_names == ["table_type"]
    assert set(t.column("table_type").to_pylist()) == set(adbc_conn.adbc_get_table_types())


def _sql_info(client, ids):
    _, t, _ = flight_command(client, cmd_get_sql_info(ids))
    assert t.column_names == ["info_name", "value"]
    return {row["info_name"]: row["value"] for row in t.to_pylist()}


def test_flight_get_sql_info_server_name_and_read_only(flight_client):
    info = _sql_info(flight_client, [SQLINFO_SERVER_NAME, SQLINFO_SERVER_READ_ONLY])
    assert set(info) == {SQLINFO_SERVER_NAME, SQLINFO_SERVER_READ_ONLY}, info  # the id filter is honoured
    assert info[SQLINFO_SERVER_NAME] == "meshgate"
    assert info[SQLINFO_SERVER_READ_ONLY] is True


def test_flight_get_sql_info_all(flight_client):
    info = _sql_info(flight_client, [])
    assert info.get(SQLINFO_SERVER_NAME) == "meshgate"
    assert info.get(SQLINFO_SERVER_READ_ONLY) is True
    # flightsql-dbapi (SQLAlchemy/Superset) needs the identifier quote char
    assert info.get(SQLINFO_IDENTIFIER_QUOTE_CHAR) == '"', info.get(SQLINFO_IDENTIFIER_QUOTE_CHAR)
