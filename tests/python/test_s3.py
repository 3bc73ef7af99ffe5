"""A product on S3 (moto's standalone server on loopback) serves the same rows as the local file,
and the store's secret never reaches a client."""

from __future__ import annotations

import uuid

import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from mgtest import (
    adbc_connect,
    DATA,
    adbc_query,
    cmd_get_sql_info,
    cmd_get_tables,
    describe_exc,
    flight_client,
    flight_command,
    flight_sql_query,
    load_contract,
    product_line,
    run_meshgate,
    s3_client,
    with_open_governance,
    write_yaml,
)

BUCKET = "meshgate-test-" + uuid.uuid4().hex[:8]
ACCESS_KEY = "AKIAMESHGATE" + uuid.uuid4().hex[:8].upper()
SECRET = "meshgate-secret-" + uuid.uuid4().hex
CUSTOMER_DIR = DATA / "customers" / "customer"
CONTRACT = load_contract()


@pytest.fixture(scope="module")
def s3_bucket(moto_endpoint):
    s3 = s3_client(moto_endpoint, ACCESS_KEY, SECRET)
    s3.create_bucket(Bucket=BUCKET)
    files = sorted(CUSTOMER_DIR.glob("*.parquet"))
    assert files, f"no demo customer files in {CUSTOMER_DIR}"
    for f in files:
        s3.upload_file(str(f), BUCKET, f"customer/{f.name}")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="customer/")
    assert listed["KeyCount"] == len(files)
    return BUCKET


def _customer_schema_yaml():
    out = []
    for c in CONTRACT[("customers", "customer")]:
        t = c.type
        if pa.types.is_decimal(t):
            name = f"decimal({t.precision}, {t.scale})"
        else:
            name = {pa.int64(): "int64", pa.string(): "utf8"}[t]
        out.append({"name": c.name, "type": name, "nullable": c.nullable})
    return out


def _config(moto_endpoint, *, with_missing: bool) -> dict:
    remote_products = [
        {"name": "customer", "location": f"s3://{BUCKET}/customer/", "format": "parquet"},
        {
            "name": "customer_declared",
            "location": f"s3://{BUCKET}/customer/",
            "format": "parquet",
            "schema": _customer_schema_yaml(),
        },
    ]
    if with_missing:
        remote_products.append(
            {"name": "missing", "location": f"s3://{BUCKET}/nothing-here/", "format": "parquet"}
        )
    return with_open_governance({  # anonymous callers read everything
        "catalog": "mesh",
        "stores": {
            f"s3://{BUCKET}": {
                "endpoint": moto_endpoint,
                "region": "us-east-1",
                "allow_http": "true",
                "path_style": "true",
                "access_key_id": "${MESHGATE_TEST_KEY}",
                "secret_access_key": "${MESHGATE_TEST_SECRET}",
            }
        },
        "domains": {
            "crm_s3": {
                "owner": "crm-team@corp.example",
                "description": "customer master data replicated to object storage",
                "products": remote_products,
            },
            "crm_local": {
                "owner": "crm-team@corp.example",
                "products": [
                    {"name": "customer", "location": f"{CUSTOMER_DIR}/", "format": "parquet"},
                ],
            },
        },
    })


ENV = {"MESHGATE_TEST_KEY": ACCESS_KEY, "MESHGATE_TEST_SECRET": SECRET}


@pytest.fixture(scope="module")
def s3_config(s3_bucket, moto_endpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("s3-mesh")
    good = write_yaml(root / "mesh.yaml", _config(moto_endpoint, with_missing=False))
    with_missing = write_yaml(root / "mesh-missing.yaml", _config(moto_endpoint, with_missing=True))
    return good, with_missing


@pytest.fixture(scope="module")
def s3_server(start_server, s3_config):
    srv = start_server(s3_config[1], env=ENV, name="s3")
    yield srv
    srv.stop(check=True)


def _direct_customer() -> pa.Table:
    files = sorted(CUSTOMER_DIR.glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]).sort_by("c_custkey")


def _normalise(t: pa.Table, like: pa.Table) -> pa.Table:
    return t.sort_by("c_custkey").select(like.column_names).cast(like.schema)


@pytest.mark.parametrize("product", ["customer", "customer_declared"])
def test_s3_equals_local_and_file(s3_server, product):
    direct = _direct_customer()
    client = flight_client(s3_server.uri)
    conn = adbc_connect(s3_server.uri)
    try:
        remote_flight = flight_sql_query(client, f"SELECT * FROM crm_s3.{product}")
        remote_adbc = adbc_query(conn, f"SELECT * FROM crm_s3.{product}")
        local = flight_sql_query(client, "SELECT * FROM crm_local.customer")
    finally:
        client.close()
        conn.close()
    assert remote_flight.num_rows == direct.num_rows == local.num_rows == 1500
    assert remote_flight.column_names == direct.column_names
    for f in direct.schema:
        assert remote_flight.schema.field(f.name).type == f.type, f.name
    assert _normalise(remote_flight, direct).equals(direct)
    assert _normalise(remote_adbc, direct).equals(direct)
    assert _normalise(local, direct).equals(direct)
    assert _normalise(remote_flight, direct).equals(_normalise(local, direct))


