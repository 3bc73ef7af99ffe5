"""Delta Lake products (`format: delta`) through the real server, with ADBC and pyarrow.flight.

A Delta table with two versions (written here with the `deltalake` package, commit
times set on its log files): the plain name reads the newest version, `name@v=N` pins a
version and `name@ts=<RFC 3339>` the version current then; a row filter applies to
pinned reads like to any other; the Delta version shows in mesh_catalog.products and
in the audit record and lineage event of a read; bad pins are refused naming the
product; a corrupt `_delta_log` makes only its product unhealthy. The demo mesh's
Delta product, supply.stock_movements, reads like the others.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from deltalake import write_deltalake

import auditkit
import mgtest
from mgtest import adbc_connect, flight_client, flight_grpc_code, flight_sql_query, server_message

# Commit times of the two versions of lake.events.
V0_AT = datetime(2026, 11, 1, tzinfo=timezone.utc)
V1_AT = datetime(2026, 11, 20, tzinfo=timezone.utc)

EVENTS_V0 = pa.table({"id": pa.array([1, 2, 3, 4], pa.int64()), "region": ["eu", "us", "eu", "us"],
                      "amount": pa.array([10.0, 20.0, 30.0, 40.0])})
EVENTS_V1 = pa.table({"id": pa.array([5, 6, 7, 8], pa.int64()), "region": ["eu", "us", "apac", "eu"],
                      "amount": pa.array([50.0, 60.0, 70.0, 80.0])})


def commit_at(table_dir, version: int, at: datetime) -> None:
    seconds = at.timestamp()
    os.utime(table_dir / "_delta_log" / f"{version:020}.json", (seconds, seconds))


def lake(root):
    """Writes the tables and the mesh; returns the mesh file."""
    events = root / "events"
    write_deltalake(str(events), EVENTS_V0)
    write_deltalake(str(events), EVENTS_V1, mode="append")
    commit_at(events, 0, V0_AT)
    commit_at(events, 1, V1_AT)

    regions = root / "regions"
    write_deltalake(str(regions), pa.table({"id": pa.array([1, 2, 3], pa.int64()), "region": ["eu", "us", "eu"]}),
                    partition_by=["region"])

    broken = root / "broken"
    write_deltalake(str(broken), EVENTS_V0)
    (broken / "_delta_log" / f"{0:020}.json").write_text('{"protocol": not json\n')

    (root / "flat").mkdir()
    pq.write_table(EVENTS_V0, root / "flat" / "part-0.parquet")

    ana_hash = next(u["password_hash"] for u in yaml.safe_load(mgtest.DEMO_CONFIG.read_text())["auth"]["users"]
                    if u["name"] == "ana")
    mesh = {
        "catalog": "mesh",
        "auth": {
            "anonymous": {"name": "tester", "groups": ["tester"]},
            "users": [{"name": "ana", "password_hash": ana_hash, "groups": ["owner"]}],
        },
        "governance": {"policies": [{
            "grants": [{"id": "everyone", "effect": "permit"}],
            "row_filters": [{"id": "owners-all-rows", "mode": "permissive", "when": "'owner' in principal.groups",
                             "filter": "true"}],
            "columns": [{"id": "all-columns", "select": "*", "action": "allow"}],
        }]},
        "domains": {"lake": {
            "owner": "lake@corp.example",
            "products": [
                {"name": "events", "version": "1.0.0", "location": str(events), "format": "delta",
                 "schema": [{"name": "id", "type": "int64", "key": True}, {"name": "region", "type": "utf8"},
                            {"name": "amount", "type": "float64"}]},
                {"name": "regions", "location": str(regions), "format": "delta"},
                {"name": "broken", "location": str(broken), "format": "delta"},
                {"name": "flat", "location": str(root / "flat") + "/", "format": "parquet"},
            ],
            "policies": [
                {"products": ["events"], "row_filters": [
                    {"id": "testers-eu-only", "mode": "permissive", "when": "'tester' in principal.groups",
                     "filter": "region = 'eu'"}]},
                {"products": ["regions", "broken", "flat"], "row_filters": [
                    {"id": "testers-all-rows", "mode": "permissive", "when": "'tester' in principal.groups",
                     "filter": "true"}]},
            ],
        }},
    }
    config = root / "mesh.yaml"
    config.write_text(yaml.safe_dump(mesh))
    return config


@pytest.fixture(scope="module")
def delta(start_server, tmp_path_factory):
    """(server, audit dir, lineage file) over the lake."""
    root = tmp_path_factory.mktemp("delta")
    config = lake(root)
    audit_dir = root / "audit"
    lineage = root / "lineage.jsonl"
    server = start_server(config, name="delta",
                          args=["--audit-dir", str(audit_dir), "--lineage-file", str(lineage)])
    yield server, audit_dir, lineage
    server.stop(check=True)


def ids(client, sql):
    return sorted(flight_sql_query(client, sql).column("id").to_pylist())


def adbc_ids(uri, sql, user=None):
    with adbc_connect(uri, user=user) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return sorted(row[0] for row in cur.fetchall())


def test_the_plain_name_reads_the_newest_version(delta):
    server, _, _ = delta
    client = flight_client(server.uri, "ana")
    assert ids(client, "SELECT id FROM lake.events") == [1, 2, 3, 4, 5, 6, 7, 8]
    assert adbc_ids(server.uri, "SELECT id FROM lake.events", user="ana") == [1, 2, 3, 4, 5, 6, 7, 8]
    table = flight_sql_query(client, "SELECT * FROM lake.events")
    assert table.schema.names == ["id", "region", "amount"]
    assert table.schema.field("region").type == pa.string()


def test_a_version_pin_reads_that_version(delta):
    server, _, _ = delta
    client = flight_client(server.uri, "ana")
    assert ids(client, 'SELECT id FROM lake."events@v=0"') == [1, 2, 3, 4]
    assert ids(client, 'SELECT id FROM lake."events@v=1"') == [1, 2, 3, 4, 5, 6, 7, 8]
    assert adbc_ids(server.uri, 'SELECT id FROM lake."events@v=0"', user="ana") == [1, 2, 3, 4]
    # Two versions of one table in one query: what version 1 added.
    added = 'SELECT id FROM lake.events EXCEPT SELECT id FROM lake."events@v=0"'
    assert ids(client, added) == [5, 6, 7, 8]


def test_a_timestamp_pin_reads_the_version_current_then(delta):
    server, _, _ = delta
    client = flight_client(server.uri, "ana")
    assert ids(client, 'SELECT id FROM lake."events@ts=2026-11-10T00:00:00Z"') == [1, 2, 3, 4]
    # In any zone; at the very time of a commit, that commit is current.
    assert ids(client, 'SELECT id FROM lake."events@ts=2026-11-10T01:00:00+01:00"') == [1, 2, 3, 4]
    assert ids(client, 'SELECT id FROM lake."events@ts=2026-11-20T00:00:00Z"') == [1, 2, 3, 4, 5, 6, 7, 8]
    assert adbc_ids(server.uri, 'SELECT id FROM lake."events@ts=2026-11-19T23:59:59Z"', user="ana") == [1, 2, 3, 4]


def test_the_row_filter_applies_to_pinned_reads(delta):
    server, _, _ = delta
    client = flight_client(server.uri)  # anonymous: tester, EU rows only
    assert ids(client, "SELECT id FROM lake.events") == [1, 3, 5, 8]
    assert ids(client, 'SELECT id FROM lake."events@v=0"') == [1, 3]
    assert ids(client, 'SELECT id FROM lake."events@ts=2026-11-10T00:00:00Z"') == [1, 3]
    assert adbc_ids(server.uri, 'SELECT id FROM lake."events@v=0" WHERE region <> \'eu\'') == []
    # A count over the pinned version cannot be answered from the log's row counts.
    count = flight_sql_query(client, 'SELECT count(*) AS n FROM lake."events@v=0"').to_pylist()
    assert count == [{"n": 2}]


def refusal(client, sql):
    with pytest.raises(Exception) as caught:
        flight_sql_query(client, sql)
    return flight_grpc_code(caught.value), server_message(caught.value)


def test_bad_pins_are_refused_naming_the_product(delta):
    server, _, _ = delta
    client = flight_client(server.uri, "ana")
    code, message = refusal(client, 'SELECT * FROM lake."events@v=999"')
    assert code == "NOT_FOUND"
    assert "lake.events has no Delta version 999 (its latest is 1)" in message
    code, message = refusal(client, 'SELECT * FROM lake."events@ts=2020-01-01T00:00:00Z"')
    assert code == "NOT_FOUND"
    assert "lake.events has no Delta version at 2020-01-01T00:00:00Z: that is before its first commit" in message
    assert "before its first commit (version 0, at 2026-11-01T00:00:00Z)" in message
    code, message = refusal(client, 'SELECT * FROM lake."events@v=abc"')
    assert code == "INVALID_ARGUMENT"
    assert "lake.events@v=abc" in message and "'abc' is not a Delta version" in message
    code, message = refusal(client, 'SELECT * FROM lake."events@ts=yesterday"')
    assert code == "INVALID_ARGUMENT"
    assert "'yesterday' is not an RFC 3339 timestamp" in message
    code, message = refusal(client, 'SELECT * FROM lake."flat@v=0"')
    assert code == "INVALID_ARGUMENT"
    assert "lake.flat is a parquet product, not a Delta table" in message
    # A product that does not exist is missing, whatever its pin says.
    code, message = refusal(client, 'SELECT * FROM lake."nope@v=abc"')
    assert code == "NOT_FOUND"
    assert "Delta" not in message


def test_the_catalog_shows_the_delta_version(delta):
    server, _, _ = delta
    with adbc_connect(server.uri, user="ana") as conn, conn.cursor() as cur:
        cur.execute("SELECT name, format, delta_version, files, row_count, health FROM mesh_catalog.products "
                    "WHERE domain = 'lake' ORDER BY name")
        rows = {row[0]: row[1:] for row in cur.fetchall()}
    assert rows["events"] == ("delta", 1, 2, 8, "healthy")  # the data files of version 1, its rows from the log
    assert rows["regions"][:2] == ("delta", 0)
    assert rows["flat"][:2] == ("parquet", None)
    assert rows["broken"][0] == "delta" and rows["broken"][1] is None and rows["broken"][4] == "unhealthy"
    # Someone some rows are hidden from sees the version, not the figures about the whole table.
    tester = flight_client(server.uri)
    [row] = flight_sql_query(tester, "SELECT delta_version, row_count FROM mesh_catalog.products "
                                     "WHERE domain = 'lake' AND name = 'events'").to_pylist()
    assert row == {"delta_version": 1, "row_count": None}


def test_a_corrupt_log_makes_only_its_product_unhealthy(delta):
    server, _, _ = delta
    client = flight_client(server.uri, "ana")
    code, message = refusal(client, "SELECT * FROM lake.broken")
    assert code == "DATA_LOSS"
    assert message.startswith("product lake.broken has unreadable files: its Delta log cannot be read"), message
    code, message = refusal(client, 'SELECT * FROM lake."broken@v=0"')
    assert "product lake.broken" in message
    assert ids(client, "SELECT id FROM lake.events") == [1, 2, 3, 4, 5, 6, 7, 8]
    assert ids(client, "SELECT id FROM lake.flat") == [1, 2, 3, 4]


def test_partition_values_are_plain_strings(delta):
    server, _, _ = delta
    client = flight_client(server.uri, "ana")
    table = flight_sql_query(client, "SELECT id, region FROM lake.regions ORDER BY id")
    assert table.schema.field("region").type == pa.string()
    assert table.to_pylist() == [{"id": 1, "region": "eu"}, {"id": 2, "region": "us"}, {"id": 3, "region": "eu"}]
    with adbc_connect(server.uri, user="ana") as conn, conn.cursor() as cur:
        cur.execute("SELECT region, count(*) FROM lake.regions WHERE region = 'eu' GROUP BY region")
        assert cur.fetchall() == [("eu", 2)]


def test_the_audit_and_lineage_name_the_delta_version_read(delta):
    server, audit_dir, lineage = delta
    sql = 'SELECT id, amount FROM lake."events@ts=2026-11-10T00:00:00Z" WHERE id > 1'
    client = flight_client(server.uri, "ana")
    flight_sql_query(client, sql)
    [record] = auditkit.wait_for_record(audit_dir, sql, "ana")
    [read] = record["products"]
    assert (read["domain"], read["product"], read["version"], read["delta_version"]) == ("lake", "events", "1.0.0", 0)
    latest = "SELECT count(*) AS n FROM lake.events"
    flight_sql_query(client, latest)
    [record] = auditkit.wait_for_record(audit_dir, latest, "ana")
    assert record["products"][0]["delta_version"] == 1
    plain = "SELECT count(*) AS n FROM lake.flat"
    flight_sql_query(client, plain)
    [record] = auditkit.wait_for_record(audit_dir, plain, "ana")
    assert "delta_version" not in record["products"][0]

    def pinned_event():
        for event in auditkit.read_jsonl(lineage):
            query = event["job"].get("facets", {}).get("sql", {}).get("query", "")
            if event["eventType"] == "COMPLETE" and "events@ts=2026-11-10" in query:
                return event
        return None

    event = mgtest.wait_for(pinned_event, "the lineage event of the pinned read", timeout=30)
    [dataset] = event["inputs"]
    assert dataset["name"] == "lake.events"
    assert dataset["facets"]["version"]["datasetVersion"] == "1.0.0+delta.0"


def test_the_demo_delta_product(demo_server):
    client = flight_client(demo_server.uri, "ana")
    total = flight_sql_query(client, "SELECT count(*) AS n FROM supply.stock_movements").to_pylist()
    first = flight_sql_query(client, 'SELECT count(*) AS n FROM supply."stock_movements@v=0"').to_pylist()
    assert (total, first) == ([{"n": 60}], [{"n": 40}])
    # Every movement is of a part a supplier stocks.
    orphans = flight_sql_query(client, (
        "SELECT count(*) AS n FROM supply.stock_movements m LEFT JOIN supply.partsupp ps "
        "ON m.m_partkey = ps.ps_partkey AND m.m_suppkey = ps.ps_suppkey WHERE ps.ps_partkey IS NULL")).to_pylist()
    assert orphans == [{"n": 0}]
    [row] = flight_sql_query(client, "SELECT format, delta_version, version FROM mesh_catalog.products "
                                     "WHERE domain = 'supply' AND name = 'stock_movements'").to_pylist()
    assert row == {"format": "delta", "delta_version": 1, "version": "1.0.0"}
    # A contractor reads no supply product: pinned or not, it is missing.
    carl = flight_client(demo_server.uri, "carl")
    code, message = refusal(carl, 'SELECT * FROM supply."stock_movements@v=0"')
    assert code == "NOT_FOUND" and "Delta" not in message
