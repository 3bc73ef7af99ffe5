"""Shared helpers for meshgate's Python client tests.

Imported by conftest.py and by the test modules (pytest puts this directory on
sys.path because it has no __init__.py).

Contents:
- paths of the repository and the demo mesh, and the system tables every principal is
  listed (`SYSTEM_SCHEMA`, `SYSTEM_TABLES`, `with_system_schema`, `with_system_tables`),
- `Server`: starts `meshgate serve`, waits for its ready line (and with --http-bind the
  HTTP line: `server.http_uri`), stops it with SIGTERM,
- a hand-written protobuf encoder for Flight SQL commands (no protobuf package needed),
- `flight_sql_query` / `flight_command`: run commands with plain pyarrow.flight,
- `duckdb_expected`: the same SQL computed by DuckDB directly on the demo files,
- `duckdb_mesh`: a DuckDB connection with the demo products as tables named as in the mesh,
- `assert_same_rows`: order-insensitive comparison of two results,
- gRPC status-code extraction from pyarrow.flight and ADBC exceptions,
- the demo mesh's declared contract, read from its YAML files,
- authentication: `flight_client(uri, user=...)` (Basic handshake, then the bearer on every
  call), `adbc_connect(uri, user=...)`, `OPEN_GOVERNANCE` for configs written by tests,
  `hash_password` (argon2 hashes from `meshgate hash-password`).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import math
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Sequence

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import yaml  # PyYAML, installed with moto[server]

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTDATA = REPO_ROOT / "testdata"
DATA = TESTDATA / "data"
DEMO_CONFIG = TESTDATA / "mesh.yaml"

READY_RE = re.compile(r"^meshgate listening on (grpc(?:\+tls)?://127\.0\.0\.1:(\d+))$")  # grpc+tls: --tls-cert
# The second stdout line, printed only with --http-bind (or MESHGATE_HTTP_BIND).
HTTP_READY_RE = re.compile(r"^meshgate http on (http://127\.0\.0\.1:\d+)$")
START_TIMEOUT = float(os.environ.get("MESHGATE_TEST_START_TIMEOUT", "120"))
STOP_TIMEOUT = float(os.environ.get("MESHGATE_TEST_STOP_TIMEOUT", "30"))

DEMO_DOMAINS = {"sales", "customers", "supply"}
DEMO_PRODUCTS = {
    ("sales", "orders"),
    ("sales", "lineitem"),
    ("sales", "customer_features"),  # ML features: entity key, event time, created at
    ("customers", "customer"),
    ("customers", "nation"),
    ("customers", "region"),
    ("supply", "part"),
    ("supply", "partsupp"),
    ("supply", "supplier"),
    ("supply", "stock_movements"),  # a Delta table
}

# meshgate's system tables (the catalog of the mesh), in their reserved schema. Every
# principal sees them listed (their rows are governed), next to the products they may
# read. Written here by hand, never read from the server, so a listing that loses or
# gains one fails; add a table's name when it lands.
SYSTEM_SCHEMA = "mesh_catalog"
SYSTEM_TABLES = {"products", "columns", "quality_results", "lineage", "query_log", "usage"}
SYSTEM_TABLE_TYPE = "SYSTEM TABLE"  # their table type in GetTables / get_objects


def with_system_schema(domains: Iterable[str]) -> set[str]:
    """The schemas a principal is listed: the domains they read, and the system schema."""
    return set(domains) | {SYSTEM_SCHEMA}


def with_system_tables(products: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (schema, table) pairs a principal is listed: their products and the system tables."""
    return set(products) | {(SYSTEM_SCHEMA, table) for table in SYSTEM_TABLES}


# --------------------------------------------------------------------------------------
# the binary and servers
# --------------------------------------------------------------------------------------


def meshgate_bin_path() -> Path:
    """MESHGATE_BIN (relative paths resolve against the repo root), else target/debug."""
    raw = os.environ.get("MESHGATE_BIN", "target/debug/meshgate")
    p = Path(os.path.expanduser(raw))
    if not p.is_absolute():
        p = REPO_ROOT / p
    return p


