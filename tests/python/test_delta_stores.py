"""Delta products on object stores: the demo's Delta table copied to S3 (moto's standalone
server on loopback) serves its newest version and pins the older one like the local copy;
an http(s) location cannot serve a Delta table and is a configuration error by path."""

from __future__ import annotations

import uuid

import pytest

from mgtest import (
    DATA,
    adbc_connect,
    flight_client,
    flight_sql_query,
    s3_client,
    run_meshgate,
    with_open_governance,
    write_yaml,
)

BUCKET = "meshgate-delta-" + uuid.uuid4().hex[:8]
ACCESS_KEY = "AKIAMESHGATE" + uuid.uuid4().hex[:8].upper()
SECRET = "meshgate-secret-" + uuid.uuid4().hex
TABLE = DATA / "supply" / "stock_movements"
ENV = {"MESHGATE_TEST_KEY": ACCESS_KEY, "MESHGATE_TEST_SECRET": SECRET}


@pytest.fixture(scope="module")
def delta_on_s3(moto_endpoint, start_server, tmp_path_factory):
    s3 = s3_client(moto_endpoint, ACCESS_KEY, SECRET)
    s3.create_bucket(Bucket=BUCKET)
    files = sorted(p for p in TABLE.rglob("*") if p.is_file())
    assert any(p.parent.name == "_delta_log" for p in files), f"no Delta log under {TABLE}"
    for path in files:
        s3.upload_file(str(path), BUCKET, f"lake/moves/{path.relative_to(TABLE).as_posix()}")
    mesh = with_open_governance({
        "catalog": "mesh",
        "stores": {f"s3://{BUCKET}": {
            "endpoint": moto_endpoint, "region": "us-east-1", "allow_http": "true", "path_style": "true",
            "access_key_id": "${MESHGATE_TEST_KEY}", "secret_access_key": "${MESHGATE_TEST_SECRET}",
        }},
        "domains": {
            "remote": {"owner": "lake@corp.example", "products": [
                {"name": "moves", "location": f"s3://{BUCKET}/lake/moves/", "format": "delta"},
                {"name": "nothing", "location": f"s3://{BUCKET}/lake/nothing/", "format": "delta"},
            ]},
            "local": {"owner": "lake@corp.example", "products": [
                {"name": "moves", "location": str(TABLE), "format": "delta"},
            ]},
        },
    })
    config = write_yaml(tmp_path_factory.mktemp("delta-s3") / "mesh.yaml", mesh)
    server = start_server(config, env=ENV, name="delta-s3")
    yield server
    server.stop(check=True)


def rows(client, sql):
    return sorted(tuple(r.values()) for r in flight_sql_query(client, sql).to_pylist())


def test_a_delta_table_on_s3_reads_like_the_local_copy(delta_on_s3):
    client = flight_client(delta_on_s3.uri)
    for table in ["moves", '"moves@v=0"', '"moves@v=1"']:
        remote = rows(client, f"SELECT * FROM remote.{table}")
        assert remote == rows(client, f"SELECT * FROM local.{table}"), table
    assert len(rows(client, "SELECT * FROM remote.moves")) == 60
    assert len(rows(client, 'SELECT * FROM remote."moves@v=0"')) == 40
    with adbc_connect(delta_on_s3.uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT name, delta_version, files, row_count, health, problem FROM mesh_catalog.products "
                    "WHERE domain = 'remote' ORDER BY name")
        moves, nothing = cur.fetchall()
    assert moves == ("moves", 1, 2, 60, "healthy", None)
    # A prefix with no Delta log is unavailable, named, without the bucket's address.
    assert nothing[:2] == ("nothing", None) and nothing[4] == "unhealthy"
    assert nothing[5].startswith("product remote.nothing is unavailable"), nothing[5]


def test_an_http_location_cannot_serve_delta(meshgate_bin, tmp_path):
    mesh = with_open_governance({"catalog": "mesh", "domains": {"web": {"owner": "web@corp.example", "products": [
        {"name": "events", "location": "https://data.example.com/events/", "format": "delta"},
        {"name": "parts", "location": str(TABLE), "format": "delta", "partitions": [{"name": "day", "type": "date32"}]},
    ]}}})
    config = write_yaml(tmp_path / "mesh.yaml", mesh)
    result = run_meshgate(meshgate_bin, "check", "--config", str(config))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert ("domains.web.products.events.location: format: delta needs a store that can list its _delta_log "
            "folder; https locations cannot (use file, s3, gs or az)") in output, output
    assert "domains.web.products.parts.partitions: a Delta table's partitions come from its log" in output, output
