"""Smaller gaps a user hits (issue 18, item 7), each through the real server and real
clients: a product whose location does not exist, keyed_hash keys across reloads,
several parameter rows bound to a query, SHOW SCHEMAS / SHOW ALL, the write paths
(execute_update, bulk ingest), the functions added to the dialect, and products whose
columns no rule allows to anyone (`meshgate check`, `meshgate policy test`)."""

from __future__ import annotations

import os
import shutil
import signal

import adbc_driver_manager
import duckdb
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from mgtest import (
    DATA,
    DEMO_CONFIG,
    TESTDATA,
    adbc_connect,
    adbc_grpc_code,
    adbc_query,
    describe_exc,
    flight_client,
    flight_grpc_code,
    flight_sql_query,
    hash_password,
    pack_any,
    pb_string,
    run_meshgate,
    server_message,
    wait_for,
    with_open_governance,
    with_system_schema,
    write_yaml,
)


def _adbc_error(conn, sql, parameters=None) -> adbc_driver_manager.Error:
    with pytest.raises(adbc_driver_manager.Error) as caught:
        with conn.cursor() as cur:
            cur.execute(sql, parameters)
            cur.fetch_arrow_table()
    return caught.value


# --------------------------------------------------------------------------------------
# a product whose location does not exist
# --------------------------------------------------------------------------------------

DECLARED = [{"name": "r_regionkey", "type": "int64"}, {"name": "r_name", "type": "utf8"}]


@pytest.fixture(scope="module")
def locations_server(start_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("locations")
    empty = root / "empty"
    empty.mkdir()
    gone = root / "never-created"
    doc = {
        "catalog": "mesh",
        "domains": {
            "lake": {
                "owner": "qa@example.com",
                "products": [
                    {"name": "region", "location": f"{DATA / 'customers' / 'region'}/", "format": "parquet"},
                    {"name": "missing_declared", "location": f"{gone}/", "format": "parquet", "schema": DECLARED},
                    {"name": "missing_inferred", "location": f"{gone}/", "format": "parquet"},
                    {"name": "missing_csv", "location": f"{gone}/", "format": "csv", "schema": DECLARED},
                    {"name": "missing_file", "location": f"{gone}.parquet", "format": "parquet"},
                    {"name": "empty_declared", "location": f"{empty}/", "format": "parquet", "schema": DECLARED},
                    {"name": "empty_inferred", "location": f"{empty}/", "format": "parquet"},
                ],
            }
        },
    }
    config = write_yaml(root / "mesh.yaml", with_open_governance(doc))
    server = start_server(config, name="locations")
    yield server, config
    server.stop(check=True)


MISSING = ["missing_declared", "missing_inferred", "missing_csv", "missing_file"]


@pytest.mark.parametrize("product", MISSING)
def test_a_missing_location_is_unavailable_naming_the_product(locations_server, product):
    server, _ = locations_server
    client = flight_client(server.uri)
    conn = adbc_connect(server.uri)
    try:
        with pytest.raises((flight.FlightError, pa.ArrowException)) as caught:
            flight_sql_query(client, f"SELECT * FROM lake.{product}")
        assert flight_grpc_code(caught.value) == "UNAVAILABLE", describe_exc(caught.value)
        message = server_message(caught.value)
        assert f"lake.{product}" in message and "location does not exist" in message, message
        assert "never-created" not in message, message  # no internal paths
        err = _adbc_error(conn, f"SELECT count(*) FROM lake.{product}")
        assert adbc_grpc_code(err) == "UNAVAILABLE", describe_exc(err)
        assert f"lake.{product}" in str(err)
        assert flight_sql_query(client, "SELECT count(*) AS n FROM lake.region").column("n").to_pylist() == [5]
    finally:
        client.close()
        conn.close()


def test_an_existing_empty_location_is_empty_with_a_contract_and_unavailable_without(locations_server):
    """README: without a declared schema the schema is read from the files, so a location
    without files cannot be served; with one, the product exists and has no rows yet."""
    server, _ = locations_server
    client = flight_client(server.uri)
    try:
        table = flight_sql_query(client, "SELECT * FROM lake.empty_declared")
        assert table.num_rows == 0 and table.column_names == ["r_regionkey", "r_name"]
        with pytest.raises((flight.FlightError, pa.ArrowException)) as caught:
            flight_sql_query(client, "SELECT * FROM lake.empty_inferred")
        assert flight_grpc_code(caught.value) == "UNAVAILABLE", describe_exc(caught.value)
        assert "lake.empty_inferred" in server_message(caught.value)
        assert "no data files" in server_message(caught.value)
    finally:
        client.close()


def test_check_fails_on_a_missing_location(meshgate_bin, locations_server):
    _, config = locations_server
    res = run_meshgate(meshgate_bin, "check", "--config", str(config))
    assert res.returncode == 1, res.stdout + res.stderr
    for product in MISSING:
        line = next((l for l in res.stdout.splitlines() if f"lake.{product}" in l), "")
        assert "FAIL" in line and "location does not exist" in line, res.stdout
    assert any("ok" in l and "lake.empty_declared" in l for l in res.stdout.splitlines()), res.stdout


# --------------------------------------------------------------------------------------
# keyed_hash without MESHGATE_MASK_KEY_<DOMAIN>: the same across reloads
# --------------------------------------------------------------------------------------

NO_KEY_WARNING = "no keyed_hash key for domain(s)"


def test_keyed_hash_without_a_key_is_stable_across_reloads(start_server, tmp_path, monkeypatch):
    for variable in [v for v in os.environ if v.startswith("MESHGATE_MASK_KEY_")]:
        monkeypatch.delenv(variable)
    mesh = tmp_path / "mesh"
    shutil.copytree(TESTDATA, mesh, ignore=shutil.ignore_patterns("generate.py", "__pycache__"))
    server = start_server(mesh / "mesh.yaml", name="hash-reload")
    sql = "SELECT c_custkey, c_email FROM customers.customer ORDER BY c_custkey LIMIT 5"
    ana = flight_client(server.uri, "ana")
    try:
        before = flight_sql_query(ana, sql).column("c_email").to_pylist()
        assert all(len(value) == 64 for value in before), before  # hashed for ana
        warning_lines = [l for l in server.stderr_text().splitlines() if NO_KEY_WARNING in l]
        assert warning_lines and "customers" in warning_lines[0] and "MESHGATE_MASK_KEY_CUSTOMERS" in warning_lines[0]
        loads = server.stderr_text().count(NO_KEY_WARNING)
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in server.stderr_text(), "the reload")
        assert flight_sql_query(ana, sql).column("c_email").to_pylist() == before
        # every load warns again
        assert server.stderr_text().count(NO_KEY_WARNING) == loads + 1
    finally:
        ana.close()