def free_port() -> int:
    """A port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def s3_server(port: int | None = None):
    """An S3-compatible server (moto's standalone one) on loopback, on `port` or a free
    one; yields its endpoint URL and stops it on exit."""
    from moto.server import ThreadedMotoServer

    port = port or free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str, access_key: str, secret: str):
    """A boto3 S3 client for `endpoint` with these credentials."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                        aws_secret_access_key=secret, region_name="us-east-1")


class ServerStartError(AssertionError):
    """meshgate exited (or printed something unexpected) instead of becoming ready."""

    def __init__(self, message: str, returncode: int | None, stdout: str, stderr: str):
        super().__init__(message)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


_LIVE_SERVERS: list["Server"] = []  # read by conftest's failure hook


class Server:
    """One `meshgate serve` process.

    >>> with Server(bin, config, log_dir=tmp, args=["--target-partitions", "4"]) as srv:
    ...     client = flight_client(srv.uri, user="stella")
    """

    _counter = 0
    COMMAND = "serve"  # the meshgate subcommand
    READY = READY_RE  # its ready line: the URI (group 1) and the port (group 2)

    def __init__(
        self,
        binary: Path,
        config: Path | str | None,
        *,
        log_dir: Path,
        env: dict[str, str] | None = None,
        name: str = "meshgate",
        bind: str = "127.0.0.1:0",
        args: Sequence[str] = (),
    ):
        Server._counter += 1
        self.binary = Path(binary)
        self.config = Path(config) if config is not None else None  # None: no --config
        self.name = name
        self.bind = bind
        self.extra_env = dict(env or {})
        self.extra_args = [str(a) for a in args]  # more `meshgate serve` flags
        self.stderr_path = Path(log_dir) / f"{name}-{Server._counter}.stderr.log"
        self.proc: subprocess.Popen | None = None
        self.uri: str | None = None
        self.port: int | None = None
        self.http_uri: str | None = None  # http://127.0.0.1:PORT with --http-bind, else None
        self._stdout_lines: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        self._stderr_file = None
        self.returncode: int | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> "Server":
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")
        env.update(self.extra_env)
        self._stderr_file = open(self.stderr_path, "wb")
        argv = [str(self.binary), self.COMMAND]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        argv += ["--bind", self.bind]
        argv += self.extra_args
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            cwd=REPO_ROOT,
            env=env,
        )
        pump = threading.Thread(target=self._pump_stdout, name=f"{self.name}-stdout", daemon=True)
        pump.start()
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self._kill()
            raise ServerStartError(
                f"{self.name}: no ready line on stdout within {timeout:.0f}s ({argv})\n"
                f"--- stderr ---\n{self.stderr_text()[-8000:]}",
                None,
                "".join(self._stdout_lines),
                self.stderr_text(),
            )
        if line is None:  # stdout closed: the process exited
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
            self.returncode = rc
            self._close_stderr()
            raise ServerStartError(
                f"{self.name}: exited with {rc} before it was ready ({argv})\n"
                f"--- stderr ---\n{self.stderr_text()[-8000:]}",
                rc,
                "".join(self._stdout_lines),
                self.stderr_text(),
            )
        m = self.READY.match(line.rstrip("\r\n"))
        if not m:
            self._kill()
            raise ServerStartError(
                f"{self.name}: first stdout line is not the ready line: {line!r}\n"
                f"--- stderr ---\n{self.stderr_text()[-8000:]}",
                self.proc.returncode,
                "".join(self._stdout_lines),
                self.stderr_text(),
            )
        self.uri = m.group(1)
        self.port = int(m.group(2))
        if "--http-bind" in self.extra_args or any(a.startswith("--http-bind=") for a in self.extra_args) \
                or self.extra_env.get("MESHGATE_HTTP_BIND"):
            self.http_uri = self._http_line(timeout, argv)
        forget_bearers(self.uri)  # a new process on a reused port signs with a new key
        _LIVE_SERVERS.append(self)
        return self

    def _http_line(self, timeout: float, argv: list[str]) -> str:
        """The HTTP side's address, from the line after the ready line."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        m = HTTP_READY_RE.match((line or "").rstrip("\r\n"))
        if not m:
            self._kill()
            raise ServerStartError(
                f"{self.name}: second stdout line is not the HTTP line: {line!r} ({argv})\n"
                f"--- stderr ---\n{self.stderr_text()[-8000:]}",
                self.proc.returncode if self.proc else None,
                "".join(self._stdout_lines),
                self.stderr_text(),
            )
        return m.group(1)

    def _pump_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:  # keeps draining so the pipe never fills
            text = raw.decode("utf-8", "replace")
            self._stdout_lines.append(text)
            self._lines.put(text)
        self._lines.put(None)

    def stop(self, check: bool = True) -> int:
        """SIGTERM, wait; with check=True assert the exit code is 0."""
        if self.proc is None:
            raise RuntimeError("server was never started")
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._kill()
                self._forget()
                raise AssertionError(
                    f"{self.name}: did not exit within {STOP_TIMEOUT:.0f}s of SIGTERM\n"
                    f"--- stderr ---\n{self.stderr_text()[-8000:]}"
                )
        self.returncode = self.proc.returncode
        self._close_stderr()
        self._forget()
        if check and self.returncode != 0:
            raise AssertionError(
                f"{self.name}: exit code after SIGTERM was {self.returncode}, expected 0\n"
                f"--- stderr ---\n{self.stderr_text()[-8000:]}"
            )
        return self.returncode

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_stderr()
        self._forget()

    def _forget(self) -> None:
        if self in _LIVE_SERVERS:
            _LIVE_SERVERS.remove(self)

    def _close_stderr(self) -> None:
        if self._stderr_file is not None and not self._stderr_file.closed:
            self._stderr_file.close()

    def __enter__(self) -> "Server":
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop(check=exc[0] is None)

    # -- inspection ------------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stdout_text(self) -> str:
        return "".join(self._stdout_lines)

    def proc_status(self, key: str) -> int:
        """A `kB` figure from /proc/<pid>/status (VmHWM, VmRSS), in bytes."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    parts = line.split()
                    assert parts[2] == "kB", line
                    return int(parts[1]) * 1024
        raise KeyError(key)


