"""The `mesh_catalog` system tables, through the real server with ADBC and pyarrow.flight.

Governed like data: a principal sees rows only about the products and columns they may
read (a forbidden product is absent from every table, a denied column absent from
`columns`), figures about a whole product only when no row is hidden from them, and
whether a column is masked for them, never the policy behind it. The same tables are
listed by the Flight SQL metadata commands.
"""

from __future__ import annotations

import time

import pytest
import yaml

from mgtest import (
    DEMO_CONFIG,
    DEMO_PRODUCTS,
    SYSTEM_TABLES,
    adbc_connect,
    cmd_get_db_schemas,
    cmd_get_tables,
    demo_mesh_doc,
    flight_client,
    flight_command,
    flight_grpc_code,
    flight_sql_query,
    run_meshgate,
)

@pytest.fixture(scope="module")
def users(demo_server):
    clients = {name: flight_client(demo_server.uri, name) for name in ("ana", "carl", "stella")}
    yield clients
    for client in clients.values():
        client.close()


def rows(client, sql):
    return flight_sql_query(client, sql).to_pylist()


def products_of(client):
    return {(r["domain"], r["name"]) for r in rows(client, "SELECT domain, name FROM mesh_catalog.products")}


def test_products_lists_exactly_what_each_principal_may_read(users):
    assert products_of(users["stella"]) == DEMO_PRODUCTS
    assert products_of(users["ana"]) == DEMO_PRODUCTS
    # carl, a contractor, may read sales.orders only: nothing else appears anywhere.
    assert products_of(users["carl"]) == {("sales", "orders")}
    carl_columns = rows(users["carl"], "SELECT DISTINCT domain, product FROM mesh_catalog.columns")
    assert {(r["domain"], r["product"]) for r in carl_columns} == {("sales", "orders")}


def test_products_describe_the_product(users):
    [orders] = rows(
        users["stella"], "SELECT * FROM mesh_catalog.products WHERE domain = 'sales' AND table_name = 'orders'"
    )
    descriptor = yaml.safe_load(open(demo_mesh_doc()["domains"]["sales"]["products_dir"] + "/orders.yaml"))
    assert orders["owner"] == descriptor["owner"]
    assert orders["version"] == str(descriptor["version"])
    assert orders["status"] == "active"
    assert orders["description"] == descriptor["description"].strip()
    assert orders["tags"] == descriptor.get("tags", [])
    assert orders["format"] == "parquet"
    assert orders["health"] == "healthy" and orders["problem"] is None
    assert orders["location"].startswith("file:///") and "@" not in orders["location"]
    count = rows(users["stella"], "SELECT count(*) AS n FROM sales.orders")[0]["n"]
    assert orders["row_count"] == count
    assert orders["files"] >= 1 and orders["bytes"] > 0
    assert orders["last_modified"] is not None


def test_whole_product_figures_only_for_who_sees_every_row(users):
    sql = "SELECT row_count, bytes, files FROM mesh_catalog.products WHERE domain = 'sales' AND table_name = 'orders'"
    # Rows of sales.orders are hidden from carl: its size would tell him how many.
    assert rows(users["carl"], sql) == [{"row_count": None, "bytes": None, "files": None}]
    # ana sees every row of it.
    [ana] = rows(users["ana"], sql)
    assert ana["row_count"] and ana["row_count"] > 0


def test_columns_show_what_the_principal_sees(users):
    sql = (
        "SELECT column_name, data_type, masked_for_you, description, is_key FROM mesh_catalog.columns "
        "WHERE domain = 'sales' AND product = 'orders' ORDER BY ordinal_position"
    )
    stella = {r["column_name"]: r for r in rows(users["stella"], sql)}
    ana = {r["column_name"]: r for r in rows(users["ana"], sql)}
    carl = {r["column_name"]: r for r in rows(users["carl"], sql)}
    # o_comment is for stewards only: absent for the others.
    assert "o_comment" in stella and "o_comment" not in ana and "o_comment" not in carl
    assert not any(r["masked_for_you"] for r in stella.values())
    assert ana["o_clerk"]["masked_for_you"] and not ana["o_totalprice"]["masked_for_you"]
    assert carl["o_totalprice"]["masked_for_you"] and carl["o_orderdate"]["masked_for_you"]
    assert stella["o_orderkey"]["is_key"]
    assert stella["o_orderkey"]["description"]
    # The type is the one the principal's queries return.
    carl_client = users["carl"]
    result = flight_sql_query(carl_client, "SELECT * FROM sales.orders LIMIT 0")
    for field in result.schema:
        assert carl[field.name]["data_type"], field.name
    assert set(carl) == set(result.schema.names)


