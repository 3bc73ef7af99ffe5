"""How results travel: the types clients receive match what FlightInfo announced, a
row too large for one message is refused with a clear error, not sent broken, and an
error message too long for clients' trailer limits arrives cut, not replaced."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from mgtest import (
    adbc_grpc_code,
    adbc_query,
    cmd_statement_query,
    describe_exc,
    flight_grpc_code,
    flight_sql_query,
)

# A struct holding a dictionary-encoded string, and a list of them.
NESTED_SQL = (
    "SELECT named_struct('region', arrow_cast('eu', 'Dictionary(Int32, Utf8)')) AS s, "
    "make_array(arrow_cast('a', 'Dictionary(Int32, Utf8)'), arrow_cast('b', 'Dictionary(Int32, Utf8)')) AS l"
)
PLAIN_STRUCT = pa.struct([pa.field("region", pa.string())])

# One value over the server's 64 MiB message limit.
OVERSIZED_SQL = "SELECT repeat('x', 70000000) AS big"


def test_nested_dictionaries_arrive_plain_and_as_announced(flight_client):
    info = flight_client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(NESTED_SQL)))
    assert info.schema.field("s").type == PLAIN_STRUCT, info.schema
    assert pa.types.is_list(info.schema.field("l").type)
    assert info.schema.field("l").type.value_type == pa.string(), info.schema
    reader = flight_client.do_get(info.endpoints[0].ticket)
    table = reader.read_all()
    assert table.schema.equals(info.schema), f"sent {table.schema}, announced {info.schema}"
    assert table.to_pylist() == [{"s": {"region": "eu"}, "l": ["a", "b"]}]


def test_nested_dictionaries_through_adbc(adbc_conn):
    table = adbc_query(adbc_conn, NESTED_SQL)
    assert table.schema.field("s").type == PLAIN_STRUCT, table.schema
    assert table.column("l").to_pylist() == [["a", "b"]]


def test_a_row_larger_than_one_message_still_arrives(flight_client):
    # 10 MB in one value: over the 2 MiB a message aims at, under the limit.
    table = flight_sql_query(flight_client, "SELECT repeat('x', 10000000) AS big, 1 AS one")
    assert table.num_rows == 1
    assert len(table.column("big")[0].as_py()) == 10_000_000


def test_a_row_over_the_message_limit_is_refused_and_the_server_keeps_serving(flight_client, adbc_conn):
    with pytest.raises(pa.ArrowException) as caught:
        flight_sql_query(flight_client, OVERSIZED_SQL)
    assert flight_grpc_code(caught.value) == "RESOURCE_EXHAUSTED", describe_exc(caught.value)
    message = str(caught.value)
    assert "over the server's limit of 67108864 bytes" in message, describe_exc(caught.value)
    assert "select fewer or smaller columns" in message

    with pytest.raises(Exception) as caught:
        adbc_query(adbc_conn, OVERSIZED_SQL)
    assert adbc_grpc_code(caught.value) == "RESOURCE_EXHAUSTED", describe_exc(caught.value)

    assert flight_sql_query(flight_client, "SELECT 1 AS one").column("one").to_pylist() == [1]
    assert adbc_query(adbc_conn, "SELECT 2 AS two").column("two").to_pylist() == [2]


def test_a_very_long_error_message_arrives_cut_and_the_server_keeps_serving(flight_client, adbc_conn):
    # The error names the unknown column; 6,000 characters of it would make a trailer
    # some clients refuse, so the server cuts the message at 4 KiB.
    column = "c" * 6000
    sql = f'SELECT "{column}" FROM sales.orders'
    with pytest.raises(pa.ArrowException) as caught:
        flight_sql_query(flight_client, sql)
    assert flight_grpc_code(caught.value) == "INVALID_ARGUMENT", describe_exc(caught.value)
    assert "(truncated)" in str(caught.value), describe_exc(caught.value)
    assert "c" * 1000 in str(caught.value), "the message still names the column"

    with pytest.raises(Exception) as caught:
        adbc_query(adbc_conn, sql)
    assert adbc_grpc_code(caught.value) == "INVALID_ARGUMENT", describe_exc(caught.value)
    assert "(truncated)" in str(caught.value), describe_exc(caught.value)

    assert flight_sql_query(flight_client, "SELECT 1 AS one").column("one").to_pylist() == [1]