def run_meshgate(binary: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180):
    """Run a one-shot meshgate command; returns CompletedProcess with text stdout/stderr."""
    full_env = dict(os.environ)
    full_env.setdefault("RUST_BACKTRACE", "1")
    full_env.setdefault("NO_COLOR", "1")
    full_env.update(env or {})
    return subprocess.run(
        [str(binary), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=full_env,
        timeout=timeout,
    )


# --------------------------------------------------------------------------------------
# protobuf by hand: just enough for Flight SQL commands
# --------------------------------------------------------------------------------------


def pb_varint(n: int) -> bytes:
    if n < 0:
        n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_key(field: int, wire_type: int) -> bytes:
    return pb_varint((field << 3) | wire_type)


def pb_bytes(field: int, data: bytes) -> bytes:
    return pb_key(field, 2) + pb_varint(len(data)) + data


def pb_string(field: int, s: str) -> bytes:
    return pb_bytes(field, s.encode("utf-8"))


def pb_bool(field: int, v: bool) -> bytes:
    return pb_key(field, 0) + pb_varint(1 if v else 0)


def pb_packed_uint32(field: int, values: Iterable[int]) -> bytes:
    return pb_bytes(field, b"".join(pb_varint(v) for v in values))


SQL_TYPE_PREFIX = "type.googleapis.com/arrow.flight.protocol.sql."


def pack_any(message_name: str, value: bytes) -> bytes:
    """google.protobuf.Any{type_url = 1, value = 2}."""
    return pb_string(1, SQL_TYPE_PREFIX + message_name) + pb_bytes(2, value)


def cmd_statement_query(sql: str) -> bytes:
    return pack_any("CommandStatementQuery", pb_string(1, sql))


def cmd_get_catalogs() -> bytes:
    return pack_any("CommandGetCatalogs", b"")


def cmd_get_db_schemas(catalog: str | None = None, db_schema_filter_pattern: str | None = None) -> bytes:
    body = b""
    if catalog is not None:
        body += pb_string(1, catalog)
    if db_schema_filter_pattern is not None:
        body += pb_string(2, db_schema_filter_pattern)
    return pack_any("CommandGetDbSchemas", body)


def cmd_get_tables(
    catalog: str | None = None,
    db_schema_filter_pattern: str | None = None,
    table_name_filter_pattern: str | None = None,
    table_types: Sequence[str] = (),
    include_schema: bool = False,
) -> bytes:
    body = b""
    if catalog is not None:
        body += pb_string(1, catalog)
    if db_schema_filter_pattern is not None:
        body += pb_string(2, db_schema_filter_pattern)
    if table_name_filter_pattern is not None:
        body += pb_string(3, table_name_filter_pattern)
    for t in table_types:
        body += pb_string(4, t)
    if include_schema:
        body += pb_bool(5, True)
    return pack_any("CommandGetTables", body)


def cmd_get_table_types() -> bytes:
    return pack_any("CommandGetTableTypes", b"")


def cmd_get_sql_info(ids: Sequence[int] = ()) -> bytes:
    return pack_any("CommandGetSqlInfo", pb_packed_uint32(1, ids) if ids else b"")


def cmd_get_primary_keys(table: str, db_schema: str | None = None, catalog: str | None = None) -> bytes:
    body = b""
    if catalog is not None:
        body += pb_string(1, catalog)
    if db_schema is not None:
        body += pb_string(2, db_schema)
    body += pb_string(3, table)
    return pack_any("CommandGetPrimaryKeys", body)


def cmd_prepared_statement_query(handle: bytes) -> bytes:
    return pack_any("CommandPreparedStatementQuery", pb_bytes(1, handle))


def pb_fields(data: bytes) -> list[tuple[int, int, Any]]:
    """Decode one protobuf message into (field, wire type, value): varints as int,
    length-delimited fields as bytes (fixed32/64 as raw bytes)."""
    out, i = [], 0

    def varint() -> int:
        nonlocal i
        shift = n = 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            out.append((field, wire, varint()))
        elif wire == 2:
            n = varint()
            out.append((field, wire, data[i:i + n]))
            i += n
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            out.append((field, wire, data[i:i + size]))
            i += size
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def pb_field(data: bytes, field: int) -> Any:
    """The first value of `field` in the message (KeyError when absent)."""
    for f, _, v in pb_fields(data):
        if f == field:
            return v
    raise KeyError(field)


def create_prepared_statement(client: flight.FlightClient, sql: str,
                              options: flight.FlightCallOptions | None = None) -> bytes:
    """DoAction CreatePreparedStatement; returns the prepared statement handle."""
    action = flight.Action("CreatePreparedStatement", pack_any("ActionCreatePreparedStatementRequest", pb_string(1, sql)))
    results = list(client.do_action(action, options or flight.FlightCallOptions()))
    assert results, "CreatePreparedStatement returned no result"
    any_msg = results[0].body.to_pybytes()
    return pb_field(pb_field(any_msg, 2), 1)


# SqlInfo ids (FlightSql.proto)
SQLINFO_SERVER_NAME = 0
SQLINFO_SERVER_VERSION = 1
SQLINFO_SERVER_ARROW_VERSION = 2
SQLINFO_SERVER_READ_ONLY = 3
SQLINFO_IDENTIFIER_QUOTE_CHAR = 504


# --------------------------------------------------------------------------------------
# pyarrow.flight calls
# --------------------------------------------------------------------------------------


def flight_command(
    client: flight.FlightClient,
    command: bytes,
    options: flight.FlightCallOptions | None = None,
) -> tuple[flight.FlightInfo, pa.Table, list[pa.Schema]]:
    """GetFlightInfo(command) then DoGet every endpoint's ticket.

    Returns (FlightInfo, all rows as one Table, the schema of each DoGet stream).
    """
    options = options or flight.FlightCallOptions()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(command), options)
    tables: list[pa.Table] = []
    stream_schemas: list[pa.Schema] = []
    for endpoint in info.endpoints:
        target = client
        other = None
        locations = [str(loc.uri.decode() if isinstance(loc.uri, bytes) else loc.uri) for loc in endpoint.locations]
        locations = [u for u in locations if not u.startswith("arrow-flight-reuse-connection:")]
        if locations:
            other = _client_like(client, locations[0])
            target = other
        try:
            reader = target.do_get(endpoint.ticket, options)
            stream_schemas.append(reader.schema)
            tables.append(reader.read_all())
        finally:
            if other is not None:
                other.close()
    if tables:
        table = pa.concat_tables(tables)
    else:
        table = info.schema.empty_table()
    return info, table, stream_schemas


def flight_sql_query(client: flight.FlightClient, sql: str, options: flight.FlightCallOptions | None = None) -> pa.Table:
    """Run SQL as a plain CommandStatementQuery (no prepared statement)."""
    return flight_command(client, cmd_statement_query(sql), options)[1]


def adbc_query(conn, sql: str) -> pa.Table:
    """Run SQL through the ADBC DB-API (prepare + execute + DoGet)."""
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


