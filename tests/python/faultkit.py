"""Helpers of the fault-injection tests (test_faults.py, test_faults_clients.py).

- `Outcome`, `read_stream` (pyarrow.flight) and `read_adbc` (ADBC): a result read chunk
  by chunk, rows counted as they arrive, a fault injected once the first rows are in;
  `call_outcome` for a call that is not a stream; `grpc_code` for every code pyarrow
  reports;
- the invariant, `assert_whole_or_error` (OK means every row), with `assert_failed`,
  `assert_whole`, and `assert_code` raising `WrongCode`, so a test can check everything
  else first and mark a wrong code alone as an expected failure (xfail raises=WrongCode);
- generated Parquet data (many files and row groups, incompressible strings) and
  `count_parquet` (DuckDB) for the expected counts;
- `RawH2`: an HTTP/2 connection written by hand (frames, literal HPACK), for what real
  clients refuse to send: floods of streams, oversized headers, slow senders.
"""

from __future__ import annotations

import re
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq

from mgtest import (
    DATA,
    GRPC_CODE_NAMES,
    adbc_grpc_code,
    cmd_statement_query,
    describe_exc,
    flight_grpc_code,
    server_message,
)

STREAM_ERRORS = (flight.FlightError, pa.ArrowException, OSError)
CALL_TIMEOUT = 90.0  # no call may hang: past this the client gives up (DEADLINE_EXCEEDED fails the test)


# --------------------------------------------------------------------------------------
# reading results while counting rows
# --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How one result stream ended: the rows received and the error, if any."""

    rows: int
    error: BaseException | None
    code: str  # "OK" or the gRPC code of the error
    seconds: float

    def describe(self) -> str:
        if self.error is None:
            return f"OK with {self.rows} rows"
        return f"{self.code} after {self.rows} rows: {describe_exc(self.error)}"


# pyarrow's wording for the codes it raises as plain Arrow errors ("gRPC returned
# out-of-range error, with message: ..."), sometimes without gRPC's debug context
_PYARROW_CODE_PHRASES = {
    "out-of-range": "OUT_OF_RANGE", "resource exhausted": "RESOURCE_EXHAUSTED", "data loss": "DATA_LOSS",
    "precondition failed": "FAILED_PRECONDITION", "aborted": "ABORTED",
}


def grpc_code(exc: BaseException) -> str:
    """flight_grpc_code, also for the codes pyarrow raises as plain Arrow errors."""
    if re.search(r"gRPC client debug context: [A-Z_]+:", str(exc)):
        return flight_grpc_code(exc)
    m = re.search(r"gRPC returned ([a-z -]+?) error, with message", str(exc))
    if m and m.group(1) in _PYARROW_CODE_PHRASES:
        return _PYARROW_CODE_PHRASES[m.group(1)]
    return flight_grpc_code(exc)


def read_stream(client: flight.FlightClient, sql: str, *, on_first=None, pace: float = 0.0,
                headers=None) -> Outcome:
    """GetFlightInfo and DoGet with pyarrow.flight, counting rows chunk by chunk.
    `on_first()` runs once the first rows arrived (to inject a fault mid-stream);
    `pace` seconds are slept after each chunk (a slow reader)."""
    options = flight.FlightCallOptions(timeout=CALL_TIMEOUT, headers=headers or [])
    rows, started = 0, time.monotonic()
    try:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)), options)
        for endpoint in info.endpoints:
            reader = client.do_get(endpoint.ticket, options)
            while True:
                try:
                    chunk = reader.read_chunk()
                except StopIteration:
                    break
                rows += chunk.data.num_rows if chunk.data is not None else 0
                if on_first is not None and rows:
                    on_first, hook = None, on_first
                    hook()
                if pace:
                    time.sleep(pace)
    except STREAM_ERRORS as exc:
        return Outcome(rows, exc, grpc_code(exc), time.monotonic() - started)
    return Outcome(rows, None, "OK", time.monotonic() - started)


def read_adbc(conn, sql: str, *, on_first=None) -> Outcome:
    """The same through ADBC (the Go Flight SQL driver), batch by batch."""
    rows, started = 0, time.monotonic()
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            for batch in cur.fetch_record_batch():
                rows += batch.num_rows
                if on_first is not None and rows:
                    on_first, hook = None, on_first
                    hook()
    except Exception as exc:  # noqa: BLE001 - classified below
        return Outcome(rows, exc, adbc_code(exc), time.monotonic() - started)
    return Outcome(rows, None, "OK", time.monotonic() - started)


def adbc_code(exc: BaseException) -> str:
    """The gRPC code behind an ADBC error, also when it surfaced from the result
    stream (a pyarrow error carrying the driver's message)."""
    code = adbc_grpc_code(exc)
    if code == "UNKNOWN":
        for name in GRPC_CODE_NAMES.values():  # the driver writes codes as e.g. "Unavailable;"
            if f"({''.join(p.title() for p in name.split('_'))};" in str(exc):
                return name
    return code


def assert_whole_or_error(outcome: Outcome, expected: int, what: str) -> None:
    """The central invariant: OK means every row."""
    if outcome.error is None:
        assert outcome.rows == expected, (
            f"{what}: the stream ended OK with {outcome.rows} of {expected} rows: "
            "a partial result reported as success")


class WrongCode(AssertionError):
    """The stream failed as it should, but with a code a user would not expect."""


