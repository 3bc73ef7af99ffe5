"""A result far larger than the server's memory budget streams through without being buffered.

Run with `pytest -s` (or read the captured stdout) to see the `STREAMING:` figures.
"""

from __future__ import annotations

import time

import pyarrow.compute as pc
import pyarrow.flight as flight
import pytest

from mgtest import DATA, DEMO_CONFIG, cmd_statement_query, flight_client, parquet_table

SQL = "SELECT o.o_orderkey, c.c_custkey FROM sales.orders o CROSS JOIN customers.customer c"
MIN_ROWS = 20_000_000
PEAK_RSS_FRACTION = 0.5


@pytest.fixture(scope="module")
def streaming_server(start_server):
    """A dedicated server, so its VmHWM reflects this query only."""
    srv = start_server(DEMO_CONFIG, name="streaming")
    yield srv
    srv.stop(check=True)


def test_cross_join_streams_with_bounded_memory(streaming_server):
    orders = parquet_table(DATA / "sales" / "orders")
    customers = parquet_table(DATA / "customers" / "customer")
    n_orders, n_customers = orders.num_rows, customers.num_rows
    expected_rows = n_orders * n_customers
    assert expected_rows >= MIN_ROWS, f"demo data too small for this test: {expected_rows} rows"
    expected_orderkey_sum = pc.sum(orders.column("o_orderkey")).as_py() * n_customers
    expected_custkey_sum = pc.sum(customers.column("c_custkey")).as_py() * n_orders
    raw_bytes = expected_rows * 2 * 8  # two int64 columns
    del orders, customers

    hwm_before = streaming_server.proc_status("VmHWM")
    client = flight_client(streaming_server.uri, user="stella")  # the steward reads every row
    options = flight.FlightCallOptions(timeout=900)
    rows = batches = streamed_bytes = 0
    orderkey_sum = custkey_sum = 0
    started = time.monotonic()
    first_batch_at = None
    try:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(SQL)), options)
        assert info.schema.names == ["o_orderkey", "c_custkey"]
        assert info.endpoints, "no endpoints"
        for endpoint in info.endpoints:
            reader = client.do_get(endpoint.ticket, options)
            assert reader.schema.equals(info.schema)
            while True:
                try:
                    chunk = reader.read_chunk()
                except StopIteration:
                    break
                batch = chunk.data
                if batch is None:
                    continue
                if first_batch_at is None:
                    first_batch_at = time.monotonic() - started
                batches += 1
                rows += batch.num_rows
                streamed_bytes += batch.nbytes
                orderkey_sum += pc.sum(batch.column(0)).as_py() or 0
                custkey_sum += pc.sum(batch.column(1)).as_py() or 0
                del batch, chunk  # keep nothing
    finally:
        client.close()
    elapsed = time.monotonic() - started
    hwm_after = streaming_server.proc_status("VmHWM")
    rss_after = streaming_server.proc_status("VmRSS")

    print(
        f"\nSTREAMING: rows={rows:,} batches={batches:,} bytes_streamed={streamed_bytes:,} "
        f"raw_result_bytes={raw_bytes:,}\n"
        f"STREAMING: server VmHWM before={hwm_before / 2**20:.1f} MiB after={hwm_after / 2**20:.1f} MiB "
        f"(limit {PEAK_RSS_FRACTION * raw_bytes / 2**20:.1f} MiB = {PEAK_RSS_FRACTION:.0%} of raw) "
        f"VmRSS after={rss_after / 2**20:.1f} MiB\n"
        f"STREAMING: elapsed={elapsed:.2f}s first_batch_after={first_batch_at if first_batch_at is None else round(first_batch_at, 3)}s "
        f"rows/s={rows / elapsed:,.0f} MB/s={streamed_bytes / elapsed / 1e6:,.1f}",
        flush=True,
    )

    assert rows == expected_rows
    assert orderkey_sum == expected_orderkey_sum
    assert custkey_sum == expected_custkey_sum
    assert batches > 1
    assert hwm_after < PEAK_RSS_FRACTION * raw_bytes, (
        f"server peak RSS {hwm_after / 2**20:.1f} MiB >= {PEAK_RSS_FRACTION:.0%} of the "
        f"{raw_bytes / 2**20:.1f} MiB result: it is buffering instead of streaming"
    )
    # the server still answers afterwards
    client = flight_client(streaming_server.uri, user="stella")  # the steward reads every row
    try:
        info = client.get_flight_info(
            flight.FlightDescriptor.for_command(cmd_statement_query("SELECT COUNT(*) AS n FROM customers.region")),
            options,
        )
        t = client.do_get(info.endpoints[0].ticket, options).read_all()
        assert t.column("n").to_pylist() == [5]
    finally:
        client.close()