# --------------------------------------------------------------------------------------
# gRPC status codes from client exceptions
# --------------------------------------------------------------------------------------

GRPC_CODE_NAMES = {
    0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION", 10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED",
    13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}
# grpc-go's codes.Code.String(), used in the ADBC Go driver's messages: "msg (InvalidArgument; ctx)"
_GO_CODE_NAMES = {
    "Canceled": "CANCELLED", "Unknown": "UNKNOWN", "InvalidArgument": "INVALID_ARGUMENT",
    "DeadlineExceeded": "DEADLINE_EXCEEDED", "NotFound": "NOT_FOUND", "AlreadyExists": "ALREADY_EXISTS",
    "PermissionDenied": "PERMISSION_DENIED", "ResourceExhausted": "RESOURCE_EXHAUSTED",
    "FailedPrecondition": "FAILED_PRECONDITION", "Aborted": "ABORTED", "OutOfRange": "OUT_OF_RANGE",
    "Unimplemented": "UNIMPLEMENTED", "Internal": "INTERNAL", "Unavailable": "UNAVAILABLE",
    "DataLoss": "DATA_LOSS", "Unauthenticated": "UNAUTHENTICATED",
}


def flight_grpc_code(exc: BaseException) -> str:
    """The gRPC status code behind a pyarrow.flight client exception.

    Arrow's C++ client maps codes to exception classes: INVALID_ARGUMENT -> ArrowInvalid,
    NOT_FOUND -> ArrowKeyError, UNAVAILABLE -> FlightUnavailableError, INTERNAL ->
    FlightInternalError, UNIMPLEMENTED -> ArrowNotImplementedError, ... When gRPC adds its
    debug context ("gRPC client debug context: INVALID_ARGUMENT:...") that is used first.
    """
    m = re.search(r"gRPC client debug context: ([A-Z_]+):", str(exc))
    if m and m.group(1) in GRPC_CODE_NAMES.values():
        return m.group(1)
    # Codes Arrow folds into a shared class keep their name in the message.
    m = re.search(r"gRPC returned ([a-z -]+) error", str(exc))
    folded = {"data loss": "DATA_LOSS", "resource exhausted": "RESOURCE_EXHAUSTED", "out of range": "OUT_OF_RANGE",
              "failed precondition": "FAILED_PRECONDITION", "aborted": "ABORTED", "already exists": "ALREADY_EXISTS"}
    if m and m.group(1) in folded:
        return folded[m.group(1)]
    checks = [
        (flight.FlightUnavailableError, "UNAVAILABLE"),
        (flight.FlightInternalError, "INTERNAL"),
        (flight.FlightTimedOutError, "DEADLINE_EXCEEDED"),
        (flight.FlightCancelledError, "CANCELLED"),
        (flight.FlightUnauthenticatedError, "UNAUTHENTICATED"),
        (flight.FlightUnauthorizedError, "PERMISSION_DENIED"),
        (pa.ArrowInvalid, "INVALID_ARGUMENT"),
        (pa.ArrowKeyError, "NOT_FOUND"),
        (pa.ArrowNotImplementedError, "UNIMPLEMENTED"),
    ]
    for cls, name in checks:
        if isinstance(exc, cls):
            return name
    return "UNKNOWN"


# the ADBC status the Go driver derives from each gRPC code (adbcFromFlightStatus)
_ADBC_STATUS_FOR_GRPC = {
    "CANCELLED": "CANCELLED", "UNKNOWN": "UNKNOWN", "INVALID_ARGUMENT": "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED": "TIMEOUT", "NOT_FOUND": "NOT_FOUND", "ALREADY_EXISTS": "ALREADY_EXISTS",
    "PERMISSION_DENIED": "UNAUTHORIZED", "RESOURCE_EXHAUSTED": "INTERNAL", "FAILED_PRECONDITION": "UNKNOWN",
    "ABORTED": "UNKNOWN", "OUT_OF_RANGE": "UNKNOWN", "UNIMPLEMENTED": "NOT_IMPLEMENTED",
    "INTERNAL": "INTERNAL", "UNAVAILABLE": "IO", "DATA_LOSS": "IO", "UNAUTHENTICATED": "UNAUTHENTICATED",
}


def adbc_grpc_code(exc: BaseException) -> str:
    """The gRPC status code behind an ADBC Flight SQL driver exception.

    The Go driver formats the message as "<server message> (<GoCodeName>; <context>)" and
    sets the ADBC status from the code (vendor_code = int(code) where the C layer keeps it).
    The ADBC status_code must agree with the code, else "MISMATCH(...)" is returned.
    """
    code = None
    vc = getattr(exc, "vendor_code", None)
    if isinstance(vc, int) and vc in GRPC_CODE_NAMES and vc != 0:
        code = GRPC_CODE_NAMES[vc]
    else:
        m = re.search(r"\((\w+); ", str(exc))
        if m and m.group(1) in _GO_CODE_NAMES:
            code = _GO_CODE_NAMES[m.group(1)]
    if code is None:
        return "UNKNOWN"
    status = getattr(exc, "status_code", None)
    status_name = getattr(status, "name", None)
    if status_name is not None and status_name != _ADBC_STATUS_FOR_GRPC[code]:
        return f"MISMATCH(grpc={code}, adbc={status_name})"
    return code


