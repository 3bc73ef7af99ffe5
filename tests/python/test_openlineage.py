"""OpenLineage run events through the real server (docs/catalog.md, "Lineage (OpenLineage)").

`meshgate serve --lineage-file F --lineage-url U` writes every query's events to F and
POSTs them to U. Checked here:

- every event is valid against the official OpenLineage schema shipped in
  testdata/openlineage (jsonschema, `$ref`s resolved from those files, no network), and
  so is each facet against its own schema;
- one START, then one COMPLETE (or FAIL with an errorMessage) per query, the run id
  being the audit record's query id; job `<principal>.<fingerprint[:12]>`, SQL redacted;
- inputs named `<domain>.<product>` in `meshgate://<catalog>` with the product version;
  column lineage flags the column carl sees masked (`masking: true`);
- a loopback HTTP receiver gets the same events; a receiver that is down (a closed port)
  neither slows nor fails queries, and the file still gets every event;
- a bad --lineage-url stops `meshgate serve` at start with exit code 2.
"""

from __future__ import annotations

import socket
import time
from collections import defaultdict

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import auditkit
import mgtest
from auditkit import LineageReceiver, OpenLineageSchemas, read_jsonl, wait_for_record

MASKED = "SELECT o_orderkey AS k, o_totalprice FROM sales.orders WHERE o_orderkey < 2000 AND o_custkey > 10"
FAILING = "SELECT o_orderkey / (o_orderkey - o_orderkey) AS boom FROM sales.orders"
REFUSED = "SELECT c_email FROM customers.customer"


@pytest.fixture(scope="module")
def schemas():
    return OpenLineageSchemas()


@pytest.fixture(scope="module")
def lineage(start_server, tmp_path_factory):
    """A server with an audit log, a lineage file and a live receiver; runs three queries
    (allowed with a mask, failing at run time, refused) and stops, so every event is out.
    Returns (audit dir, events from the file, events the receiver got)."""
    tmp = tmp_path_factory.mktemp("lineage")
    with LineageReceiver() as receiver:
        server = start_server(mgtest.DEMO_CONFIG, name="lineage", args=[
            "--audit-dir", str(tmp / "audit"), "--lineage-file", str(tmp / "lineage.jsonl"),
            "--lineage-url", receiver.url])
        carl = mgtest.flight_client(server.uri, user="carl")
        stella = mgtest.flight_client(server.uri, user="stella")
        try:
            assert mgtest.flight_sql_query(carl, MASKED).num_rows > 0
            with pytest.raises((flight.FlightError, pa.ArrowException)):
                mgtest.flight_sql_query(stella, FAILING)
            with pytest.raises((flight.FlightError, pa.ArrowException)):
                mgtest.flight_sql_query(carl, REFUSED)
            wait_for_record(tmp / "audit", REFUSED, "carl")
            # Six events: START and an end for each query.
            mgtest.wait_for(lambda: len(receiver.received()) >= 6, "six events at the receiver", timeout=30)
        finally:
            carl.close()
            stella.close()
        server.stop(check=True)
        assert receiver.paths and set(receiver.paths) == {"/api/v1/lineage"}
        received = receiver.received()
    return tmp / "audit", read_jsonl(tmp / "lineage.jsonl"), received


def runs(events):
    by_run = defaultdict(list)
    for event in events:
        by_run[event["run"]["runId"]].append(event)
    return by_run


def test_every_event_is_valid_against_the_official_schema(lineage, schemas):
    _, events, received = lineage
    assert len(events) == 6
    for event in events + received:
        schemas.validate(event)


def test_each_query_starts_then_completes_or_fails(lineage):
    audit_dir, events, _ = lineage
    records = {record["query_id"]: record for record in auditkit.audit_records(audit_dir)}
    by_run = runs(events)
    assert set(by_run) == set(records)
    for run_id, run_events in by_run.items():
        record = records[run_id]
        types = [event["eventType"] for event in run_events]
        assert types == (["START", "COMPLETE"] if record["outcome"] == "ok" else ["START", "FAIL"]), (record, types)
        start, end = run_events
        assert start["eventTime"] == record["time"] and end["eventTime"] >= start["eventTime"]
        for event in run_events:
            assert event["job"] == {**start["job"]}
            assert event["job"]["namespace"] == "meshgate://mesh"
            assert event["job"]["name"] == f"{record['principal']}.{record['fingerprint'][:12]}"
            assert event["producer"] == "https://github.com/meshgate/meshgate"
        if record["outcome"] != "ok":
            assert end["run"]["facets"]["errorMessage"]["message"] == record["error"]
        else:
            assert "facets" not in end["run"]