def test_columns_match_every_product_schema(users):
    for user in ("ana", "stella"):
        client = users[user]
        listed = rows(client, "SELECT domain, product, column_name FROM mesh_catalog.columns")
        for domain, product in DEMO_PRODUCTS:
            names = [r["column_name"] for r in listed if (r["domain"], r["product"]) == (domain, product)]
            served = flight_sql_query(client, f"SELECT * FROM {domain}.{product} LIMIT 0").schema.names
            assert names == served, (user, domain, product)


def test_system_tables_answer_over_adbc(demo_server):
    with adbc_connect(demo_server.uri, "ana") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM mesh_catalog.products WHERE is_current")
        assert cur.fetchone()[0] == len(DEMO_PRODUCTS)
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'mesh_catalog'")
        assert {r[0] for r in cur.fetchall()} == SYSTEM_TABLES


def test_metadata_commands_list_the_system_tables(users):
    client = users["carl"]
    _, schemas, _ = flight_command(client, cmd_get_db_schemas(catalog="mesh"))
    assert "mesh_catalog" in schemas.column("db_schema_name").to_pylist()
    _, tables, _ = flight_command(client, cmd_get_tables(catalog="mesh", db_schema_filter_pattern="mesh_catalog"))
    assert set(tables.column("table_name").to_pylist()) == SYSTEM_TABLES
    assert set(tables.column("table_type").to_pylist()) == {"SYSTEM TABLE"}


def test_unknown_system_table_and_writes_are_refused(users):
    client = users["ana"]
    with pytest.raises(Exception) as missing:
        flight_sql_query(client, "SELECT * FROM mesh_catalog.no_such_table")
    assert flight_grpc_code(missing.value) == "NOT_FOUND"
    for sql in (
        "INSERT INTO mesh_catalog.products SELECT * FROM mesh_catalog.products",
        "DELETE FROM mesh_catalog.products",
        "DROP TABLE mesh_catalog.products",
        "CREATE TABLE mesh_catalog.mine AS SELECT 1",
    ):
        with pytest.raises(Exception) as refused:
            flight_sql_query(client, sql)
        assert flight_grpc_code(refused.value) in ("PERMISSION_DENIED", "INVALID_ARGUMENT"), sql


def test_a_domain_cannot_take_the_system_schema_name(tmp_path, meshgate_bin):
    doc = demo_mesh_doc()
    doc["domains"]["mesh_catalog"] = doc["domains"].pop("supply")
    config = tmp_path / "mesh.yaml"
    config.write_text(yaml.safe_dump(doc))
    result = run_meshgate(meshgate_bin, "check", "--config", str(config))
    assert result.returncode != 0
    assert "domains.mesh_catalog" in result.stdout and "reserved" in result.stdout


# --- recorded queries: query_log, usage, lineage consumers -------------------------------


@pytest.fixture(scope="module")
def fresh(start_server):
    """A demo server of its own: the queries it recorded are exactly this module's."""
    server = start_server(DEMO_CONFIG, name="catalog")
    yield server
    server.stop()