def describe_exc(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    return (
        f"{type(exc).__name__}(status_code={getattr(status, 'name', status)!r}, "
        f"vendor_code={getattr(exc, 'vendor_code', None)!r}): {exc}"
    )


# --------------------------------------------------------------------------------------
# authentication: clients that carry credentials, configs that need none
# --------------------------------------------------------------------------------------

DEMO_USERS = ("ana", "sam", "carl", "stella")  # testdata/mesh.yaml; password: USER-demo


def demo_password(user: str) -> str:
    return f"{user}-demo"


class _HeaderMiddleware(flight.ClientMiddleware):
    def __init__(self, headers: dict[str, str]):
        super().__init__()
        self._headers = headers

    def sending_headers(self):
        return dict(self._headers)


class HeaderMiddlewareFactory(flight.ClientMiddlewareFactory):
    """Adds `headers` (name -> value) to every call of the client it is installed in."""

    def __init__(self, headers: dict[str, str] | None = None):
        super().__init__()
        self.headers = dict(headers or {})

    def start_call(self, info):
        return _HeaderMiddleware(self.headers) if self.headers else None


_FACTORIES: "weakref.WeakKeyDictionary[flight.FlightClient, HeaderMiddlewareFactory]" = weakref.WeakKeyDictionary()
_BEARERS: dict[tuple[str, str, str | None], str] = {}  # (uri, user, password) -> bearer token


def basic_handshake(uri: str, user: str, password: str | None = None) -> tuple[bytes, bytes]:
    """A Flight Handshake with Basic credentials (password defaults to USER-demo).
    Returns the header pair the server answered with: (b'authorization', b'Bearer ...')."""
    client = flight.FlightClient(uri)
    try:
        return client.authenticate_basic_token(user, demo_password(user) if password is None else password)
    finally:
        client.close()


def bearer_for(uri: str, user: str, password: str | None = None, *, fresh: bool = False) -> str:
    """The bearer token a Basic handshake gives `user` (cached per server unless fresh)."""
    key = (uri, user, password)
    if fresh or key not in _BEARERS:
        name, value = basic_handshake(uri, user, password)
        assert name.lower() == b"authorization" and value.startswith(b"Bearer "), (name, value)
        _BEARERS[key] = value[len(b"Bearer "):].decode()
    return _BEARERS[key]


def forget_bearers(uri: str) -> None:
    for key in [k for k in _BEARERS if k[0] == uri]:
        del _BEARERS[key]


def flight_client(uri: str, user: str | None = None, password: str | None = None, *,
                  bearer: str | None = None, fresh: bool = False) -> flight.FlightClient:
    """A pyarrow.flight client that authenticates every call.

    user: Basic handshake (password defaults to USER-demo), then `authorization: Bearer`
    with the token the server answered on every call; bearer: that token as is (e.g. a
    JWT); neither: no credentials (servers with anonymous access).
    """
    headers = {}
    if user is not None:
        bearer = bearer_for(uri, user, password, fresh=fresh)
    if bearer is not None:
        headers["authorization"] = f"Bearer {bearer}"
    factory = HeaderMiddlewareFactory(headers)
    client = flight.FlightClient(uri, middleware=[factory])
    _FACTORIES[client] = factory
    return client


def _client_like(client: flight.FlightClient, location: str) -> flight.FlightClient:
    """A client for another endpoint location that sends the same credentials."""
    factory = _FACTORIES.get(client)
    return flight.FlightClient(location, middleware=[factory] if factory is not None else None)


def basic_authorization(user: str, password: str, *, pad: bool = True) -> str:
    """`Basic base64(user:password)`; pad=False drops the `=` padding (as the Go driver does)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return "Basic " + (token if pad else token.rstrip("="))


def auth_options(authorization: str | None = None, *, timeout: float | None = None) -> flight.FlightCallOptions:
    """Call options carrying one `authorization` header (or none)."""
    headers = [(b"authorization", authorization.encode())] if authorization is not None else []
    return flight.FlightCallOptions(headers=headers, timeout=timeout)


def adbc_connect(uri: str, user: str | None = None, password: str | None = None, *,
                 bearer: str | None = None, db_kwargs: dict[str, str] | None = None):
    """ADBC DB-API connection (autocommit on: meshgate has no transactions).

    user: the driver's own Basic handshake with `username`/`password` (password defaults
    to USER-demo); bearer: sent as the authorization header (e.g. a JWT); neither: no
    credentials.
    """
    import adbc_driver_flightsql.dbapi as flightsql

    kwargs = dict(db_kwargs or {})
    if bearer is not None:
        kwargs["adbc.flight.sql.authorization_header"] = f"Bearer {bearer}"
    elif user is not None:
        kwargs["username"] = user
        kwargs["password"] = demo_password(user) if password is None else password
    return flightsql.connect(uri, db_kwargs=kwargs, autocommit=True)


def server_message(exc: BaseException) -> str:
    """The status message the server sent, without pyarrow's decoration."""
    text = str(exc)
    m = re.search(r"with message: (.*?)(?:\. gRPC client debug context:.*)?\Z", text, re.S)
    return m.group(1) if m else text


# Appended to configs written by tests that are about something else than governance:
# an anonymous principal that reads every row and column of every product.
OPEN_GOVERNANCE_YAML = """\
auth:
  anonymous: { name: tester, groups: [tester] }
governance:
  policies:
    - grants: [{ id: everyone, effect: permit }]
      row_filters: [{ id: all-rows, mode: permissive, filter: "true" }]
      columns: [{ id: all-columns, select: "*", action: allow }]
"""
OPEN_GOVERNANCE: dict = yaml.safe_load(OPEN_GOVERNANCE_YAML)


def with_open_governance(doc: dict) -> dict:
    """The config dict plus OPEN_GOVERNANCE (anonymous callers see everything)."""
    out = dict(doc)
    out.update(copy.deepcopy(OPEN_GOVERNANCE))
    return out


_HASHES: dict[tuple[str, str], str] = {}