# --------------------------------------------------------------------------------------
# several rows of parameters bound to a query
# --------------------------------------------------------------------------------------

NATION_BY_KEY = "SELECT n_nationkey, n_name FROM customers.nation WHERE n_nationkey = ?"


def test_several_parameter_rows_answer_one_result_in_row_order(adbc_conn):
    keys = [7, 3, 21, 3]
    with adbc_conn.cursor() as cur:
        cur.execute(NATION_BY_KEY, pa.table({"k": pa.array(keys, pa.int64())}))
        table = cur.fetch_arrow_table()
    assert table.column("n_nationkey").to_pylist() == keys
    expected = [adbc_query(adbc_conn, f"SELECT n_name FROM customers.nation WHERE n_nationkey = {k}")
                .column("n_name")[0].as_py() for k in keys]
    assert table.column("n_name").to_pylist() == expected


def test_several_rows_with_results_of_any_size_stream_in_order(adbc_conn):
    sql = "SELECT l_orderkey, l_linenumber FROM sales.lineitem WHERE l_orderkey BETWEEN ? AND ? ORDER BY 1, 2"
    ranges = [(1, 500), (10_000, 10_100), (2, 3)]
    with adbc_conn.cursor() as cur:
        cur.execute(sql, pa.table({"lo": [r[0] for r in ranges], "hi": [r[1] for r in ranges]}))
        table = cur.fetch_arrow_table()
    expected = pa.concat_tables([
        adbc_query(adbc_conn, sql.replace("?", "{}").format(lo, hi)) for lo, hi in ranges
    ])
    assert table.num_rows == expected.num_rows > 1000
    assert table.column("l_orderkey").to_pylist() == expected.column("l_orderkey").to_pylist()


def test_a_bad_value_in_any_row_is_refused_at_binding_naming_the_parameter(adbc_conn):
    err = _adbc_error(adbc_conn, NATION_BY_KEY, pa.table({"k": pa.array([1.0, 7.5])}))
    assert adbc_grpc_code(err) == "INVALID_ARGUMENT", describe_exc(err)
    assert "7.5" in str(err) and "$1" in str(err), str(err)