def test_s3_join_with_local(s3_server):
    client = flight_client(s3_server.uri)
    try:
        t = flight_sql_query(
            client,
            "SELECT COUNT(*) AS n, SUM(CASE WHEN r.c_email = l.c_email AND r.c_acctbal = l.c_acctbal "
            "THEN 1 ELSE 0 END) AS same FROM crm_s3.customer r JOIN crm_local.customer l "
            "ON r.c_custkey = l.c_custkey",
        )
    finally:
        client.close()
    assert t.to_pylist() == [{"n": 1500, "same": 1500}]


def test_s3_aggregate_matches_file(s3_server):
    direct = _direct_customer()
    expected = {}
    for row in direct.select(["c_nationkey", "c_acctbal"]).to_pylist():
        n, s = expected.get(row["c_nationkey"], (0, 0))
        expected[row["c_nationkey"]] = (n + 1, s + row["c_acctbal"])
    conn = adbc_connect(s3_server.uri)
    try:
        t = adbc_query(
            conn,
            "SELECT c_nationkey, COUNT(*) AS n, SUM(c_acctbal) AS bal FROM crm_s3.customer GROUP BY c_nationkey",
        )
    finally:
        conn.close()
    got = {r["c_nationkey"]: (r["n"], r["bal"]) for r in t.to_pylist()}
    assert got == expected


def test_s3_secret_not_in_errors_or_metadata(s3_server):
    seen = []
    conn = adbc_connect(s3_server.uri)
    client = flight_client(s3_server.uri)
    try:
        # errors: a product under the store with no files, an unknown product, bad SQL
        for sql in [
            "SELECT * FROM crm_s3.missing",
            "SELECT * FROM crm_s3.nope",
            "SELECT * FROM 's3://" + BUCKET + "/customer/'",
            "SELEC * FROM crm_s3.customer",
        ]:
            with pytest.raises(adbc_driver_manager.Error) as ei:
                adbc_query(conn, sql)
            seen.append(describe_exc(ei.value) + repr(getattr(ei.value, "details", None)))
            with pytest.raises((flight.FlightError, pa.ArrowException)) as fe:
                flight_sql_query(client, sql)
            seen.append(describe_exc(fe.value))
        assert "crm_s3.missing" in seen[0], seen[0]
        # metadata: every level, the table schemas, all SqlInfo values
        seen.append(repr(conn.adbc_get_objects(depth="all").read_all().to_pylist()))
        seen.append(repr(conn.adbc_get_info()))
        seen.append(repr(conn.adbc_get_table_schema("customer", db_schema_filter="crm_s3")))
        _, t, _ = flight_command(client, cmd_get_tables(include_schema=True))
        seen.append(repr(t.to_pylist()))
        for blob in t.column("table_schema").to_pylist():
            seen.append(repr(pa.ipc.read_schema(pa.py_buffer(blob)).metadata))
        _, t, _ = flight_command(client, cmd_get_sql_info([]))
        seen.append(repr(t.to_pylist()))
        # the good product still works after all that
        assert adbc_query(conn, "SELECT COUNT(*) AS n FROM crm_s3.customer").column("n").to_pylist() == [1500]
    finally:
        conn.close()
        client.close()
    for text in seen:
        assert SECRET not in text, text
    # sanity: the collected metadata does describe the S3 products
    assert any("crm_s3" in text and "customer_declared" in text for text in seen)


def test_check_s3_mesh(meshgate_bin, s3_config, s3_bucket):
    res = run_meshgate(meshgate_bin, "check", "--config", str(s3_config[0]), env=ENV)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert SECRET not in out
    for domain, product in [("crm_s3", "customer"), ("crm_s3", "customer_declared"), ("crm_local", "customer")]:
        assert product_line(out, domain, product), f"no report line for {domain}.{product}:\n{out}"


def test_s3_prefix_with_nothing_under_it_is_unavailable_naming_the_product(s3_server):
    """An object-store location is missing when no object lives under its prefix."""
    from mgtest import adbc_grpc_code, flight_grpc_code, server_message

    client = flight_client(s3_server.uri)
    conn = adbc_connect(s3_server.uri)
    try:
        with pytest.raises((flight.FlightError, pa.ArrowException)) as caught:
            flight_sql_query(client, "SELECT * FROM crm_s3.missing")
        assert flight_grpc_code(caught.value) == "UNAVAILABLE", describe_exc(caught.value)
        message = server_message(caught.value)
        assert "crm_s3.missing" in message and "location does not exist" in message, message
        with pytest.raises(adbc_driver_manager.Error) as ei:
            adbc_query(conn, "SELECT count(*) FROM crm_s3.missing")
        assert adbc_grpc_code(ei.value) == "UNAVAILABLE", describe_exc(ei.value)
    finally:
        client.close()
        conn.close()