def until(condition, what, timeout=10.0):
    """A query is recorded when its stream ends, just after the client has read it."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_query_log_shows_your_own_queries_and_a_steward_all(fresh):
    ana, carl, stella = (flight_client(fresh.uri, user) for user in ("ana", "carl", "stella"))
    marker = "query-log-%d" % time.time_ns()
    flight_sql_query(ana, f"SELECT '{marker}' AS m, count(*) AS n FROM customers.nation")
    with pytest.raises(Exception):
        flight_sql_query(carl, f"SELECT '{marker}' AS m FROM customers.customer")
    sql = f"SELECT principal, sql, products, outcome, error_code, rows FROM mesh_catalog.query_log WHERE sql LIKE '%{marker}%'"
    seen = until(lambda: len(rows(stella, sql)) == 2 and rows(stella, sql), "both queries in the log")
    by_user = {r["principal"]: r for r in seen}
    assert by_user["ana"]["outcome"] == "ok" and by_user["ana"]["rows"] == 1
    assert by_user["ana"]["products"] == ["customers.nation@1.0.0"]
    assert by_user["carl"]["outcome"] == "refused" and by_user["carl"]["error_code"] == "NOT_FOUND"
    assert [r["principal"] for r in rows(ana, sql)] == ["ana"]
    assert [r["principal"] for r in rows(carl, sql)] == ["carl"]


def test_usage_counts_queries_principals_and_groups(fresh):
    ana, sam, stella = (flight_client(fresh.uri, user) for user in ("ana", "sam", "stella"))
    for client in (ana, ana, sam):
        flight_sql_query(client, "SELECT count(*) AS n FROM customers.region")
    sql = (
        "SELECT queries, rows, distinct_principals, distinct_groups FROM mesh_catalog.usage "
        "WHERE domain = 'customers' AND product = 'region' AND \"window\" = 'all'"
    )
    usage = until(lambda: [r for r in rows(stella, sql) if r["queries"] == 3], "three queries of customers.region")
    # ana (analyst) and sam (analyst, data_scientist, pii_reader): 2 principals, 3 groups.
    assert usage == [{"queries": 3, "rows": 3, "distinct_principals": 2, "distinct_groups": 3}]
    windows = rows(stella, "SELECT \"window\" FROM mesh_catalog.usage WHERE domain = 'customers' AND product = 'region'")
    assert {r["window"] for r in windows} == {"1h", "24h", "7d", "all"}
    # carl may not read customers.region: its usage is absent for him.
    carl = flight_client(fresh.uri, "carl")
    assert rows(carl, "SELECT * FROM mesh_catalog.usage WHERE domain = 'customers'") == []


def test_lineage_names_consumers_to_stewards_and_themselves(fresh):
    ana, sam, stella = (flight_client(fresh.uri, user) for user in ("ana", "sam", "stella"))
    flight_sql_query(ana, "SELECT count(*) AS n FROM supply.part")
    flight_sql_query(sam, "SELECT count(*) AS n FROM supply.part")
    sql = (
        "SELECT target_kind, target, queries FROM mesh_catalog.lineage "
        "WHERE relation = 'reads' AND source = 'supply.part' ORDER BY target"
    )
    steward_view = until(lambda: len(rows(stella, sql)) == 2 and rows(stella, sql), "two consumers of supply.part")
    assert {(r["target"], r["queries"]) for r in steward_view} == {("ana", 1), ("sam", 1)}
    ana_view = {(r["target_kind"], r["target"]) for r in rows(ana, sql)}
    assert ("principal", "ana") in ana_view and ("principal", "sam") not in ana_view


def test_results_name_the_system_table_their_columns_come_from(users):
    result = flight_sql_query(users["ana"], "SELECT name, row_count FROM mesh_catalog.products LIMIT 1")
    for field in result.schema:
        metadata = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
        assert metadata["ARROW:FLIGHT:SQL:SCHEMA_NAME"] == "mesh_catalog", field
        assert metadata["ARROW:FLIGHT:SQL:TABLE_NAME"] == "products", field
    assert {k.decode(): v.decode() for k, v in result.schema.field("row_count").metadata.items()}[
        "ARROW:FLIGHT:SQL:TYPE_NAME"
    ] == "BIGINT"


# --- quality results ----------------------------------------------------------------------


def test_quality_results_show_the_demo_contract_and_hide_what_is_not_yours(users):
    stella, ana, carl = users["stella"], users["ana"], users["carl"]
    sql = (
        "SELECT check_name, kind, severity, passed, measured, files FROM mesh_catalog.quality_results "
        "WHERE domain = 'customers' AND product = 'customer' AND is_latest ORDER BY check_name"
    )
    # Checks run in the background after load: wait for the failing one to be recorded.
    latest = until(
        lambda: [r for r in rows(stella, sql) if r["check_name"] == "acctbal_not_negative"] and rows(stella, sql),
        "the customer checks to run",
    )
    failing = [r for r in latest if not r["passed"]]
    assert [(r["check_name"], r["severity"]) for r in failing] == [("acctbal_not_negative", "warn")]
    overdrawn = rows(stella, "SELECT count(*) AS n FROM customers.customer WHERE c_acctbal < 0")[0]["n"]
    assert failing[0]["measured"] == overdrawn and failing[0]["files"] >= 1
    # ana reads her own market segment only: the whole product's figures are not hers.
    ana_rows = until(lambda: rows(ana, sql), "ana's view of the results")
    assert {r["check_name"] for r in ana_rows} == {r["check_name"] for r in latest}
    assert all(r["measured"] is None and r["files"] is None for r in ana_rows)
    # carl may not read customers.customer: none of its results.
    assert rows(carl, "SELECT * FROM mesh_catalog.quality_results WHERE domain = 'customers'") == []
    status = rows(stella, "SELECT quality_status FROM mesh_catalog.products WHERE table_name = 'customer'")
    assert status == [{"quality_status": "warning"}]
