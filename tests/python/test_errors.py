"""Bad input and broken products: the right gRPC status, a message naming the culprit, and the
connection keeps working afterwards."""

from __future__ import annotations

import re
import uuid

import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from mgtest import (
    adbc_connect,
    DATA,
    adbc_grpc_code,
    adbc_query,
    cmd_get_tables,
    describe_exc,
    flight_client,
    flight_command,
    flight_grpc_code,
    flight_sql_query,
    free_port,
    parquet_row_count,
    with_open_governance,
    write_yaml,
    BROKEN_PRODUCTS,
    write_broken_mesh,
)

GOOD_SQL = "SELECT COUNT(*) AS n FROM customers.region"


def _check_good_query_adbc(conn, sql=GOOD_SQL, expected=5):
    assert adbc_query(conn, sql).column("n").to_pylist() == [expected]


def _check_good_query_flight(client, sql=GOOD_SQL, expected=5):
    assert flight_sql_query(client, sql).column("n").to_pylist() == [expected]


def _adbc_error(conn, sql) -> adbc_driver_manager.Error:
    with pytest.raises(adbc_driver_manager.Error) as ei:
        with conn.cursor() as cur:
            cur.execute(sql)
            cur.fetch_arrow_table()
    return ei.value


def _flight_error(client, sql, options=None) -> Exception:
    with pytest.raises((flight.FlightError, pa.ArrowException)) as ei:
        flight_sql_query(client, sql, options)
    return ei.value


def _assert_mentions(exc, needles, *, ignore_case=False):
    """Each needle: a str (substring; case-insensitive with ignore_case) or a compiled regex."""
    msg = str(exc)
    for needle in needles:
        if isinstance(needle, re.Pattern):
            ok = needle.search(msg) is not None
        elif ignore_case:
            ok = needle.lower() in msg.lower()
        else:
            ok = needle in msg
        assert ok, f"error message does not mention {getattr(needle, 'pattern', needle)!r}: {describe_exc(exc)}"


# --------------------------------------------------------------------------------------
# bad SQL against the demo mesh
# --------------------------------------------------------------------------------------

# (id, sql, expected gRPC code, what the message must contain: str = case-insensitive substring,
#  compiled regex = case-sensitive match)
BAD_SQL = [
    ("malformed", "SELEC o_orderkey FROM sales.orders", "INVALID_ARGUMENT", [re.compile(r"SELEC(?!T)"), "expected"]),
    ("malformed_eof", "SELECT o_orderkey FROM sales.orders WHERE", "INVALID_ARGUMENT", ["expected"]),
    ("unknown_table", "SELECT * FROM sales.nope", "NOT_FOUND", ["sales.nope"]),
    ("unknown_table_qualified", "SELECT * FROM mesh.sales.nope", "NOT_FOUND", ["sales.nope"]),
    ("create_external_table", "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/tmp'", "INVALID_ARGUMENT",
     ["CREATE EXTERNAL TABLE"]),
    ("create_view", "CREATE VIEW v AS SELECT 1", "INVALID_ARGUMENT", ["VIEW"]),
    ("create_table_as", "CREATE TABLE t AS SELECT * FROM customers.region", "INVALID_ARGUMENT", ["CREATE TABLE"]),
    ("drop_table", "DROP TABLE sales.orders", "INVALID_ARGUMENT", ["DROP"]),
    ("insert", "INSERT INTO sales.orders (o_orderkey, o_custkey) VALUES (1, 1)", "INVALID_ARGUMENT", ["INSERT"]),
    ("delete", "DELETE FROM sales.orders", "INVALID_ARGUMENT", ["DELETE"]),
    ("copy", "COPY (SELECT 1) TO '/tmp/meshgate-test-copy.parquet'", "INVALID_ARGUMENT", ["COPY"]),
    ("set", "SET datafusion.execution.batch_size = 1", "INVALID_ARGUMENT", [re.compile(r"\bSET\b")]),
    ("url_table_s3", "SELECT * FROM 's3://bucket/x.parquet'", "INVALID_ARGUMENT", ["s3://bucket/x.parquet"]),
    ("url_table_file", "SELECT * FROM '/etc/passwd'", "INVALID_ARGUMENT", ["/etc/passwd"]),
]