def test_inputs_carry_version_columns_and_masked_column_lineage(lineage):
    audit_dir, events, _ = lineage
    [record] = [r for r in auditkit.audit_records(audit_dir) if r["sql"] == MASKED]
    start, complete = runs(events)[record["query_id"]]
    # Literals never reach lineage consumers.
    assert start["job"]["facets"]["sql"]["query"] == (
        "SELECT o_orderkey AS k, o_totalprice FROM sales.orders WHERE o_orderkey < ? AND o_custkey > ?")
    [read] = record["products"]
    for event in (start, complete):
        [dataset] = event["inputs"]
        assert (dataset["namespace"], dataset["name"]) == ("meshgate://mesh", "sales.orders")
        assert dataset["facets"]["version"]["datasetVersion"] == read["version"]
        assert [f["name"] for f in dataset["facets"]["schema"]["fields"]] == read["columns"]
        [result] = event["outputs"]
        assert [f["name"] for f in result["facets"]["schema"]["fields"]] == ["k", "o_totalprice"]
        fields = result["facets"]["columnLineage"]["fields"]
        assert fields["k"]["inputFields"] == [{
            "namespace": "meshgate://mesh", "name": "sales.orders", "field": "o_orderkey",
            "transformations": [{"type": "DIRECT", "subtype": "IDENTITY", "masking": False}]}]
        [price] = fields["o_totalprice"]["inputFields"]
        assert price["field"] == "o_totalprice"
        assert price["transformations"] == [{"type": "DIRECT", "subtype": "IDENTITY", "masking": True}]


def test_a_refused_query_fails_without_inputs(lineage):
    audit_dir, events, _ = lineage
    [record] = [r for r in auditkit.audit_records(audit_dir) if r["sql"] == REFUSED]
    start, fail = runs(events)[record["query_id"]]
    assert fail["eventType"] == "FAIL"
    assert "customers.customer" in fail["run"]["facets"]["errorMessage"]["message"]
    assert "inputs" not in start and "inputs" not in fail


def test_the_receiver_gets_the_same_events(lineage):
    _, events, received = lineage
    key = lambda e: (e["run"]["runId"], e["eventType"])  # noqa: E731
    assert sorted(received, key=key) == sorted(events, key=key)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_receiver_that_is_down_neither_slows_nor_fails_queries(start_server, tmp_path, schemas):
    events_file = tmp_path / "lineage.jsonl"
    url = f"http://127.0.0.1:{closed_port()}/api/v1/lineage"
    server = start_server(mgtest.DEMO_CONFIG, name="lineage-down",
                          args=["--lineage-file", str(events_file), "--lineage-url", url])
    client = mgtest.flight_client(server.uri, user="stella")
    try:
        sql = "SELECT n_name FROM customers.nation WHERE n_nationkey = 1"
        mgtest.flight_sql_query(client, sql)  # warm up: first plan, connection
        durations = []
        for _ in range(20):
            started = time.monotonic()
            assert mgtest.flight_sql_query(client, sql).num_rows == 1
            durations.append(time.monotonic() - started)
    finally:
        client.close()
    server.stop(check=True)
    # A POST that waited for the endpoint would cost at least a connection attempt per
    # event; the queries take what they take without lineage (well under a second).
    assert max(durations) < 1.0, durations
    events = read_jsonl(events_file)
    assert len(events) == 2 * 21
    for event in events:
        schemas.validate(event)
    assert "lineage event dropped: the endpoint cannot be reached" in server.stderr_text()


def test_a_bad_lineage_url_stops_the_server_at_start(meshgate_bin, log_dir):
    server = mgtest.Server(meshgate_bin, mgtest.DEMO_CONFIG, log_dir=log_dir, name="bad-lineage-url",
                           args=["--lineage-url", "localhost:5000/api/v1/lineage"])
    with pytest.raises(mgtest.ServerStartError) as failed:
        server.start()
    assert failed.value.returncode == 2
    assert "--lineage-url" in failed.value.stderr
