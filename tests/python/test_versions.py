"""Product versions: several versions of one product at different locations.

The plain name reads the current version (the newest active one); `name@pin` pins one
(`@2` the newest 2.x, `@2.1.0` exactly that version); a deprecated version still
answers; a retired one is NOT_FOUND with a message naming the current version. Versions
show in `mesh_catalog.products`. Through the real server, with ADBC and pyarrow.flight.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest
import yaml

from mgtest import (
    OPEN_GOVERNANCE,
    adbc_connect,
    cmd_statement_query,
    flight_client,
    flight_grpc_code,
    flight_sql_query,
    server_message,
)


def write_version(root, version, rows, extra=False):
    folder = root / "data" / f"events_v{version}"
    folder.mkdir(parents=True)
    columns = {"id": pa.array([r for r in range(rows)], pa.int64()), "kind": pa.array(["v%s" % version] * rows)}
    if extra:
        columns["weight"] = pa.array([1.5] * rows)
    pq.write_table(pa.table(columns), folder / "part-0.parquet")
    return folder


def descriptor(root, version, status, rows, extra=False, sunset=None):
    folder = write_version(root, version.split(".")[0], rows, extra)
    schema = [{"name": "id", "type": "int64", "nullable": False, "key": True}, {"name": "kind", "type": "utf8"}]
    if extra:
        schema.append({"name": "weight", "type": "float64"})
    product = {
        "name": "events",
        "description": f"events, version {version}",
        "version": version,
        "status": status,
        "location": str(folder) + "/",
        "format": "parquet",
        "schema": schema,
    }
    if sunset:
        product["sunset"] = sunset
    return product


@pytest.fixture(scope="module")
def versioned(start_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    products = [
        descriptor(root, "1.0.0", "retired", 1),
        descriptor(root, "2.3.0", "deprecated", 2, sunset="2027-03-31"),
        descriptor(root, "3.1.0", "active", 3, extra=True),
    ]
    mesh = {
        "catalog": "mesh",
        "domains": {"web": {"owner": "web@corp.example", "products": products}},
        **OPEN_GOVERNANCE,
    }
    config = root / "mesh.yaml"
    config.write_text(yaml.safe_dump(mesh))
    server = start_server(config, name="versions")
    yield server
    server.stop()


def kinds(client, table):
    result = flight_sql_query(client, f"SELECT kind, count(*) AS n FROM web.{table} GROUP BY kind")
    return {(r["kind"], r["n"]) for r in result.to_pylist()}


def test_plain_name_reads_the_current_version(versioned):
    client = flight_client(versioned.uri)
    assert kinds(client, "events") == {("v3", 3)}
    assert "weight" in flight_sql_query(client, "SELECT * FROM web.events").schema.names


def test_pins_read_the_version_they_name(versioned):
    client = flight_client(versioned.uri)
    assert kinds(client, '"events@3"') == {("v3", 3)}
    assert kinds(client, '"events@3.1.0"') == {("v3", 3)}
    # Deprecated still answers, with its own schema.
    assert kinds(client, '"events@2"') == {("v2", 2)}
    assert kinds(client, '"events@2.3"') == {("v2", 2)}
    assert flight_sql_query(client, 'SELECT * FROM web."events@2"').schema.names == ["id", "kind"]
    # A join across versions of one product.
    joined = flight_sql_query(
        client, 'SELECT count(*) AS n FROM web.events a JOIN web."events@2" b ON a.id = b.id'
    ).to_pylist()
    assert joined == [{"n": 2}]


def test_a_retired_version_is_not_found_and_names_the_current_one(versioned):
    client = flight_client(versioned.uri)
    with pytest.raises(Exception) as retired:
        flight_sql_query(client, 'SELECT * FROM web."events@1"')
    assert flight_grpc_code(retired.value) == "NOT_FOUND"
    message = server_message(retired.value)
    assert "version 1.0.0 of web.events is retired" in message
    assert "web.events (version 3.1.0)" in message
    with pytest.raises(Exception) as unknown:
        flight_sql_query(client, 'SELECT * FROM web."events@9"')
    assert flight_grpc_code(unknown.value) == "NOT_FOUND"
    assert "retired" not in server_message(unknown.value)


def test_versions_in_the_catalog(versioned):
    with adbc_connect(versioned.uri) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT version, status, table_name, is_current, sunset FROM mesh_catalog.products "
            "WHERE domain = 'web' AND name = 'events' ORDER BY version"
        )
        assert cur.fetchall() == [
            ("1.0.0", "retired", None, False, None),
            ("2.3.0", "deprecated", "events@2.3.0", False, "2027-03-31"),
            ("3.1.0", "active", "events", True, None),
        ]
        # Listings name each product once, by its plain name.
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'web'")
        assert [r[0] for r in cur.fetchall()] == ["events"]


def test_demo_mesh_serves_two_versions_of_orders(demo_server):
    client = flight_client(demo_server.uri, "ana")
    current = flight_sql_query(client, "SELECT count(*) AS n FROM sales.orders").to_pylist()[0]["n"]
    first = flight_sql_query(client, 'SELECT count(*) AS n FROM sales."orders@0"').to_pylist()[0]["n"]
    in_1992 = flight_sql_query(
        client, "SELECT count(*) AS n FROM sales.orders WHERE o_year = 1992"
    ).to_pylist()[0]["n"]
    assert first == in_1992 and current > first
    rows = flight_sql_query(
        client,
        "SELECT version, status, sunset FROM mesh_catalog.products WHERE domain = 'sales' AND name = 'orders' "
        "ORDER BY version",
    ).to_pylist()
    assert [(r["version"], r["status"]) for r in rows] == [("0.9.0", "deprecated"), ("1.4.0", "active")]


def flight_info_warnings(client, sql):
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)))
    return json.loads(info.app_metadata)["warnings"] if info.app_metadata else []


def test_a_deprecated_version_answers_with_a_warning(versioned):
    client = flight_client(versioned.uri)
    [warning] = flight_info_warnings(client, 'SELECT * FROM web."events@2"')
    assert warning == (
        "web.events version 2.3.0 is deprecated and stops being served on 2027-03-31; "
        "move to web.events (version 3.1.0)"
    )
    assert flight_info_warnings(client, "SELECT * FROM web.events") == []
