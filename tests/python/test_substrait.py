"""Substrait plans (Flight SQL CommandStatementSubstraitPlan and
CreatePreparedSubstraitPlan), produced the way a client would: datafusion-python
plans SQL against the tables meshgate describes (GetTables schemas), and serializes
the plan. meshgate plans it in the caller's governed session, like SQL: the same rows,
masks and refusals, and a hidden product reads exactly like a missing one."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from datafusion import SessionConfig, SessionContext
from datafusion.substrait import Plan, Serde

from mgtest import (
    adbc_connect,
    assert_same_rows,
    duckdb_expected,
    flight_client,
    flight_grpc_code,
    pack_any,
    pb_bytes,
    pb_field,
    pb_string,
)



def client_context(uri: str, user: str) -> SessionContext:
    """A DataFusion context holding empty tables shaped like what `user` sees."""
    ctx = SessionContext(SessionConfig().with_default_catalog_and_schema("mesh", "public"))
    conn = adbc_connect(uri, user)
    try:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        for catalog in objects:
            for schema in catalog["catalog_db_schemas"]:
                domain = schema["db_schema_name"]
                ctx.sql(f"CREATE SCHEMA IF NOT EXISTS mesh.{domain}")
                for table in schema["db_schema_tables"]:
                    name = table["table_name"]
                    arrow_schema = conn.adbc_get_table_schema(name, db_schema_filter=domain)
                    ctx.register_record_batches(f"mesh.{domain}.{name}", [[pa.RecordBatch.from_pylist([], schema=arrow_schema)]])
    finally:
        conn.close()
    return ctx


def substrait_command(plan: bytes) -> bytes:
    substrait_plan = pb_bytes(1, plan) + pb_string(2, "0.85.0")
    return pack_any("CommandStatementSubstraitPlan", pb_bytes(1, substrait_plan))


def run_plan(client, plan: bytes) -> pa.Table:
    info = client.get_flight_info(flight.FlightDescriptor.for_command(substrait_command(plan)))
    return pa.concat_tables([client.do_get(e.ticket).read_all() for e in info.endpoints])


@pytest.fixture(scope="module")
def stella_ctx(demo_server):
    return client_context(demo_server.uri, "stella")


def test_a_substrait_plan_returns_what_the_sql_does(demo_server, stella_ctx):
    sql = (
        "SELECT n_name, count(*) AS customers FROM mesh.customers.customer c "
        "JOIN mesh.customers.nation n ON c.c_nationkey = n.n_nationkey GROUP BY n_name"
    )
    plan = Serde.serialize_bytes(sql, stella_ctx)
    got = run_plan(flight_client(demo_server.uri, "stella"), plan)
    assert_same_rows(got, duckdb_expected(sql.replace("mesh.", "")))


def test_adbc_executes_a_substrait_plan(demo_server, stella_ctx):
    sql = "SELECT o_orderkey, o_totalprice FROM mesh.sales.orders WHERE o_orderkey < 100"
    plan = Serde.serialize_bytes(sql, stella_ctx)
    conn = adbc_connect(demo_server.uri, "stella")
    try:
        with conn.cursor() as cur:
            cur.execute(plan)
            got = cur.fetch_arrow_table()
    finally:
        conn.close()
    assert_same_rows(got, duckdb_expected(sql.replace("mesh.", "")))


def test_plans_are_governed_like_sql(demo_server):
    """carl's plan gets carl's rows (his row filter applies) and carl's masks."""
    carl_ctx = client_context(demo_server.uri, "carl")
    sql = "SELECT o_orderkey, o_orderpriority FROM sales.orders"
    plan = Serde.serialize_bytes(sql.replace("sales.", "mesh.sales."), carl_ctx)
    carl = flight_client(demo_server.uri, "carl")
    via_plan = run_plan(carl, plan)
    info = carl.get_flight_info(flight.FlightDescriptor.for_command(pack_any("CommandStatementQuery", pb_string(1, sql))))
    via_sql = carl.do_get(info.endpoints[0].ticket).read_all()
    assert via_plan.num_rows == via_sql.num_rows
    assert via_plan.num_rows < duckdb_expected("SELECT count(*) FROM sales.orders").rows[0][0]
    assert_same_rows(via_plan, via_sql)