@pytest.mark.parametrize("case", BAD_SQL, ids=[c[0] for c in BAD_SQL])
def test_bad_sql_adbc(adbc_conn, case):
    _, sql, code, needles = case
    _check_good_query_adbc(adbc_conn)
    err = _adbc_error(adbc_conn, sql)
    assert adbc_grpc_code(err) == code, describe_exc(err)
    _assert_mentions(err, needles, ignore_case=True)
    _check_good_query_adbc(adbc_conn)


@pytest.mark.parametrize("case", BAD_SQL, ids=[c[0] for c in BAD_SQL])
def test_bad_sql_flight(flight_client, case):
    _, sql, code, needles = case
    err = _flight_error(flight_client, sql)
    assert flight_grpc_code(err) == code, describe_exc(err)
    _assert_mentions(err, needles, ignore_case=True)
    _check_good_query_flight(flight_client)


def test_url_table_message_says_url_table(flight_client):
    err = _flight_error(flight_client, "SELECT * FROM 's3://bucket/x.parquet'")
    assert re.search(r"url table", str(err), re.IGNORECASE), describe_exc(err)


def test_refused_statements_have_no_effect(adbc_conn, flight_client, tmp_path):
    target = tmp_path / "copied.parquet"
    err = _flight_error(flight_client, f"COPY (SELECT * FROM customers.region) TO '{target}'")
    assert flight_grpc_code(err) == "INVALID_ARGUMENT", describe_exc(err)
    assert not target.exists(), "COPY was refused but wrote the file anyway"

    ddl = f"CREATE EXTERNAL TABLE sneaky STORED AS PARQUET LOCATION '{DATA / 'customers' / 'region'}/'"
    _adbc_error(adbc_conn, ddl)
    err = _adbc_error(adbc_conn, "SELECT * FROM sneaky")
    assert adbc_grpc_code(err) in ("NOT_FOUND", "INVALID_ARGUMENT"), describe_exc(err)

    _adbc_error(adbc_conn, "SET datafusion.execution.batch_size = 1")
    # the setting did not apply: results still arrive in normal-sized batches
    with adbc_conn.cursor() as cur:
        cur.execute("SELECT l_orderkey FROM sales.lineitem")
        batches = list(cur.fetch_record_batch())
    assert sum(b.num_rows for b in batches) == parquet_row_count(DATA / "sales" / "lineitem")
    assert max(b.num_rows for b in batches) > 1

    _check_good_query_adbc(adbc_conn)


def test_unqualified_table_is_refused(flight_client):
    """Tables are domain-qualified; a bare product name does not resolve."""
    err = _flight_error(flight_client, "SELECT * FROM orders")
    assert flight_grpc_code(err) in ("NOT_FOUND", "INVALID_ARGUMENT"), describe_exc(err)
    _assert_mentions(err, ["orders"])
    _check_good_query_flight(flight_client)


def test_errors_interleaved_on_one_connection(adbc_conn, flight_client):
    for _, sql, code, _ in BAD_SQL:
        err = _adbc_error(adbc_conn, sql)
        assert adbc_grpc_code(err) == code, describe_exc(err)
        _check_good_query_adbc(adbc_conn, "SELECT COUNT(*) AS n FROM customers.nation", 25)
        ferr = _flight_error(flight_client, sql)
        assert flight_grpc_code(ferr) == code, describe_exc(ferr)
        _check_good_query_flight(flight_client, "SELECT COUNT(*) AS n FROM customers.nation", 25)


# --------------------------------------------------------------------------------------
# a mesh with a corrupt file and drifted schemas
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def broken_server(start_server, tmp_path_factory):
    cfg = write_broken_mesh(tmp_path_factory.mktemp("broken-mesh"))
    srv = start_server(cfg, name="broken")
    yield srv
    srv.stop(check=True)