def hash_password(binary: Path, password: str) -> str:
    """The argon2id PHC hash `meshgate hash-password` prints for `password` (read on stdin)."""
    key = (str(binary), password)
    if key not in _HASHES:
        res = subprocess.run([str(binary), "hash-password"], input=password, capture_output=True,
                             text=True, cwd=REPO_ROOT, timeout=120)
        assert res.returncode == 0, f"hash-password exited {res.returncode}: {res.stderr}"
        phc = res.stdout.strip()
        assert phc.startswith("$argon2id$"), f"not an argon2id hash: {res.stdout!r}"
        _HASHES[key] = phc
    return _HASHES[key]


def demo_mesh_doc() -> dict:
    """testdata/mesh.yaml as a dict with every path absolute, so a test can change it and
    write it anywhere (users, policies and product descriptors stay the demo's)."""
    doc = yaml.safe_load(DEMO_CONFIG.read_text())

    def absolute(p):
        return str((TESTDATA / p).resolve()) + ("/" if str(p).endswith("/") else "") if isinstance(p, str) else p

    gov = doc.get("governance") or {}
    if "policies" in gov:
        gov["policies"] = [absolute(p) for p in gov["policies"]]
    for d in doc["domains"].values():
        if d.get("products_dir"):
            d["products_dir"] = absolute(d["products_dir"])
        if d.get("policies"):
            d["policies"] = [absolute(p) for p in d["policies"]]
        for p in d.get("products") or []:
            p["location"] = absolute(p["location"])
    return doc


class ClientPool:
    """Authenticated pyarrow.flight clients for one server, one per user (user=None:
    no credentials), made on first use and closed by close()."""

    def __init__(self, uri: str):
        self.uri = uri
        self._clients: dict[str | None, flight.FlightClient] = {}

    def client(self, user: str | None) -> flight.FlightClient:
        if user not in self._clients:
            self._clients[user] = flight_client(self.uri, user=user)
        return self._clients[user]

    def query(self, user: str | None, sql: str) -> pa.Table:
        return flight_sql_query(self.client(user), sql)

    def error(self, user: str | None, sql: str) -> Exception:
        """The error `sql` fails with (AssertionError when it succeeds)."""
        try:
            t = flight_sql_query(self.client(user), sql)
        except (flight.FlightError, pa.ArrowException) as exc:
            return exc
        raise AssertionError(f"{user}: expected an error, got {t.num_rows} rows: {t.slice(0, 5).to_pylist()}\n{sql}")

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()


def substitute_name(text: str, name: str, replacement: str = "<NAME>") -> str:
    """`text` with the object name replaced as a whole word: first as given (e.g.
    mesh.sales.orders), then each shorter suffix (sales.orders, orders)."""
    parts = name.split(".")
    for i in range(len(parts)):
        form = ".".join(parts[i:])
        text = re.sub(rf"(?<![\w]){re.escape(form)}(?![\w])", replacement, text)
    return text


_DID_YOU_MEAN = re.compile(r" ?Did you mean '[^']*'\?")


def assert_fails_alike(hidden: BaseException, hidden_name: str, unknown: BaseException, unknown_name: str) -> None:
    """Two errors are the same gRPC code and the same message once the names are swapped
    (a hidden object fails exactly like one that does not exist)."""
    assert flight_grpc_code(hidden) == flight_grpc_code(unknown), (describe_exc(hidden), describe_exc(unknown))
    # DataFusion's "Did you mean 'x'?" picks the visible name closest to what was asked,
    # so it depends on the name itself; the suggestions are checked elsewhere
    a = _DID_YOU_MEAN.sub("", substitute_name(server_message(hidden), hidden_name))
    b = _DID_YOU_MEAN.sub("", substitute_name(server_message(unknown), unknown_name))
    assert a == b, f"hidden {hidden_name!r} and unknown {unknown_name!r} fail differently:\n  {a!r}\n  {b!r}"


# --------------------------------------------------------------------------------------
# independent expectations: DuckDB / pyarrow on the demo files
# --------------------------------------------------------------------------------------

DUCKDB_SOURCES = {
    "sales.orders": (
        f"read_parquet('{DATA}/sales/orders/*/*.parquet', hive_partitioning = true, "
        "hive_types = {'o_year': INTEGER})"
    ),
    "sales.lineitem": f"read_parquet('{DATA}/sales/lineitem/*.parquet')",
    "sales.customer_features": f"read_parquet('{DATA}/sales/customer_features/*.parquet')",
    "customers.customer": f"read_parquet('{DATA}/customers/customer/*.parquet')",
    "customers.nation": f"read_parquet('{DATA}/customers/nation/*.parquet')",
    "customers.region": f"read_parquet('{DATA}/customers/region/*.parquet')",
    "supply.part": f"read_parquet('{DATA}/supply/part/*.parquet')",
    "supply.partsupp": f"read_parquet('{DATA}/supply/partsupp/*.parquet')",
    "supply.supplier": f"read_csv('{DATA}/supply/supplier/*.csv', header = true)",
    # A Delta table whose versions only appended: its newest version is every data file.
    "supply.stock_movements": f"read_parquet('{DATA}/supply/stock_movements/*.parquet')",
}
_TABLE_REF_RE = re.compile(r"(?<![\w.'])(?:mesh\.)?(sales|customers|supply)\.(\w+)\b(?!\.)")


def duckdb_sql(sql: str) -> str:
    """Rewrite meshgate table references (sales.orders, mesh.sales.orders) into DuckDB readers."""

    def repl(m: re.Match) -> str:
        key = f"{m.group(1)}.{m.group(2)}"
        if key not in DUCKDB_SOURCES:
            raise KeyError(f"no DuckDB source for {key}")
        return DUCKDB_SOURCES[key]

    return _TABLE_REF_RE.sub(repl, sql)


@dataclass
class Rows:
    names: list[str]
    rows: list[tuple]