def test_several_rows_give_one_null_safe_result(adbc_conn):
    """A value whose row would make a column non-nullable in one row and NULL in another."""
    with adbc_conn.cursor() as cur:
        cur.execute("SELECT ? AS v", pa.table({"v": pa.array([1, None, 3], pa.int64())}))
        table = cur.fetch_arrow_table()
    assert table.column("v").to_pylist() == [1, None, 3]


# --------------------------------------------------------------------------------------
# SHOW SCHEMAS, SHOW ALL
# --------------------------------------------------------------------------------------


def test_show_schemas_lists_only_the_domains_the_principal_reads(demo_server):
    seen = {}
    for user in ("stella", "carl"):
        client = flight_client(demo_server.uri, user)
        try:
            table = flight_sql_query(client, "SHOW SCHEMAS")
            seen[user] = set(table.column("schema_name").to_pylist()) - {"information_schema"}
            assert set(table.column("catalog_name").to_pylist()) == {"mesh"}
            like = flight_sql_query(client, "SHOW SCHEMAS LIKE 'sa%'").column("schema_name").to_pylist()
            assert like == ["sales"]
            assert flight_sql_query(client, "SHOW DATABASES").equals(table)
        finally:
            client.close()
    assert seen["stella"] == with_system_schema({"sales", "customers", "supply"})
    assert seen["carl"] == with_system_schema({"sales"})


def test_show_all_shows_settings_and_no_secrets(start_server):
    secret = "show-all-ticket-secret-0123456789abcdef"
    mask_key = "show-all-mask-key-0123456789"
    server = start_server(DEMO_CONFIG, name="show-all",
                          env={"MESHGATE_TICKET_SECRET": secret, "MESHGATE_MASK_KEY_CUSTOMERS": mask_key})
    conn = adbc_connect(server.uri, "ana")
    try:
        table = adbc_query(conn, "SHOW ALL")
        assert table.column_names == ["name", "value"]
        settings = dict(zip(table.column("name").to_pylist(), table.column("value").to_pylist()))
        assert "datafusion.execution.batch_size" in settings
        text = repr(settings)
        assert secret not in text and mask_key not in text
        one = adbc_query(conn, "SHOW datafusion.execution.batch_size")
        assert one.column("value").to_pylist() == [settings["datafusion.execution.batch_size"]]
    finally:
        conn.close()
        server.stop()


# --------------------------------------------------------------------------------------
# the write paths answer the README's errors
# --------------------------------------------------------------------------------------


def _execute_update(conn, sql) -> adbc_driver_manager.Error:
    with pytest.raises(adbc_driver_manager.Error) as caught:
        with conn.cursor() as cur:
            cur.adbc_statement.set_sql_query(sql)
            cur.adbc_statement.execute_update()
    return caught.value


@pytest.mark.parametrize("sql,named", [
    ("INSERT INTO sales.orders (o_orderkey) VALUES (1)", "INSERT"),
    ("DELETE FROM sales.orders", "DELETE"),
    ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
    ("DROP TABLE sales.orders", "DROP TABLE"),
])
def test_ddl_and_dml_through_execute_update_are_refused_by_name(adbc_conn, sql, named):
    err = _execute_update(adbc_conn, sql)
    assert adbc_grpc_code(err) == "INVALID_ARGUMENT", describe_exc(err)
    assert f"{named} is not allowed" in str(err), str(err)
    assert "no default implementation" not in str(err)


def test_a_query_through_execute_update_says_how_to_run_it(adbc_conn):
    err = _execute_update(adbc_conn, "SELECT 1")
    assert adbc_grpc_code(err) == "INVALID_ARGUMENT", describe_exc(err)
    assert "is a query" in str(err) and "cursor.execute" in str(err), str(err)


def test_executemany_of_a_query_says_how_to_run_it(adbc_conn):
    with pytest.raises(adbc_driver_manager.Error) as caught:
        with adbc_conn.cursor() as cur:
            cur.executemany(NATION_BY_KEY, [(1,), (2,)])
    err = caught.value
    assert adbc_grpc_code(err) == "INVALID_ARGUMENT", describe_exc(err)
    assert "is a query" in str(err) and "no default implementation" not in str(err), str(err)


def test_bulk_ingest_is_refused_naming_the_command_and_table(adbc_conn):
    with pytest.raises(adbc_driver_manager.Error) as caught:
        with adbc_conn.cursor() as cur:
            cur.adbc_ingest("orders_copy", pa.table({"x": [1, 2]}), mode="create", db_schema_name="sales")
    err = caught.value
    assert adbc_grpc_code(err) == "UNIMPLEMENTED", describe_exc(err)
    assert "CommandStatementIngest" in str(err) and "sales.orders_copy" in str(err), str(err)