@pytest.mark.parametrize("product", list(BROKEN_PRODUCTS))
def test_broken_product_adbc(broken_server, product):
    conn = adbc_connect(broken_server.uri)
    try:
        _check_good_query_adbc(conn, "SELECT COUNT(*) AS n FROM healthy.region", 5)
        err = _adbc_error(conn, f"SELECT * FROM broken.{product}")
        _assert_mentions(err, BROKEN_PRODUCTS[product])
        if product in ("corrupt", "mangled"):
            assert adbc_grpc_code(err) in ("DATA_LOSS", "UNAVAILABLE"), describe_exc(err)
        else:
            assert adbc_grpc_code(err) not in ("INTERNAL", "UNKNOWN"), describe_exc(err)
        _check_good_query_adbc(conn, "SELECT COUNT(*) AS n FROM broken.nation", 25)
        _check_good_query_adbc(conn, "SELECT COUNT(*) AS n FROM healthy.region", 5)
    finally:
        conn.close()


@pytest.mark.parametrize("product", list(BROKEN_PRODUCTS))
def test_broken_product_flight(broken_server, product):
    client = flight_client(broken_server.uri)
    try:
        err = _flight_error(client, f"SELECT COUNT(*) FROM broken.{product}")
        _assert_mentions(err, BROKEN_PRODUCTS[product])
        if product in ("corrupt", "mangled"):
            assert flight_grpc_code(err) in ("DATA_LOSS", "UNAVAILABLE"), describe_exc(err)
        else:
            assert flight_grpc_code(err) not in ("INTERNAL", "UNKNOWN"), describe_exc(err)
        _check_good_query_flight(client, "SELECT COUNT(*) AS n FROM broken.nation", 25)
    finally:
        client.close()


def test_broken_products_in_joins(broken_server):
    """A join touching a broken product fails naming it; healthy joins still work."""
    client = flight_client(broken_server.uri)
    try:
        err = _flight_error(
            client,
            "SELECT COUNT(*) FROM broken.nation n JOIN broken.nation_extra x ON n.n_nationkey = x.n_nationkey",
        )
        _assert_mentions(err, ["broken.nation_extra"])
        t = flight_sql_query(
            client,
            "SELECT r.r_name, COUNT(*) AS n FROM broken.nation n JOIN healthy.region r "
            "ON n.n_regionkey = r.r_regionkey GROUP BY r.r_name",
        )
        assert sorted(t.column("n").to_pylist()) == [5, 5, 5, 5, 5]
    finally:
        client.close()


def test_unhealthy_products_are_still_listed(broken_server):
    client = flight_client(broken_server.uri)
    try:
        _, t, _ = flight_command(client, cmd_get_tables(catalog="mesh", db_schema_filter_pattern="broken"))
        assert set(t.column("table_name").to_pylist()) == {"nation", *BROKEN_PRODUCTS}
    finally:
        client.close()


# --------------------------------------------------------------------------------------
# a product on an unreachable object store
# --------------------------------------------------------------------------------------

UNREACHABLE_SECRET = "unreachable-secret-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def unreachable_server(start_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("unreachable-mesh")
    closed_port = free_port()  # nothing listens there once the probe socket is closed
    doc = {
        "catalog": "mesh",
        "stores": {
            "s3://meshgate-unreachable": {
                "endpoint": f"http://127.0.0.1:{closed_port}",
                "region": "us-east-1",
                "allow_http": "true",
                "path_style": "true",
                "access_key_id": "AKIAMESHGATEDUMMY",
                "secret_access_key": UNREACHABLE_SECRET,
            }
        },
        "domains": {
            "remote": {
                "owner": "qa@example.com",
                "products": [
                    {
                        "name": "offline",
                        "location": "s3://meshgate-unreachable/offline/",
                        "format": "parquet",
                        "schema": [{"name": "id", "type": "int64"}, {"name": "label", "type": "utf8"}],
                    },
                    {
                        "name": "unreachable",
                        "location": "s3://meshgate-unreachable/unreachable/",
                        "format": "parquet",
                    },
                ],
            },
            "local": {
                "owner": "qa@example.com",
                "products": [
                    {"name": "region", "location": f"{DATA / 'customers' / 'region'}/", "format": "parquet"},
                ],
            },
        },
    }
    cfg = write_yaml(root / "mesh.yaml", with_open_governance(doc))  # anonymous callers read all
    srv = start_server(cfg, name="unreachable")
    yield srv
    srv.stop(check=True)