def duckdb_expected(sql: str) -> Rows:
    """Compute the meshgate SQL with DuckDB directly on the testdata files."""
    import duckdb

    con = duckdb.connect()
    try:
        cur = con.execute(duckdb_sql(sql))
        names = [d[0] for d in cur.description]
        return Rows(names, [tuple(r) for r in cur.fetchall()])
    finally:
        con.close()


def duckdb_mesh():
    """A DuckDB connection whose catalog `mesh` holds every demo product as a table of
    the same name (`sales.orders`, `mesh.customers.nation`, ...) loaded from the demo
    files with the declared types, in the UTC time zone: meshgate SQL runs on it as is."""
    import duckdb

    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS mesh")
    con.execute("USE mesh")
    con.execute("SET TimeZone = 'UTC'")
    sources = dict(DUCKDB_SOURCES)
    sources["supply.supplier"] = (
        f"read_csv('{DATA}/supply/supplier/*.csv', header = true, columns = {{"
        "'s_suppkey': 'BIGINT', 's_name': 'VARCHAR', 's_address': 'VARCHAR', "
        "'s_nationkey': 'BIGINT', 's_phone': 'VARCHAR', 's_acctbal': 'DOUBLE', 's_comment': 'VARCHAR'})"
    )
    for schema in sorted(DEMO_DOMAINS):
        con.execute(f"CREATE SCHEMA {schema}")
    for name, source in sources.items():
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {source}")
    return con


def table_rows(table: pa.Table) -> Rows:
    cols = [c.to_pylist() for c in table.columns]
    return Rows(list(table.column_names), list(zip(*cols)) if cols else [])


def _plain(v: Any) -> Any:
    """numpy/pandas scalars -> Python scalars."""
    if v is None:
        return None
    if hasattr(v, "item") and not isinstance(v, (Decimal, str, bytes)):
        try:
            return v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _sort_key(row: tuple) -> tuple:
    key = []
    for v in row:
        v = _plain(v)
        if v is None:
            key.append((0, 0))
        elif isinstance(v, bool):
            key.append((1, int(v)))
        elif isinstance(v, (int, float, Decimal)):
            key.append((1, round(float(v), 3)))
        elif isinstance(v, datetime):
            key.append((2, v.isoformat()))
        elif isinstance(v, date):
            key.append((2, v.isoformat()))
        else:
            key.append((3, str(v)))
    return tuple(key)


def values_equal(a: Any, b: Any, rel_tol: float = 1e-9, abs_tol: float = 1e-6) -> bool:
    a, b = _plain(a), _plain(b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)):
        return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=abs_tol)
    if isinstance(a, datetime) or isinstance(b, datetime):
        return a == b
    return a == b


def assert_same_rows(actual: Rows | pa.Table, expected: Rows | pa.Table, *, check_names: bool = True,
                     rel_tol: float = 1e-9, abs_tol: float = 1e-6) -> None:
    """Compare two results ignoring row order (both sorted by all columns)."""
    if isinstance(actual, pa.Table):
        actual = table_rows(actual)
    if isinstance(expected, pa.Table):
        expected = table_rows(expected)
    if check_names:
        assert actual.names == expected.names, f"column names differ: {actual.names} != {expected.names}"
    else:
        assert len(actual.names) == len(expected.names), f"{actual.names} vs {expected.names}"
    assert len(actual.rows) == len(expected.rows), (
        f"row count differs: got {len(actual.rows)}, expected {len(expected.rows)}; "
        f"first rows got={actual.rows[:3]} expected={expected.rows[:3]}"
    )
    a_sorted = sorted(actual.rows, key=_sort_key)
    e_sorted = sorted(expected.rows, key=_sort_key)
    mismatches = []
    for i, (ra, re_) in enumerate(zip(a_sorted, e_sorted)):
        if len(ra) != len(re_) or not all(values_equal(x, y, rel_tol, abs_tol) for x, y in zip(ra, re_)):
            mismatches.append((i, ra, re_))
            if len(mismatches) >= 5:
                break
    assert not mismatches, "rows differ (index, got, expected):\n" + "\n".join(map(repr, mismatches))


def parquet_row_count(path: Path) -> int:
    return sum(pq.read_metadata(f).num_rows for f in sorted(Path(path).rglob("*.parquet")))


def parquet_table(path: Path) -> pa.Table:
    files = sorted(Path(path).rglob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])


# --------------------------------------------------------------------------------------
# the demo mesh's declared contract (from its YAML files)
# --------------------------------------------------------------------------------------

_DECIMAL_RE = re.compile(r"^decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_SIMPLE_TYPES = {
    "bool": pa.bool_(), "int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
    "uint8": pa.uint8(), "uint16": pa.uint16(), "uint32": pa.uint32(), "uint64": pa.uint64(),
    "float32": pa.float32(), "float64": pa.float64(), "utf8": pa.string(), "string": pa.string(),
    "binary": pa.binary(), "date32": pa.date32(), "date": pa.date32(),
    "timestamp": pa.timestamp("us"), "timestamp_tz": pa.timestamp("us", tz="UTC"),
}


def arrow_type(name: str) -> pa.DataType:
    name = name.strip()
    m = _DECIMAL_RE.match(name)
    if m:
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    return _SIMPLE_TYPES[name]


@dataclass
class DeclaredColumn:
    name: str
    type: pa.DataType
    nullable: bool | None  # None: not declared (partition columns)


def current_versions(products: list[dict]) -> list[dict]:
    """The descriptors the plain product names read: per name, the newest active version,
    else the newest one not retired (as the server resolves `domain.product`)."""
    def key(p):
        return tuple(int(x) for x in str(p.get("version", "0.1.0")).split("-")[0].split("."))

    by_name: dict[str, list[dict]] = {}
    for p in products:
        by_name.setdefault(p["name"], []).append(p)
    out = []
    for versions in by_name.values():
        versions.sort(key=key)
        active = [p for p in versions if p.get("status", "active") == "active"]
        served = [p for p in versions if p.get("status", "active") != "retired"]
        if active or served:
            out.append((active or served)[-1])
    return out


