"""Bulk export through plain pyarrow.flight: one stream, or one endpoint per
partition (header `x-meshgate-endpoints: partitioned`) read in parallel threads,
each on its own connection."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

COMMAND_TYPE = "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def statement_command(sql: str) -> bytes:
    """Any(CommandStatementQuery{query})."""
    return _field(1, COMMAND_TYPE.encode()) + _field(2, _field(1, sql.encode()))


def export(uri: str, sql: str, partitioned: bool) -> tuple[int, int, int]:
    """(rows, bytes, endpoints) of `sql` read to the end."""
    import pyarrow.flight as flight

    headers = [(b"x-meshgate-endpoints", b"partitioned")] if partitioned else []
    options = flight.FlightCallOptions(headers=headers)
    client = flight.FlightClient(uri)
    try:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_command(sql)), options)
    finally:
        client.close()

    def read(endpoint) -> tuple[int, int]:
        reader_client = flight.FlightClient(uri)
        try:
            rows = nbytes = 0
            for chunk in reader_client.do_get(endpoint.ticket):
                rows += chunk.data.num_rows
                nbytes += chunk.data.nbytes
            return rows, nbytes
        finally:
            reader_client.close()

    with ThreadPoolExecutor(max_workers=len(info.endpoints)) as pool:
        parts = list(pool.map(read, info.endpoints))
    return sum(p[0] for p in parts), sum(p[1] for p in parts), len(info.endpoints)
