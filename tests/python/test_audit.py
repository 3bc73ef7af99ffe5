"""The audit log through the real server: `meshgate serve --audit-dir DIR` writes one JSON
line per query (docs/catalog.md, "Audit log").

- an allowed query: principal, groups, declared purpose, kind, SQL with its literals, the
  fingerprint, the product read with its version, columns, masked columns and the policy
  rules that fired (carl: a contractor, filtered and masked on sales.orders), rows and bytes;
- a refused query (a product carl may not see: NOT_FOUND at GetFlightInfo) and a failed
  one (a division by zero while streaming);
- prepared statements recorded as `prepared` (pyarrow.flight and ADBC, whose purpose
  travels as a call header), the fingerprint the same for the same shape; a Substrait
  plan as `substrait`; a stream the client abandons as `cancelled`;
- rotation by size with retention (`--audit-max-bytes`, `--audit-keep`);
- stop (SIGTERM) leaves every record written.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import auditkit
import mgtest
from auditkit import audit_records, purpose_options, wait_for_record

ALLOWED = "SELECT o_orderkey, o_totalprice FROM sales.orders WHERE o_orderkey < 3000"
REFUSED = "SELECT c_name FROM customers.customer WHERE c_custkey = 7"
CLIENT_ERRORS = (flight.FlightError, pa.ArrowException)  # pyarrow maps some codes to Arrow errors
FAILED = "SELECT o_orderkey / (o_orderkey - o_orderkey) AS boom FROM sales.orders"


@pytest.fixture(scope="module")
def audited(start_server, tmp_path_factory):
    """The demo mesh with an audit log; (server, audit dir)."""
    audit_dir = tmp_path_factory.mktemp("audit")
    server = start_server(mgtest.DEMO_CONFIG, name="audit", args=["--audit-dir", str(audit_dir)])
    yield server, audit_dir
    server.stop(check=True)


def test_an_allowed_query_records_who_what_and_the_rules_that_fired(audited):
    server, audit_dir = audited
    client = mgtest.flight_client(server.uri, user="carl")
    try:
        table = mgtest.flight_sql_query(client, ALLOWED, purpose_options("churn model v2"))
    finally:
        client.close()
    assert table.num_rows > 0
    [record] = wait_for_record(audit_dir, ALLOWED, "carl")

    assert auditkit.rfc3339_ms_utc(record["time"]), record["time"]
    assert re.fullmatch(r"[0-9a-f-]{36}", record["query_id"]), record["query_id"]
    assert record["groups"] == ["contractor"]
    assert record["purpose"] == "churn model v2"
    assert record["kind"] == "statement"
    assert record["sql"] == ALLOWED  # literals kept: the audit is for stewards
    assert re.fullmatch(r"[0-9a-f]{64}", record["fingerprint"])
    assert record["rows"] == table.num_rows
    assert record["bytes"] > 0
    assert record["duration_ms"] >= 0
    assert record["outcome"] == "ok"
    assert "error_code" not in record and "error" not in record

    [read] = record["products"]
    assert (read["domain"], read["product"]) == ("sales", "orders")
    assert read["version"]
    # The columns the query reads, not every column carl could see.
    assert read["columns"] == ["o_orderkey", "o_totalprice"], read
    assert read["masked"] == ["o_totalprice"], read
    # The grant that let carl in, his two row filters and the price mask.
    for rule in ["contractors-see-orders", "contractors-recent-orders", "contractors-no-urgent",
                 "contractor-price-buckets"]:
        assert rule in read["rules"], (rule, read["rules"])
    # Rules that do not apply to carl did not fire.
    assert "stewards-see-all-rows" not in read["rules"]
    # Nor did the mask of a column the query does not read.
    assert "contractor-order-months" not in read["rules"]


def test_a_refused_query_is_recorded_with_its_code(audited):
    server, audit_dir = audited
    client = mgtest.flight_client(server.uri, user="carl")
    try:
        with pytest.raises(CLIENT_ERRORS) as refused:
            mgtest.flight_sql_query(client, REFUSED)
    finally:
        client.close()
    assert mgtest.flight_grpc_code(refused.value) == "NOT_FOUND"
    [record] = wait_for_record(audit_dir, REFUSED, "carl")
    assert record["outcome"] == "refused"
    assert record["error_code"] == "NOT_FOUND"
    assert "customers.customer" in record["error"]
    assert record["products"] == []
    assert (record["rows"], record["bytes"]) == (0, 0)
    assert record["kind"] == "statement"


def test_a_query_failing_at_run_time_is_recorded_as_failed(audited):
    server, audit_dir = audited
    client = mgtest.flight_client(server.uri, user="stella")
    try:
        with pytest.raises(CLIENT_ERRORS) as failed:
            mgtest.flight_sql_query(client, FAILED)
    finally:
        client.close()
    code = mgtest.flight_grpc_code(failed.value)
    [record] = wait_for_record(audit_dir, FAILED, "stella")
    assert record["outcome"] == "failed", record
    assert record["error_code"] == code
    assert "zero" in record["error"].lower(), record["error"]
    assert [(p["domain"], p["product"]) for p in record["products"]] == [("sales", "orders")]


def test_prepared_statements_are_recorded_as_prepared(audited):
    server, audit_dir = audited
    sql = "SELECT n_name FROM customers.nation WHERE n_nationkey = 3"
    client = mgtest.flight_client(server.uri, user="stella")
    try:
        handle = mgtest.create_prepared_statement(client, sql)
        _, table, _ = mgtest.flight_command(client, mgtest.cmd_prepared_statement_query(handle),
                                            purpose_options("prepared via flight"))
    finally:
        client.close()
    assert table.num_rows == 1
    [record] = wait_for_record(audit_dir, sql, "stella")
    assert (record["kind"], record["outcome"], record["rows"]) == ("prepared", "ok", 1)
    assert record["purpose"] == "prepared via flight"

    # ADBC prepares too; its purpose is a call header set on the connection.
    adbc_sql = "SELECT n_name FROM customers.nation WHERE n_nationkey = 4"
    conn = mgtest.adbc_connect(server.uri, user="stella", db_kwargs={
        "adbc.flight.sql.rpc.call_header.x-meshgate-purpose": "adbc notebook"})
    try:
        assert mgtest.adbc_query(conn, adbc_sql).num_rows == 1
    finally:
        conn.close()
    [adbc] = wait_for_record(audit_dir, adbc_sql, "stella")
    assert adbc["outcome"] == "ok"
    assert adbc["kind"] in ("prepared", "statement")
    assert adbc["purpose"] == "adbc notebook"
    # Same shape, other literal: same fingerprint.
    assert adbc["fingerprint"] == record["fingerprint"]


def test_a_prepared_statement_refused_when_created_is_recorded(audited):
    server, audit_dir = audited
    sql = "SELECT c_phone FROM customers.customer"
    client = mgtest.flight_client(server.uri, user="carl")
    try:
        with pytest.raises(CLIENT_ERRORS) as refused:
            mgtest.create_prepared_statement(client, sql)
    finally:
        client.close()
    assert mgtest.flight_grpc_code(refused.value) == "NOT_FOUND"
    [record] = wait_for_record(audit_dir, sql, "carl")
    assert (record["kind"], record["outcome"], record["error_code"]) == ("prepared", "refused", "NOT_FOUND")


def test_a_substrait_plan_is_recorded_as_substrait(audited):
    from datafusion.substrait import Serde
    from test_substrait import client_context, substrait_command

    server, audit_dir = audited
    plan = Serde.serialize_bytes("SELECT r_name FROM mesh.customers.region", client_context(server.uri, "sam"))
    client = mgtest.flight_client(server.uri, user="sam")
    try:
        _, table, _ = mgtest.flight_command(client, substrait_command(plan))
    finally:
        client.close()
    assert table.num_rows == 5

    def substrait_records():
        return [r for r in audit_records(audit_dir) if r["principal"] == "sam" and r["kind"] == "substrait"]
    [record] = mgtest.wait_for(substrait_records, "sam's Substrait query in the audit log", timeout=30)
    assert (record["sql"], record["outcome"], record["rows"]) == ("", "ok", 5)
    assert re.fullmatch(r"[0-9a-f]{64}", record["fingerprint"])
    assert [(p["domain"], p["product"]) for p in record["products"]] == [("customers", "region")]


def test_a_stream_the_client_abandons_is_recorded_as_cancelled(audited):
    server, audit_dir = audited
    sql = "SELECT a.l_orderkey FROM sales.lineitem a CROSS JOIN sales.lineitem b"  # billions of rows
    client = mgtest.flight_client(server.uri, user="stella")
    try:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(mgtest.cmd_statement_query(sql)))
        reader = client.do_get(info.endpoints[0].ticket)
        assert reader.read_chunk().data.num_rows > 0
        reader.cancel()
    finally:
        client.close()
    [record] = wait_for_record(audit_dir, sql, "stella")
    assert (record["outcome"], record["error_code"]) == ("cancelled", "CANCELLED")
    assert record["rows"] > 0


def test_query_ids_are_unique(audited):
    _, audit_dir = audited
    ids = [record["query_id"] for record in audit_records(audit_dir)]
    assert ids and len(ids) == len(set(ids))


def test_the_log_rotates_by_size_and_keeps_the_newest_files(start_server, tmp_path):
    audit_dir = tmp_path / "audit"
    server = start_server(mgtest.DEMO_CONFIG, name="audit-rotation",
                          args=["--audit-dir", str(audit_dir), "--audit-max-bytes", "1500", "--audit-keep", "2"])
    client = mgtest.flight_client(server.uri, user="stella")
    try:
        queries = [f"SELECT r_name FROM customers.region WHERE r_regionkey = {n % 5} OR {n} < 0" for n in range(12)]
        for sql in queries:
            assert mgtest.flight_sql_query(client, sql).num_rows == 1
        wait_for_record(audit_dir, queries[-1], "stella")
    finally:
        client.close()
    server.stop(check=True)

    rotated = sorted(audit_dir.glob("audit-*.jsonl"))
    assert len(rotated) == 2, rotated
    for file in rotated + [audit_dir / "audit.jsonl"]:
        assert re.fullmatch(r"audit(-\d{8}T\d{6}\.\d{6}Z)?\.jsonl", file.name), file.name
        lines = file.read_text().splitlines()
        # A file holds what fits in 1,500 bytes (one line more only if a single line is larger).
        assert file.stat().st_size <= 1500 or len(lines) == 1, (file, file.stat().st_size)
    # What is kept is the newest, in order, ending with the last query; older files are gone.
    kept = [record["sql"] for record in audit_records(audit_dir)]
    assert kept == queries[len(queries) - len(kept):], kept
    assert len(kept) < len(queries)