def test_statement_update_over_plain_flight_is_refused_by_name(flight_client):
    command = pack_any("CommandStatementUpdate", pb_string(1, "UPDATE sales.orders SET o_comment = 'x'"))
    descriptor = flight.FlightDescriptor.for_command(command)
    with pytest.raises((flight.FlightError, pa.ArrowException)) as caught:
        writer, reader = flight_client.do_put(descriptor, pa.schema([]))
        writer.close()
    assert flight_grpc_code(caught.value) == "INVALID_ARGUMENT", describe_exc(caught.value)
    assert "UPDATE is not allowed" in server_message(caught.value)


# --------------------------------------------------------------------------------------
# functions analysts reach for
# --------------------------------------------------------------------------------------

SAME_AS_DUCKDB = [
    "SELECT date_diff('day', DATE '2024-01-31', DATE '2024-03-01') AS v",
    "SELECT datediff('month', DATE '2023-12-31', DATE '2024-01-01') AS v",
    "SELECT date_diff('year', TIMESTAMP '2020-06-30 10:00:00', TIMESTAMP '2024-01-01 00:00:00') AS v",
    "SELECT date_diff('hour', TIMESTAMP '2024-03-01 23:59:00', TIMESTAMP '2024-03-02 01:00:00') AS v",
    "SELECT date_diff('quarter', DATE '2024-03-31', DATE '2023-01-01') AS v",
    "SELECT strftime(TIMESTAMP '2024-02-29 13:45:07', '%Y-%m-%d %H:%M:%S') AS v",
    "SELECT strftime(DATE '2024-02-29', '%d/%m/%Y') AS v",
    "SELECT regexp_extract('abc-123-xyz', '[0-9]+') AS v",
    "SELECT regexp_extract('abc-123-xyz', '([a-z]+)-([0-9]+)', 2) AS v",
    "SELECT regexp_extract('no digits', '[0-9]+') AS v",
]


@pytest.mark.parametrize("sql", SAME_AS_DUCKDB)
def test_functions_agree_with_duckdb(run_query, sql):
    assert run_query(sql).column("v").to_pylist() == [duckdb.sql(sql).fetchall()[0][0]]


def test_date_diff_over_a_product_matches_duckdb(adbc_conn):
    sql = ("SELECT o_orderkey, date_diff('month', o_orderdate, DATE '1999-01-01') AS months "
           "FROM sales.orders ORDER BY o_orderkey LIMIT 50")
    got = adbc_query(adbc_conn, sql)
    orders = str(DATA / "sales" / "orders" / "**" / "*.parquet")
    want = duckdb.sql(sql.replace("sales.orders", f"read_parquet('{orders}', hive_partitioning=true)")).fetchall()
    assert got.column("months").to_pylist() == [row[1] for row in want]
    assert len(set(got.column("months").to_pylist())) > 1


def test_session_functions_name_the_caller_schema_and_catalog(demo_server):
    sql = "SELECT current_user AS u, current_schema() AS s, current_database() AS d"
    ana = flight_client(demo_server.uri, "ana")
    try:
        row = flight_sql_query(ana, sql).to_pylist()[0]
        assert row == {"u": "ana", "s": None, "d": "mesh"}
        options = flight.FlightCallOptions(headers=[(b"x-meshgate-schema", b"sales")])
        row = flight_sql_query(ana, sql, options).to_pylist()[0]
        assert row == {"u": "ana", "s": "sales", "d": "mesh"}
    finally:
        ana.close()
    carl = adbc_connect(demo_server.uri, "carl")
    try:
        row = adbc_query(carl, "SELECT current_user AS u, session_user AS s").to_pylist()[0]
        assert row == {"u": "carl", "s": "carl"}
    finally:
        carl.close()


def test_bad_function_arguments_are_named(flight_client):
    for sql, needle in [
        ("SELECT date_diff('fortnight', DATE '2024-01-01', DATE '2024-02-01')", "fortnight"),
        ("SELECT datediff(DATE '2024-01-01', DATE '2024-02-01')", "date_diff takes (part, start, end)"),
        ("SELECT regexp_extract('abc', '(a)', 2)", "no group 2"),
    ]:
        with pytest.raises((flight.FlightError, pa.ArrowException)) as caught:
            flight_sql_query(flight_client, sql)
        assert flight_grpc_code(caught.value) == "INVALID_ARGUMENT", describe_exc(caught.value)
        assert needle in server_message(caught.value), server_message(caught.value)