def test_a_hidden_product_reads_like_a_missing_one(demo_server, stella_ctx):
    """A plan made with the steward's catalog, run by someone who cannot see the
    product, fails NOT_FOUND exactly as for a product that does not exist."""
    stella_ctx.sql("CREATE SCHEMA IF NOT EXISTS mesh.ghost")
    stella_ctx.register_record_batches("mesh.ghost.nothing", [[pa.RecordBatch.from_pylist([], schema=pa.schema([("x", pa.int64())]))]])
    hidden_for = {}
    for user in ("ana", "sam", "carl"):
        conn = adbc_connect(demo_server.uri, user)
        try:
            visible = {
                (s["db_schema_name"], t["table_name"])
                for c in conn.adbc_get_objects(depth="tables").read_all().to_pylist()
                for s in c["catalog_db_schemas"]
                for t in s["db_schema_tables"]
            }
        finally:
            conn.close()
        everything = {("sales", "orders"), ("sales", "lineitem"), ("customers", "customer"), ("customers", "nation"),
                      ("customers", "region"), ("supply", "part"), ("supply", "partsupp"), ("supply", "supplier")}
        if everything - visible:
            hidden_for[user] = sorted(everything - visible)[0]
    assert hidden_for, "the demo hides some product from some user"
    user, (domain, product) = next(iter(hidden_for.items()))
    client = flight_client(demo_server.uri, user)
    columns = [f.name for f in stella_ctx.table(f"mesh.{domain}.{product}").schema()][:1]
    hidden_plan = Serde.serialize_bytes(f"SELECT {columns[0]} FROM mesh.{domain}.{product}", stella_ctx)
    missing_plan = Serde.serialize_bytes("SELECT x FROM mesh.ghost.nothing", stella_ctx)
    errors = []
    for plan in (hidden_plan, missing_plan):
        with pytest.raises(pa.ArrowException) as caught:
            run_plan(client, plan)
        errors.append(caught.value)
    assert [flight_grpc_code(e) for e in errors] == ["NOT_FOUND", "NOT_FOUND"]
    hidden_message = str(errors[0]).replace(f"{domain}.{product}", "<T>")
    missing_message = str(errors[1]).replace("ghost.nothing", "<T>")
    assert hidden_message.split("Detail")[0] == missing_message.split("Detail")[0]


def test_reading_files_by_path_is_refused(demo_server, stella_ctx):
    """A plan whose read is LocalFiles (any path on the server) is refused."""
    plan = json.loads(Serde.serialize_to_plan("SELECT r_name FROM mesh.customers.region", stella_ctx).to_json())

    def to_local_files(node):
        if isinstance(node, dict):
            if "namedTable" in node:
                del node["namedTable"]
                node["localFiles"] = {"items": [{"uriFile": "file:///etc/hostname", "parquet": {}}]}
            for value in node.values():
                to_local_files(value)
        elif isinstance(node, list):
            for value in node:
                to_local_files(value)

    to_local_files(plan)
    forged = Plan.from_json(json.dumps(plan)).encode()
    client = flight_client(demo_server.uri, "stella")
    with pytest.raises(pa.ArrowException) as caught:
        run_plan(client, forged)
    assert flight_grpc_code(caught.value) == "INVALID_ARGUMENT", str(caught.value)
    assert "not a mesh product" in str(caught.value)
    assert run_plan(client, Serde.serialize_bytes("SELECT r_name FROM mesh.customers.region", stella_ctx)).num_rows == 5


def test_garbage_plans_are_invalid_argument(demo_server):
    client = flight_client(demo_server.uri, "stella")
    for plan in (b"\xff\xff\xff", b""):
        with pytest.raises(pa.ArrowException) as caught:
            run_plan(client, plan)
        assert flight_grpc_code(caught.value) == "INVALID_ARGUMENT", str(caught.value)


def test_prepared_substrait_plan(demo_server, stella_ctx):
    sql = "SELECT r_regionkey, r_name FROM mesh.customers.region"
    plan = Serde.serialize_bytes(sql, stella_ctx)
    client = flight_client(demo_server.uri, "stella")
    request = pb_bytes(1, pb_bytes(1, plan) + pb_string(2, "0.85.0"))
    action = flight.Action("CreatePreparedSubstraitPlan", pack_any("ActionCreatePreparedSubstraitPlanRequest", request))
    results = list(client.do_action(action))
    assert len(results) == 1
    any_value = pb_field(results[0].body.to_pybytes(), 2)
    handle = pb_field(any_value, 1)
    assert handle
    command = pack_any("CommandPreparedStatementQuery", pb_bytes(1, handle))
    info = client.get_flight_info(flight.FlightDescriptor.for_command(command))
    got = client.do_get(info.endpoints[0].ticket).read_all()
    assert_same_rows(got, duckdb_expected(sql.replace("mesh.", "")))
    # Another user cannot redeem stella's handle.
    with pytest.raises(pa.ArrowException) as caught:
        flight_client(demo_server.uri, "ana").get_flight_info(flight.FlightDescriptor.for_command(command))
    assert flight_grpc_code(caught.value) == "UNAUTHENTICATED"
