"""Partitioned results: a client that sends `x-meshgate-endpoints: partitioned` (or
sets the session option `endpoints`) gets one endpoint per independent partition of
the result, readable in parallel on other connections; without it, for ordered
results, or for results known to be smaller than `--partition-min-rows`, one endpoint.

The demo products are small, so most tests run a server with a threshold of 1,000
rows; the default (100,000) is checked on the shared demo server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from mgtest import (
    adbc_connect,
    assert_same_rows,
    cmd_statement_query,
    duckdb_expected,
    flight_client,
)
from mgtest import DEMO_CONFIG, flight_grpc_code

PARTITIONED = flight.FlightCallOptions(headers=[(b"x-meshgate-endpoints", b"partitioned")])
ORDERS = "SELECT o_orderkey, o_orderdate, o_year FROM sales.orders"


@pytest.fixture(scope="module")
def part_server(start_server):
    """The demo mesh with partitioning from 1,000 rows on."""
    srv = start_server(DEMO_CONFIG, name="partitions", args=["--partition-min-rows", "1000"])
    yield srv
    srv.stop(check=True)


def endpoints(client, sql, options=None):
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)), options or flight.FlightCallOptions())
    return info


def read_in_parallel(uri, user, info):
    """Each endpoint on its own connection, all at once."""

    def read(endpoint):
        client = flight_client(uri, user)
        try:
            return client.do_get(endpoint.ticket).read_all()
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=len(info.endpoints)) as pool:
        parts = list(pool.map(read, info.endpoints))
    return parts


def test_one_endpoint_unless_asked(part_server):
    client = flight_client(part_server.uri, "stella")
    assert len(endpoints(client, ORDERS).endpoints) == 1


def test_partitioned_endpoints_read_in_parallel_make_the_result(part_server):
    client = flight_client(part_server.uri, "stella")
    info = endpoints(client, ORDERS, PARTITIONED)
    assert len(info.endpoints) >= 2, "the orders product spans several files"
    assert all(len(e.locations) == 0 for e in info.endpoints)
    parts = read_in_parallel(part_server.uri, "stella", info)
    assert all(part.num_rows > 0 for part in parts)
    assert_same_rows(pa.concat_tables(parts), duckdb_expected(ORDERS))


def test_ordered_results_stay_one_endpoint(part_server):
    client = flight_client(part_server.uri, "stella")
    info = endpoints(client, ORDERS + " ORDER BY o_orderkey", PARTITIONED)
    assert len(info.endpoints) == 1


def test_partitions_are_governed(part_server):
    """carl's partitions together hold exactly his rows, and his tickets are his."""
    carl = flight_client(part_server.uri, "carl")
    info = endpoints(carl, "SELECT o_orderkey, o_orderdate, o_orderpriority FROM sales.orders", PARTITIONED)
    parts = read_in_parallel(part_server.uri, "carl", info)
    expected = duckdb_expected(
        "SELECT o_orderkey, o_orderdate, o_orderpriority FROM sales.orders "
        "WHERE o_orderdate >= DATE '1997-01-01' AND o_orderpriority <> '1-URGENT'"
    )
    got = pa.concat_tables(parts)
    assert got.num_rows == len(expected.rows)
    assert set(got.column("o_orderkey").to_pylist()) == {row[0] for row in expected.rows}
    ana = flight_client(part_server.uri, "ana")
    with pytest.raises(Exception) as caught:
        ana.do_get(info.endpoints[0].ticket).read_all()
    assert "issued to another principal" in str(caught.value)


def test_adbc_execute_partitions_read_in_threads(part_server):
    header = {"adbc.flight.sql.rpc.call_header.x-meshgate-endpoints": "partitioned"}
    conn = adbc_connect(part_server.uri, "stella", db_kwargs=header)
    try:
        with conn.cursor() as cur:
            partitions, _schema = cur.adbc_execute_partitions(ORDERS)
        assert len(partitions) >= 2

        def read(partition):
            reader_conn = adbc_connect(part_server.uri, "stella", db_kwargs=header)
            try:
                with reader_conn.cursor() as cur:
                    cur.adbc_read_partition(partition)
                    return cur.fetch_arrow_table()
            finally:
                reader_conn.close()

        with ThreadPoolExecutor(max_workers=len(partitions)) as pool:
            parts = list(pool.map(read, partitions))
        assert_same_rows(pa.concat_tables(parts), duckdb_expected(ORDERS))
    finally:
        conn.close()


def test_small_results_stay_one_endpoint_with_their_row_count(demo_server, part_server):
    """15,000 orders are under the default threshold; the exact count is reported."""
    client = flight_client(demo_server.uri, "stella")
    info = endpoints(client, "SELECT * FROM sales.orders", PARTITIONED)
    assert len(info.endpoints) == 1
    assert info.total_records == duckdb_expected("SELECT count(*) FROM sales.orders").rows[0][0]
    # Over the threshold the same query splits, and the count is still exact.
    low = flight_client(part_server.uri, "stella")
    info = endpoints(low, "SELECT * FROM sales.orders", PARTITIONED)
    assert len(info.endpoints) >= 2
    assert info.total_records == 15000


def test_row_counts_are_never_reported_from_hidden_rows(part_server):
    """carl sees a filtered subset: no count is known without running the query,
    and none is made up from the files' statistics."""
    carl = flight_client(part_server.uri, "carl")
    info = endpoints(carl, "SELECT o_orderkey FROM sales.orders", PARTITIONED)
    assert info.total_records == -1
    stella = flight_client(part_server.uri, "stella")
    filtered = endpoints(stella, "SELECT o_orderkey FROM sales.orders WHERE o_orderkey < 100", PARTITIONED)
    assert filtered.total_records == -1


def test_bad_endpoints_header_is_named(part_server):
    client = flight_client(part_server.uri, "stella")
    bad = flight.FlightCallOptions(headers=[(b"x-meshgate-endpoints", b"many")])
    with pytest.raises(pa.ArrowException) as caught:
        endpoints(client, ORDERS, bad)
    assert flight_grpc_code(caught.value) == "INVALID_ARGUMENT"
    assert "x-meshgate-endpoints" in str(caught.value)
    assert len(endpoints(client, ORDERS, PARTITIONED).endpoints) >= 2