def test_policy_expressions_do_not_get_the_dialect_functions(meshgate_bin, tmp_path):
    doc = with_open_governance({
        "catalog": "mesh",
        "domains": {"lake": {"owner": "qa@example.com", "products": [
            {"name": "region", "location": f"{DATA / 'customers' / 'region'}/", "format": "parquet"}]}},
    })
    doc["governance"]["policies"][0]["row_filters"] = [
        {"id": "by-user", "mode": "permissive", "filter": "r_name = current_user"}]
    config = write_yaml(tmp_path / "mesh.yaml", doc)
    res = run_meshgate(meshgate_bin, "check", "--config", str(config))
    assert res.returncode != 0, res.stdout
    assert "current_user" in res.stdout + res.stderr


# --------------------------------------------------------------------------------------
# a product whose columns no rule allows to anyone
# --------------------------------------------------------------------------------------


def _columnless_config(tmp_path):
    doc = with_open_governance({
        "catalog": "mesh",
        "domains": {"lake": {"owner": "qa@example.com", "products": [
            {"name": "region", "location": f"{DATA / 'customers' / 'region'}/", "format": "parquet"},
            {"name": "nation", "location": f"{DATA / 'customers' / 'nation'}/", "format": "parquet"}]}},
    })
    # columns only for region: nation is readable, with no column for anyone
    doc["governance"]["policies"][0]["columns"] = [
        {"id": "region-columns", "products": {"names": ["region"]}, "select": "*", "action": "allow"},
        {"id": "nation-hidden", "products": {"names": ["nation"]}, "select": ["n_comment"], "action": "deny"},
    ]
    return write_yaml(tmp_path / "mesh.yaml", doc)


def test_check_and_policy_test_report_a_product_no_column_rule_allows(meshgate_bin, tmp_path):
    config = _columnless_config(tmp_path)
    for command in (["check"], ["policy", "test"]):
        res = run_meshgate(meshgate_bin, *command, "--config", str(config))
        out = res.stdout + res.stderr
        assert res.returncode == 1, out
        warning = next((l for l in out.splitlines() if "WARN" in l and "lake.nation" in l), None)
        assert warning and "no column rule allows" in warning, out
        assert not any("WARN" in l and "lake.region" in l for l in out.splitlines()), out


def test_check_names_configured_readers_no_column_rule_applies_to(meshgate_bin, tmp_path):
    """A rule allows nation's columns, but only to a group no configured user is in."""
    doc = {
        "catalog": "mesh",
        "auth": {"users": [{"name": "uma", "groups": ["analyst"],
                            "password_hash": hash_password(meshgate_bin, "uma-pass")}]},
        "governance": {"policies": [{
            "grants": [{"id": "analysts", "effect": "permit", "when": "'analyst' in principal.groups"}],
            "row_filters": [{"id": "all-rows", "mode": "permissive", "filter": "true"}],
            "columns": [
                {"id": "region-columns", "products": {"names": ["region"]}, "select": "*", "action": "allow"},
                {"id": "nation-for-auditors", "products": {"names": ["nation"]}, "select": "*", "action": "allow",
                 "when": "'auditor' in principal.groups"},
            ],
        }]},
        "domains": {"lake": {"owner": "qa@example.com", "products": [
            {"name": "region", "location": f"{DATA / 'customers' / 'region'}/", "format": "parquet"},
            {"name": "nation", "location": f"{DATA / 'customers' / 'nation'}/", "format": "parquet"}]}},
    }
    config = write_yaml(tmp_path / "mesh.yaml", doc)
    res = run_meshgate(meshgate_bin, "check", "--config", str(config))
    assert res.returncode == 1, res.stdout + res.stderr
    warning = next((l for l in res.stdout.splitlines() if "WARN" in l and "lake.nation" in l), None)
    assert warning and "(uma)" in warning and "none of its columns" in warning, res.stdout
    assert any(l.strip().startswith("ok") and "lake.region" in l for l in res.stdout.splitlines()), res.stdout


def test_the_demo_mesh_has_no_product_without_columns(meshgate_bin):
    res = run_meshgate(meshgate_bin, "policy", "test", "--config", str(DEMO_CONFIG))
    assert res.returncode == 0 and "WARN" not in res.stdout, res.stdout + res.stderr
