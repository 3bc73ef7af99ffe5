"""The plain Flight RPCs beside Flight SQL's commands, through pyarrow.flight (and ADBC
where pyarrow has no call for it):

- GetSchema: the schema GetFlightInfo announces and DoGet streams, without running the
  query; governed (a hidden table is NOT_FOUND exactly like an unknown one).
- PollFlightInfo: complete at once (ADBC's incremental execution polls with it).
- ListFlights: UNIMPLEMENTED, pointing at GetTables.
- ListActions: exactly the actions served.
- GetSqlInfo: FLIGHT_SQL_SERVER_CANCEL is true.
"""

from __future__ import annotations

import re
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import govmodel
from mgtest import (
    adbc_connect,
    adbc_grpc_code,
    assert_fails_alike,
    assert_same_rows,
    cmd_get_sql_info,
    cmd_get_tables,
    cmd_statement_query,
    describe_exc,
    duckdb_expected,
    flight_client,
    flight_command,
    flight_grpc_code,
    server_message,
)

ACTIONS = {"CreatePreparedStatement", "ClosePreparedStatement", "CreatePreparedSubstraitPlan", "SetSessionOptions", "GetSessionOptions",
           "CloseSession", "CancelFlightInfo", "meshgate.training_snapshot"}
SQLINFO_FLIGHT_SQL_SERVER_CANCEL = 9
QUERIES = [
    "SELECT * FROM sales.orders",
    "SELECT o_orderkey, o_totalprice * 2 AS doubled, o_orderdate FROM sales.orders WHERE o_orderkey < 100",
    "SELECT c_mktsegment, count(*) AS n, max(c_custkey) AS top FROM customers.customer GROUP BY c_mktsegment",
    "SELECT * FROM supply.supplier",
]
SLOW_SQL = ("SELECT count(*) AS {tag} FROM sales.lineitem a CROSS JOIN sales.lineitem b "
            "WHERE a.l_suppkey <> b.l_suppkey")


@pytest.fixture
def clients(demo_server):
    opened = []

    def make(user: str = "stella") -> flight.FlightClient:
        client = flight_client(demo_server.uri, user)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def descriptor(sql: str) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(cmd_statement_query(sql))


def failure(fn, *args) -> Exception:
    try:
        got = fn(*args)
    except (flight.FlightError, pa.ArrowException) as exc:
        return exc
    raise AssertionError(f"expected an error, got {got!r}")


# --------------------------------------------------------------------------------------
# GetSchema
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["stella", "carl", "ana"])
@pytest.mark.parametrize("sql", QUERIES, ids=["orders", "expressions", "aggregate", "csv"])
def test_get_schema_is_the_flight_info_and_doget_schema(clients, user, sql):
    client = clients(user)
    try:
        govmodel.governed_sql(govmodel.DEMO[user], sql)
    except LookupError:  # a product hidden from the user: GetSchema fails as GetFlightInfo does
        hidden = failure(client.get_schema, descriptor(sql))
        assert flight_grpc_code(hidden) == "NOT_FOUND", describe_exc(hidden)
        assert server_message(hidden) == server_message(failure(client.get_flight_info, descriptor(sql)))
        return
    schema = client.get_schema(descriptor(sql)).schema
    info, table, stream_schemas = flight_command(client, cmd_statement_query(sql))
    assert schema.equals(info.schema, check_metadata=True), f"{schema}\n!=\n{info.schema}"
    for streamed in stream_schemas:
        assert schema.equals(streamed, check_metadata=True), f"{schema}\n!=\n{streamed}"
    assert table.schema.names == schema.names
    # and it is the governed schema: the columns the principal sees, nothing more
    assert schema.names == govmodel.expected(user, sql).names


def test_get_schema_of_metadata_commands(clients):
    client = clients()
    for command in (cmd_get_tables(include_schema=True), cmd_get_sql_info([0])):
        d = flight.FlightDescriptor.for_command(command)
        assert client.get_schema(d).schema.equals(client.get_flight_info(d).schema)


def test_get_schema_does_not_run_the_query(clients, demo_server):
    sql = SLOW_SQL.format(tag="schema_only")
    client = clients()
    started = time.monotonic()
    schema = client.get_schema(descriptor(sql)).schema
    elapsed = time.monotonic() - started
    assert schema.names == ["schema_only"] and schema.field(0).type == pa.int64()
    assert elapsed < 5, f"GetSchema took {elapsed:.1f} s: it ran the query"
    time.sleep(0.5)
    assert not [line for line in demo_server.stderr_text().splitlines()
                if re.search(r"\bquery\b.*sql=", line) and line.rstrip().endswith(sql)], "GetSchema logged a query run"


def test_get_schema_of_a_hidden_table_is_not_found_like_an_unknown_one(clients):
    carl = clients("carl")  # no product with personal data exists for him
    hidden = failure(carl.get_schema, descriptor("SELECT * FROM customers.customer"))
    unknown = failure(carl.get_schema, descriptor("SELECT * FROM customers.nosuch"))
    assert flight_grpc_code(hidden) == "NOT_FOUND", describe_exc(hidden)
    assert_fails_alike(hidden, "customers.customer", unknown, "customers.nosuch")
    bad_sql = failure(carl.get_schema, descriptor("SELEC nothing"))
    assert flight_grpc_code(bad_sql) == "INVALID_ARGUMENT", describe_exc(bad_sql)


