"""A client that goes away mid-stream cancels its query: the server stops working on
it, logs it as cancelled, and the memory it held returns to the pool."""

from __future__ import annotations

import time

import pyarrow.flight as flight

from mgtest import DEMO_CONFIG, cmd_statement_query, cpu_seconds, flight_client, query_log_lines, wait_for

# 22.5M rows: minutes of streaming if nobody stopped it. The cross join holds the
# orders side in the memory pool while it streams.
SQL = "SELECT o.o_orderkey, o.o_comment, c.c_custkey FROM sales.orders o CROSS JOIN customers.customer c"
TIMEOUT = 60.0








def test_an_abandoned_stream_stops_its_query_and_frees_its_memory(start_server):
    server = start_server(DEMO_CONFIG, name="disconnect", args=["--memory-limit", "1GiB"])
    client = flight_client(server.uri, "stella")
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(SQL)))
    reader = client.do_get(info.endpoints[0].ticket)
    first = reader.read_chunk().data
    assert first.num_rows > 0
    # Walk away mid-stream.
    reader.cancel()
    client.close()

    outcome, _active, _reserved = wait_for(lambda: next(iter(query_log_lines(server, SQL)), None), "the cancelled query's log line")
    assert outcome == "cancelled"

    # The server stops working on it: almost no CPU over the next second.
    before = cpu_seconds(server)
    time.sleep(1.0)
    assert cpu_seconds(server) - before < 0.3, "the abandoned query is still running"

    # Its memory is back: the next query, alone on the server, ends with nothing reserved.
    probe = "SELECT count(*) AS n FROM customers.nation"
    other = flight_client(server.uri, "stella")
    info = other.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(probe)))
    assert other.do_get(info.endpoints[0].ticket).read_all().column("n")[0].as_py() == 25
    other.close()
    outcome, active, reserved = wait_for(lambda: next(iter(query_log_lines(server, probe)), None), "the probe's log line")
    assert (outcome, active, reserved) == ("done", 0, 0)
    server.stop(check=True)


def test_a_query_past_the_timeout_is_stopped_with_deadline_exceeded(start_server):
    """`--query-timeout-secs`: a query still streaming when its time is up ends with
    DEADLINE_EXCEEDED naming the limit; the server goes on serving."""
    server = start_server(DEMO_CONFIG, name="timeout", args=["--query-timeout-secs", "1"])
    client = flight_client(server.uri, "stella")
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(SQL)))
    reader = client.do_get(info.endpoints[0].ticket)
    assert reader.read_chunk().data.num_rows > 0
    time.sleep(1.5)  # a slow consumer: the query's time runs out while it waits
    try:
        while True:
            reader.read_chunk()
        raise AssertionError("the whole 22.5M-row result arrived despite the timeout")
    except StopIteration:
        raise AssertionError("the stream ended without an error despite the timeout")
    except flight.FlightError as error:
        assert "DEADLINE_EXCEEDED" in str(error) or isinstance(error, flight.FlightTimedOutError), str(error)
        assert "1-second query timeout" in str(error)
    probe = "SELECT count(*) AS n FROM customers.nation"
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(probe)))
    assert client.do_get(info.endpoints[0].ticket).read_all().column("n")[0].as_py() == 25
    client.close()
    server.stop(check=True)