@pytest.mark.parametrize("product", ["offline", "unreachable"])
def test_unreachable_store_flight(unreachable_server, product):
    client = flight_client(unreachable_server.uri)
    options = flight.FlightCallOptions(timeout=300)
    try:
        t = flight_sql_query(client, "SELECT COUNT(*) AS n FROM local.region", options)
        assert t.column("n").to_pylist() == [5]
        err = _flight_error(client, f"SELECT * FROM remote.{product}", options)
        assert flight_grpc_code(err) == "UNAVAILABLE", describe_exc(err)
        _assert_mentions(err, [f"remote.{product}"])
        assert UNREACHABLE_SECRET not in str(err)
        t = flight_sql_query(client, "SELECT COUNT(*) AS n FROM local.region", options)
        assert t.column("n").to_pylist() == [5]
    finally:
        client.close()


@pytest.mark.parametrize("product", ["offline", "unreachable"])
def test_unreachable_store_adbc(unreachable_server, product):
    conn = adbc_connect(unreachable_server.uri)
    try:
        err = _adbc_error(conn, f"SELECT * FROM remote.{product}")
        assert adbc_grpc_code(err) == "UNAVAILABLE", describe_exc(err)
        assert isinstance(err, adbc_driver_manager.OperationalError), describe_exc(err)
        _assert_mentions(err, [f"remote.{product}"])
        assert UNREACHABLE_SECRET not in str(err)
        _check_good_query_adbc(conn, "SELECT COUNT(*) AS n FROM local.region", 5)
    finally:
        conn.close()


def test_unreachable_store_metadata_hides_secret(unreachable_server):
    conn = adbc_connect(unreachable_server.uri)
    try:
        objs = conn.adbc_get_objects(depth="all").read_all()
        info = conn.adbc_get_info()
    finally:
        conn.close()
    assert UNREACHABLE_SECRET not in repr(objs.to_pylist())
    assert UNREACHABLE_SECRET not in repr(info)
    tables = {
        (s["db_schema_name"], t["table_name"])
        for c in objs.to_pylist()
        for s in c["catalog_db_schemas"] or []
        for t in s["db_schema_tables"] or []
    }
    assert {("remote", "offline"), ("remote", "unreachable"), ("local", "region")} <= tables


def test_unknown_actions_are_unimplemented_and_named(flight_client):
    """Flight SQL clients fall back on UNIMPLEMENTED, not on INVALID_ARGUMENT."""
    import mgtest

    with pytest.raises(Exception) as caught:
        list(flight_client.do_action(flight.Action("NoSuchAction", b"")))
    assert mgtest.flight_grpc_code(caught.value) == "UNIMPLEMENTED", mgtest.describe_exc(caught.value)
    assert "NoSuchAction" in str(caught.value)
    # the server keeps serving
    assert mgtest.flight_sql_query(flight_client, "SELECT 1 AS one").column("one")[0].as_py() == 1


@pytest.mark.parametrize("function, sql", [
    ("repeat", "SELECT length(repeat('x', 1500000000))"),
    ("lpad", "SELECT lpad('a', 2000000000, 'x') IS NULL"),
    ("rpad", "SELECT rpad(c_name, 100000000) FROM customers.customer"),
    ("repeat", "SELECT max(length(repeat(l_comment, CAST(l_quantity AS BIGINT) * 100000))) FROM sales.lineitem"),
], ids=["repeat", "lpad", "rpad-per-row", "repeat-by-column"])
def test_functions_sized_by_an_argument_cannot_take_the_servers_memory(demo_server, flight_client, function, sql):
    """repeat/lpad/rpad make their values outside the query pool: a huge count is
    refused before it runs (RESOURCE_EXHAUSTED naming the function), the server's memory
    does not grow by the gigabytes asked for, and it keeps answering."""
    before = demo_server.proc_status("VmHWM")
    err = _flight_error(flight_client, sql)
    assert flight_grpc_code(err) == "RESOURCE_EXHAUSTED", describe_exc(err)
    _assert_mentions(err, [f"{function}()"])
    grown = demo_server.proc_status("VmHWM") - before
    assert grown < 256 << 20, f"the server's peak RSS grew by {grown >> 20} MiB"
    _check_good_query_flight(flight_client)
    assert flight_sql_query(flight_client, "SELECT rpad('ab', 5, '-') AS p").column("p").to_pylist() == ["ab---"]