def load_contract(config: Path = DEMO_CONFIG) -> dict[tuple[str, str], list[DeclaredColumn]]:
    """(domain, product) -> declared columns (schema, then partition columns)."""
    config = Path(config)
    doc = yaml.safe_load(config.read_text())
    out: dict[tuple[str, str], list[DeclaredColumn]] = {}
    for domain, d in doc["domains"].items():
        products = list(d.get("products") or [])
        if d.get("products_dir"):
            pdir = (config.parent / d["products_dir"]).resolve()
            for f in sorted(list(pdir.glob("*.yaml")) + list(pdir.glob("*.yml"))):
                products.append(yaml.safe_load(f.read_text()))
        for p in current_versions(products):
            cols = [
                DeclaredColumn(c["name"], arrow_type(str(c["type"])), bool(c.get("nullable", True)))
                for c in p.get("schema") or []
            ]
            cols += [DeclaredColumn(c["name"], arrow_type(str(c["type"])), None) for c in p.get("partitions") or []]
            out[(domain, p["name"])] = cols
    return out


def assert_schema_matches_contract(schema: pa.Schema, declared: list[DeclaredColumn], what: str) -> None:
    assert schema.names == [c.name for c in declared], f"{what}: columns {schema.names}"
    for c in declared:
        field = schema.field(c.name)
        assert field.type == c.type, f"{what}.{c.name}: type {field.type}, declared {c.type}"
        if c.nullable is not None:
            assert field.nullable == c.nullable, f"{what}.{c.name}: nullable={field.nullable}, declared {c.nullable}"


def write_yaml(path: Path, doc: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    return path


def product_lines(output: str, domain: str, product: str) -> list[str]:
    """Output lines naming the product, as `domain.product` or by its config path
    `domains.<domain>.products.<product>` (the name must not continue, e.g. `customer_x`)."""
    pat = re.compile(
        rf"(?<![\w.])(?:{re.escape(domain)}\.{re.escape(product)}|"
        rf"domains\.{re.escape(domain)}\.products\.{re.escape(product)})(?![\w])"
    )
    return [line for line in output.splitlines() if pat.search(line)]


def product_line(output: str, domain: str, product: str) -> str | None:
    """The first output line naming the product (see product_lines)."""
    lines = product_lines(output, domain, product)
    return lines[0] if lines else None


# --------------------------------------------------------------------------------------
# a mesh with broken products (used by test_errors and test_check)
# --------------------------------------------------------------------------------------

BROKEN_PRODUCTS = {
    # product -> (substrings the error must contain)
    "corrupt": ["broken.corrupt"],
    "mangled": ["broken.mangled"],
    "nation_extra": ["broken.nation_extra", "extra_col"],
    "customer_retyped": ["broken.customer_retyped", "c_name"],
}


def write_broken_mesh(root: Path) -> Path:
    """A mesh whose `broken` domain has a corrupt file and two drifted schemas, next to
    healthy products, readable by anonymous callers. Used by test_errors and test_check."""
    bad_dir = root / "bad"
    bad_dir.mkdir(parents=True, exist_ok=True)
    (bad_dir / "x.parquet").write_bytes(b"this is not a parquet file\n" * 200)
    doc = {
        "catalog": "mesh",
        "domains": {
            "broken": {
                "owner": "qa@example.com",
                "description": "products with problems",
                "products": [
                    {"name": "corrupt", "location": f"{bad_dir}/", "format": "parquet"},
                    {
                        "name": "mangled",
                        "location": f"{bad_dir}/",
                        "format": "parquet",
                        "schema": [{"name": "id", "type": "int64"}],
                    },
                    {
                        "name": "nation",
                        "location": f"{DATA / 'customers' / 'nation'}/",
                        "format": "parquet",
                    },
                    {
                        "name": "nation_extra",
                        "location": f"{DATA / 'customers' / 'nation'}/",
                        "format": "parquet",
                        "schema": [
                            {"name": "n_nationkey", "type": "int64"},
                            {"name": "n_name", "type": "utf8"},
                            {"name": "extra_col", "type": "int64"},
                        ],
                    },
                    {
                        "name": "customer_retyped",
                        "location": f"{DATA / 'customers' / 'customer'}/",
                        "format": "parquet",
                        "schema": [
                            {"name": "c_custkey", "type": "int64"},
                            {"name": "c_name", "type": "int64"},
                        ],
                    },
                ],
            },
            "healthy": {
                "owner": "qa@example.com",
                "products": [
                    {"name": "region", "location": f"{DATA / 'customers' / 'region'}/", "format": "parquet"},
                ],
            },
        },
    }
    return write_yaml(root / "broken-mesh.yaml", with_open_governance(doc))


def wait_for(predicate, what: str, timeout: float = 60.0):
    """Polls `predicate` until it returns something truthy (returned), or fails naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def cpu_seconds(server) -> float:
    """CPU time the server process has used (utime + stime from /proc; Linux)."""
    fields = open(f"/proc/{server.proc.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


QUERY_LOG_LINE = re.compile(r"query .*outcome=\"?(\w+)\"? active=(\d+) memory_reserved=(\d+) sql=(.*)$")


def query_log_lines(server, sql: str) -> list[tuple[str, int, int]]:
    """(outcome, active, memory_reserved) of every query the server logged with this SQL."""
    found = []
    for line in server.stderr_text().splitlines():
        m = QUERY_LOG_LINE.search(line)
        if m and m.group(4).strip() == sql:
            found.append((m.group(1), int(m.group(2)), int(m.group(3))))
    return found