def assert_failed(outcome: Outcome, expected: int, needles: tuple, what: str) -> None:
    """The stream ended with an error (not OK with fewer rows) whose message holds the
    needles. Its code is checked apart, by assert_code, once the rest of a test ran."""
    assert_whole_or_error(outcome, expected, what)
    assert outcome.error is not None, f"{what}: expected an error, got {outcome.describe()}"
    message = server_message(outcome.error)
    for needle in needles:
        assert needle in message, f"{what}: the message does not name {needle!r}: {outcome.describe()}"


def assert_code(outcome: Outcome, codes: set[str], what: str) -> None:
    if outcome.code not in codes:
        raise WrongCode(f"{what}: expected {'/'.join(sorted(codes))}, got {outcome.describe()}")


def assert_whole(outcome: Outcome, expected: int, what: str) -> None:
    assert outcome.error is None and outcome.rows == expected, (
        f"{what}: expected OK with {expected} rows, got {outcome.describe()}")


def count_parquet(files) -> int:
    """Rows in these Parquet files, counted by DuckDB."""
    names = ", ".join(f"'{f}'" for f in files)
    con = duckdb.connect()
    try:
        return con.execute(f"SELECT count(*) FROM read_parquet([{names}])").fetchall()[0][0]
    finally:
        con.close()


# --------------------------------------------------------------------------------------
# generated data: many files, many row groups, incompressible strings
# --------------------------------------------------------------------------------------


def events_table(seed: int, rows: int, first_id: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    raw = rng.bytes(rows * 16)
    return pa.table({
        "id": pa.array(np.arange(first_id, first_id + rows, dtype=np.int64)),
        "payload": pa.array([raw[i * 16:(i + 1) * 16].hex() for i in range(rows)]),
        "amount": pa.array(rng.random(rows)),
    })


def write_events(folder: Path, files: int, rows: int, row_group: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        path = folder / f"part-{i:02d}.parquet"
        pq.write_table(events_table(seed + i, rows, i * rows), path, row_group_size=row_group)
        paths.append(path)
    return paths


def local_product(name: str, folder: Path) -> dict:
    return {"name": name, "location": f"{folder}/", "format": "parquet"}


REGION = local_product("region", DATA / "customers" / "region")


def assert_region_served(client: flight.FlightClient, domain: str) -> None:
    """The follow-up query: the same server answers a healthy product in full."""
    outcome = read_stream(client, f"SELECT * FROM {domain}.region")
    assert_whole(outcome, 5, "a healthy product after the fault")


def call_outcome(call) -> Outcome:
    """How one call (not a result stream) ended."""
    started = time.monotonic()
    try:
        call()
    except STREAM_ERRORS as exc:
        return Outcome(0, exc, grpc_code(exc), time.monotonic() - started)
    return Outcome(0, None, "OK", time.monotonic() - started)


# --------------------------------------------------------------------------------------
# raw HTTP/2, for what real clients refuse to send
# --------------------------------------------------------------------------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA_FRAME, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
REFUSED_STREAM = 0x7
DO_GET = "/arrow.flight.protocol.FlightService/DoGet"


def h2_frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_int(value: int, bits: int) -> bytes:
    limit = (1 << bits) - 1
    if value < limit:
        return bytes([value])
    out, value = bytearray([limit]), value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_literal(name: str, value: str | bytes) -> bytes:
    """A literal header field without indexing, new name, no Huffman coding."""
    value = value.encode() if isinstance(value, str) else value
    return b"\x00" + hpack_int(len(name), 7) + name.encode() + hpack_int(len(value), 7) + value


class RawH2:
    """One plaintext HTTP/2 connection written by hand (frames, literal HPACK)."""

    def __init__(self, port: int, *, handshake: bool = True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""
        if handshake:
            self.sock.sendall(H2_PREFACE + h2_frame(SETTINGS, 0, 0))

    def headers(self, stream: int, path: str, extra: list[tuple[str, str]] = (), end_stream: bool = False) -> bool:
        """Opens `stream` with a request for `path`; False when the connection has ended."""
        block = b"".join(hpack_literal(n, v) for n, v in [
            (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1"),
            ("content-type", "application/grpc"), ("te", "trailers"), *extra])
        pieces = [block[i:i + 16_384] for i in range(0, len(block), 16_384)] or [b""]
        frames = []
        for i, piece in enumerate(pieces):
            flags = (END_HEADERS if i == len(pieces) - 1 else 0) | (END_STREAM if end_stream and i == 0 else 0)
            frames.append(h2_frame(HEADERS if i == 0 else CONTINUATION, flags, stream, piece))
        return self.send(b"".join(frames))

    def frames(self, seconds: float) -> list[tuple[int, int, int, bytes]]:
        """Frames received within `seconds` (SETTINGS and PINGs acknowledged); stops early
        when the server closes the connection."""
        out, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65_536)
            except (socket.timeout, OSError):  # nothing more, or the server ended the connection
                break
            if not data:
                break
            self.buffer += data
            while len(self.buffer) >= 9:
                length = int.from_bytes(self.buffer[:3], "big")
                if len(self.buffer) < 9 + length:
                    break
                kind, flags = self.buffer[3], self.buffer[4]
                stream = int.from_bytes(self.buffer[5:9], "big") & 0x7FFF_FFFF
                payload, self.buffer = self.buffer[9:9 + length], self.buffer[9 + length:]
                out.append((kind, flags, stream, payload))
                if kind == SETTINGS and not flags & ACK:
                    self.send(h2_frame(SETTINGS, ACK, 0))
                elif kind == PING and not flags & ACK:
                    self.send(h2_frame(PING, ACK, 0, payload))
        return out

    def send(self, data: bytes) -> bool:
        """Sends `data`; False when the server has ended the connection."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def close(self) -> None:
        self.sock.close()