def test_get_schema_follows_the_schema_header(clients):
    client = clients()
    options = flight.FlightCallOptions(headers=[(b"x-meshgate-schema", b"customers")])
    schema = client.get_schema(descriptor("SELECT * FROM nation"), options).schema
    assert schema.names == ["n_nationkey", "n_name", "n_regionkey", "n_comment"]


def test_adbc_execute_schema_uses_get_schema(demo_server):
    conn = adbc_connect(demo_server.uri, "carl")
    try:
        with conn.cursor() as cur:
            schema = cur.adbc_execute_schema("SELECT * FROM sales.orders")
            assert schema.names == govmodel.visible_columns(govmodel.DEMO["carl"], "sales", "orders")
            with pytest.raises(Exception) as caught:
                cur.adbc_execute_schema("SELECT * FROM customers.customer")
            assert adbc_grpc_code(caught.value) == "NOT_FOUND", describe_exc(caught.value)
    finally:
        conn.close()


# --------------------------------------------------------------------------------------
# PollFlightInfo
# --------------------------------------------------------------------------------------


def test_poll_flight_info_with_pyarrow(clients):
    if not hasattr(flight.FlightClient, "poll_flight_info"):
        pytest.skip(f"pyarrow {pa.__version__} has no FlightClient.poll_flight_info (see the ADBC test below)")
    client = clients()
    poll = client.poll_flight_info(descriptor("SELECT * FROM customers.nation"))
    assert poll.progress == 1.0 and poll.flight_descriptor is None
    assert_same_rows(client.do_get(poll.info.endpoints[0].ticket).read_all(),
                     duckdb_expected("SELECT * FROM customers.nation"))


def test_adbc_incremental_execution_polls_and_is_complete_at_once(demo_server):
    """The ADBC driver's incremental execution calls PollFlightInfo: the first call gives
    every partition and progress 1 of 1; the next one, nothing more."""
    sql = "SELECT o_orderkey, o_orderdate, o_orderpriority FROM sales.orders"
    conn = adbc_connect(demo_server.uri, "carl")
    try:
        with conn.cursor() as cur:
            cur.adbc_statement.set_options(**{"adbc.statement.exec.incremental": "true"})
            partitions, schema = cur.adbc_execute_partitions(sql)
            assert len(partitions) == 1
            assert schema.names == ["o_orderkey", "o_orderdate", "o_orderpriority"]
            assert cur.adbc_statement.get_option_float("adbc.statement.exec.progress") == 1.0
            assert cur.adbc_statement.get_option_float("adbc.statement.exec.max_progress") == 1.0
            more, _ = cur.adbc_execute_partitions(sql)
            assert more == []
        with conn.cursor() as cur:
            cur.adbc_read_partition(partitions[0])
            got = cur.fetch_arrow_table()
        assert_same_rows(got, govmodel.expected("carl", sql))

        with conn.cursor() as cur:
            cur.adbc_statement.set_options(**{"adbc.statement.exec.incremental": "true"})
            with pytest.raises(Exception) as caught:
                cur.adbc_execute_partitions("SELECT * FROM customers.customer")
            assert adbc_grpc_code(caught.value) == "NOT_FOUND", describe_exc(caught.value)
    finally:
        conn.close()


# --------------------------------------------------------------------------------------
# ListFlights, ListActions
# --------------------------------------------------------------------------------------


def test_list_flights_is_unimplemented_and_points_at_get_tables(clients):
    exc = failure(lambda: list(clients().list_flights()))
    assert flight_grpc_code(exc) == "UNIMPLEMENTED", describe_exc(exc)
    assert "GetTables" in server_message(exc), describe_exc(exc)


def test_list_actions_lists_exactly_what_is_served(clients):
    client = clients()
    actions = list(client.list_actions())
    names = [a.type for a in actions]
    assert sorted(names) == sorted(ACTIONS), names
    assert len(names) == len(set(names)), names
    assert all(a.description for a in actions), actions
    # every listed action is served (an empty body may be refused, but not as unknown)
    for name in ACTIONS:
        try:
            list(client.do_action(flight.Action(name, b"")))
        except (flight.FlightError, pa.ArrowException) as exc:
            assert flight_grpc_code(exc) != "UNIMPLEMENTED", f"{name}: {describe_exc(exc)}"
    exc = failure(lambda: list(client.do_action(flight.Action("Frobnicate", b""))))
    assert flight_grpc_code(exc) == "UNIMPLEMENTED", describe_exc(exc)
    assert "Frobnicate" in server_message(exc) and "CancelFlightInfo" in server_message(exc)


# --------------------------------------------------------------------------------------
# GetSqlInfo
# --------------------------------------------------------------------------------------


def test_sql_info_reports_cancel_support(clients):
    client = clients()
    _info, table, _ = flight_command(client, cmd_get_sql_info([SQLINFO_FLIGHT_SQL_SERVER_CANCEL]))
    assert table.to_pylist() == [{"info_name": SQLINFO_FLIGHT_SQL_SERVER_CANCEL, "value": True}]
    _info, everything, _ = flight_command(client, cmd_get_sql_info())
    values = {row["info_name"]: row["value"] for row in everything.to_pylist()}
    assert values[SQLINFO_FLIGHT_SQL_SERVER_CANCEL] is True
