"""The load generator's workload: what each kind of request is, what its answer must be,
and how one client runs it and judges the outcome.

Kinds (the mix picks one per request, by weight):

    point     a lookup by key: SELECT * FROM sales.orders WHERE o_orderkey = K, and
              customers.customer by c_custkey (keys spread over the table, one absent)
    tpch      a few of the TPC-H queries of benches/queries/
    export    a whole table (sales.orders, sales.lineitem) streamed batch by batch and
              summarised as it goes (never held whole)
    metadata  get_objects at table and column depth (GetCatalogs, GetDbSchemas,
              GetTables with schemas), get_info (GetSqlInfo), get_table_schema,
              get_table_types
    bad       malformed SQL (INVALID_ARGUMENT), an unknown table (NOT_FOUND), a garbage
              ticket and a tampered one at DoGet (INVALID_ARGUMENT or UNAUTHENTICATED)

`prepare` builds the workload once, with one client: every request is run through
meshgate and its answer kept as the expectation (small results sorted, exports as a
`Digest`); every SQL answer is also checked against DuckDB on the same files first
(results compared with meshbench.compare, exports by digest), so the expectation is
known right before any load. Under load an answer must then equal it: a result with
fewer rows is `truncated`, any other difference `wrong`, an error an `error` with its
gRPC code, expected for the bad requests (the code they got alone) and unexpected
everywhere else.
"""

from __future__ import annotations

import decimal
import os
import random
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

from . import compare
from .flight_export import statement_command

KINDS = ("point", "tpch", "export", "metadata", "bad")
DEFAULT_MIX = {"point": 50, "tpch": 8, "export": 2, "metadata": 20, "bad": 20}
DEFAULT_TPCH = ("q01", "q03", "q05", "q06", "q10", "q12", "q14")
EXPORT_TABLES = ("sales.orders", "sales.lineitem")
POINT_TABLES = (("sales.orders", "o_orderkey"), ("customers.customer", "c_custkey"))
QUERIES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "queries")
# Codes a refused ticket may carry (a forged or tampered ticket is bad input or bad credentials).
TICKET_CODES = ("INVALID_ARGUMENT", "UNAUTHENTICATED")
# One call may take this long before the client gives up (DEADLINE_EXCEEDED, unexpected).
CALL_TIMEOUT_S = 600.0

OK, WRONG, TRUNCATED, ERROR = "ok", "wrong", "truncated", "error"


@dataclass
class Target:
    """A running meshgate and the files it serves."""

    uri: str
    sources: dict[str, str]  # "domain.table" -> DuckDB table expression over the same files
    bearer: str | None = None  # sent as `authorization: Bearer ...` on every call; None: anonymous
    pid: int | None = None  # the server process (CPU, RSS and fds are sampled from /proc)


@dataclass
class Item:
    """One request of the workload and its expected answer."""

    name: str
    kind: str
    op: str  # "query" | "export" | "get_objects" | "get_info" | "get_table_schema" | "get_table_types" | "ticket"
    arg: Any = None  # SQL, table name, depth or ticket bytes
    expected: Any = None  # canonical table, Digest, metadata value, or the gRPC code
    rows: int | None = None  # expected row count (None: not a row result)
    note: str = ""  # how the expectation was checked


@dataclass
class Workload:
    items: dict[str, list[Item]]  # kind -> items (a request picks a kind, then an item)
    mix: dict[str, float]

    def pick(self, rng: random.Random) -> Item:
        kinds = [k for k in KINDS if self.mix.get(k, 0) > 0 and self.items.get(k)]
        kind = rng.choices(kinds, weights=[self.mix[k] for k in kinds])[0]
        return rng.choice(self.items[kind])

    def all_items(self) -> list[Item]:
        return [i for k in KINDS for i in self.items.get(k, [])]


# --------------------------------------------------------------------------- clients

class _DriverInfoGuard:
    """Works around a data race in the ADBC Flight SQL driver (1.13): get_info writes
    the server's info codes into a map that every connection of the process shares, and
    every other call reads that map when it starts its trace span (execute, get_objects,
    get_table_schema...). A write during a read kills the process ("fatal error:
    concurrent map read and map write" in driverbase.DriverInfo). So get_info runs
    alone in its process, and the other calls run together but never beside it; a
    waiting get_info goes before new calls, so it does not starve."""

    def __init__(self):
        self._cv = threading.Condition()
        self._calls = 0
        self._info_running = False
        self._info_waiting = 0

    @contextmanager
    def call(self):
        with self._cv:
            while self._info_running or self._info_waiting:
                self._cv.wait()
            self._calls += 1
        try:
            yield
        finally:
            with self._cv:
                self._calls -= 1
                if self._calls == 0:
                    self._cv.notify_all()

    @contextmanager
    def get_info(self):
        with self._cv:
            self._info_waiting += 1
            while self._info_running or self._calls:
                self._cv.wait()
            self._info_waiting -= 1
            self._info_running = True
        try:
            yield
        finally:
            with self._cv:
                self._info_running = False
                self._cv.notify_all()


_DRIVER_INFO = _DriverInfoGuard()


class Client:
    """One simulated user: an ADBC connection (and cursor) and a pyarrow.flight client,
    both with the target's credentials, connected at once and kept for the whole run."""

    def __init__(self, target: Target):
        import adbc_driver_flightsql.dbapi as flightsql
        import pyarrow.flight as flight

        kwargs = {
            "adbc.flight.sql.rpc.timeout_seconds.query": str(CALL_TIMEOUT_S),
            "adbc.flight.sql.rpc.timeout_seconds.fetch": str(CALL_TIMEOUT_S),
        }
        headers = []
        if target.bearer:
            kwargs["adbc.flight.sql.authorization_header"] = f"Bearer {target.bearer}"
            headers.append((b"authorization", f"Bearer {target.bearer}".encode()))
        self.conn = flightsql.connect(target.uri, db_kwargs=kwargs, autocommit=True)
        self.cur = self.conn.cursor()
        self.flight = flight.FlightClient(target.uri)
        self.options = flight.FlightCallOptions(headers=headers, timeout=CALL_TIMEOUT_S)
        # both connections open now, not at their first request under load
        self.conn.adbc_get_table_types()
        list(self.flight.list_actions(self.options))

    def query(self, sql: str):
        with _DRIVER_INFO.call():
            self.cur.execute(sql)
            return self.cur.fetch_arrow_table()

    def export(self, sql: str) -> "Digest":
        with _DRIVER_INFO.call():  # the batches are read outside: no span starts there
            self.cur.execute(sql)
            reader = self.cur.fetch_record_batch()
        digest = Digest()
        try:
            for batch in reader:
                digest.add(batch)
        finally:
            reader.close()
        return digest.finish()

    def metadata(self, op: str, arg):
        if op == "get_info":
            with _DRIVER_INFO.get_info():
                return info_value(self.conn.adbc_get_info())
        with _DRIVER_INFO.call():
            if op == "get_objects":
                return objects_rows(self.conn.adbc_get_objects(depth=arg).read_all())
            if op == "get_table_schema":
                schema_name, table = arg.split(".")
                return self.conn.adbc_get_table_schema(table, db_schema_filter=schema_name)
            if op == "get_table_types":
                return sorted(self.conn.adbc_get_table_types())
        raise ValueError(op)

    def do_get(self, ticket: bytes):
        import pyarrow.flight as flight

        return self.flight.do_get(flight.Ticket(ticket), self.options).read_all()

    def flight_info(self, sql: str):
        import pyarrow.flight as flight

        return self.flight.get_flight_info(flight.FlightDescriptor.for_command(statement_command(sql)), self.options)

    def close(self) -> None:
        for c in (self.cur, self.conn, self.flight):
            try:
                c.close()
            except Exception:  # noqa: BLE001 (closing after a failure)
                pass


def execute(client: Client, item: Item) -> tuple[str, str | None, str]:
    """Runs `item` once: (outcome, gRPC code of an error or None, detail). The outcome
    is OK for the right answer, which for a bad request is its refusal with the
    expected code; ERROR is an unexpected error."""
    try:
        if item.op == "query":
            got = client.query(item.arg)
        elif item.op == "export":
            got = client.export(f"SELECT * FROM {item.arg}")
        elif item.op == "ticket":
            got = client.do_get(item.arg)
        else:
            got = client.metadata(item.op, item.arg)
    except Exception as e:  # noqa: BLE001 (every failure is an outcome)
        code = grpc_code(e)
        if isinstance(item.expected, Refusal) and code == item.expected.code:
            return OK, code, ""
        return ERROR, code, first_line(e)
    try:
        return judge(item, got)
    except Exception as e:  # noqa: BLE001 (an answer the checks cannot read is wrong)
        return WRONG, None, f"cannot check the answer: {first_line(e)}"


def judge(item: Item, got) -> tuple[str, str | None, str]:
    if item.op == "ticket" or isinstance(item.expected, Refusal):
        rows = getattr(got, "num_rows", "?")
        return WRONG, None, f"answered ({rows} rows) instead of failing with {item.expected}"
    if item.op == "query":
        return judge_table(item, got)
    if item.op == "export":
        if got.rows < item.rows:
            return TRUNCATED, None, f"{got.rows:,} of {item.rows:,} rows"
        diff = item.expected.diff(got)
        return (OK, None, "") if diff is None else (WRONG, None, diff)
    if item.op == "get_table_schema":
        same = got.equals(item.expected, check_metadata=True)
    else:
        same = got == item.expected
    if same:
        return OK, None, ""
    if isinstance(got, list) and len(got) < len(item.expected):
        return TRUNCATED, None, f"{len(got)} of {len(item.expected)} entries"
    return WRONG, None, f"{item.op}: answer differs from the first one"


def judge_table(item: Item, got) -> tuple[str, str | None, str]:
    if got.num_rows < item.rows:
        return TRUNCATED, None, f"{got.num_rows} of {item.rows} rows"
    if got.num_rows == item.rows and got.schema.equals(item.expected.schema):
        if canonical(got).equals(item.expected):
            return OK, None, ""
        if same_rows(item.expected, got):  # floats summed in another order
            return OK, None, ""
        same, why = compare.compare(item.expected, got, item.arg)
        if same and why.startswith("equal up to"):  # other rows tied at an ORDER BY ... LIMIT boundary
            return OK, None, ""
        return WRONG, None, why if not same else "values differ"
    if not got.schema.equals(item.expected.schema):
        return WRONG, None, f"schema {got.schema.types} instead of {item.expected.schema.types}"
    return WRONG, None, f"{got.num_rows} rows instead of {item.rows}"


@dataclass(frozen=True)
class Refusal:
    """The expectation of a bad request: this gRPC code."""

    code: str

    def __str__(self) -> str:
        return self.code


# --------------------------------------------------------------------------- results


def canonical(table):
    """The table's rows sorted by every sortable column (a result's order is not
    compared: two runs may order ties differently)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = table.combine_chunks()
    if table.num_rows < 2:
        return table
    plain = table.rename_columns([f"c{i}" for i in range(table.num_columns)])
    keys = [(f"c{i}", "ascending", "at_start") for i, t in enumerate(table.schema.types)
            if not (pa.types.is_nested(t) or pa.types.is_dictionary(t))]
    if not keys:
        return table
    return table.take(pc.sort_indices(plain, sort_keys=keys))


def same_rows(expected, got, rel_tol: float = 1e-9) -> bool:
    """The same rows in any order, every value equal (decimals, integers, strings, dates
    exactly), floats within `rel_tol`."""
    import math

    if expected.num_rows != got.num_rows or expected.num_columns != got.num_columns:
        return False
    a = sorted(zip(*[c.to_pylist() for c in expected.columns]), key=compare.row_key)
    b = sorted(zip(*[c.to_pylist() for c in got.columns]), key=compare.row_key)
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            if isinstance(x, float) and isinstance(y, float):
                if not (math.isclose(x, y, rel_tol=rel_tol, abs_tol=1e-12) or (math.isnan(x) and math.isnan(y))):
                    return False
            elif x != y:
                return False
    return True


class Digest:
    """Row count and, per column, an order-free summary of an Arrow stream, built as it
    arrives: the sum of integers, dates, times, booleans and decimals (exact), of floats
    (compared within a relative 1e-9), the total length of strings and binaries, and the
    null count. Columns are matched by name and summarised by kind of type, so int32 and
    int64, or string and large_string, of two engines compare. (The smallest and
    largest string would cost the client three times the rest together.)

    Batches are summarised CHUNK_ROWS rows at a time: a call into Arrow per column and
    chunk instead of per batch, so a client thread streaming an export competes for its
    process's GIL a few times per chunk, not dozens of times per batch."""

    CHUNK_ROWS = 131_072

    def __init__(self):
        self.rows = 0
        self.columns: dict[str, dict] = {}
        self._pending: list = []
        self._pending_rows = 0

    def add(self, batch) -> None:
        self.rows += batch.num_rows
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self.CHUNK_ROWS:
            self.finish()

    def finish(self) -> "Digest":
        """Summarises what is pending (call once the stream ended)."""
        if self._pending:
            import pyarrow as pa

            table = pa.Table.from_batches(self._pending)
            self._pending, self._pending_rows = [], 0
            for name, col in zip(table.column_names, table.columns):
                _summarise(self.columns.setdefault(name.lower(), {"nulls": 0}), col)
        return self

    def diff(self, other: "Digest") -> str | None:
        """None when equal, else what differs."""
        self.finish()
        other.finish()
        if self.rows != other.rows:
            return f"{other.rows:,} rows instead of {self.rows:,}"
        if set(self.columns) != set(other.columns):
            return f"columns {sorted(other.columns)} instead of {sorted(self.columns)}"
        for name, mine in self.columns.items():
            theirs = other.columns[name]
            for key in sorted(set(mine) | set(theirs)):
                a, b = mine.get(key), theirs.get(key)
                if isinstance(a, float) and isinstance(b, float):
                    if abs(a - b) <= 1e-9 * max(abs(a), abs(b), mine.get("abs", 0.0)):
                        continue
                elif a == b:
                    continue
                return f"column {name}: {key} {b!r} instead of {a!r}"
        return None

    def as_dict(self) -> dict:
        self.finish()
        return {"rows": self.rows, "columns": {k: {kk: str(vv) for kk, vv in v.items()} for k, v in self.columns.items()}}


def _summarise(s: dict, col) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_dictionary(t):
        col, t = col.cast(t.value_type), t.value_type
    s["nulls"] += col.null_count
    if pa.types.is_timestamp(t):
        col = col.cast(pa.timestamp("us", t.tz)).cast(pa.int64())
    elif pa.types.is_date(t):
        col = col.cast(pa.date32()).cast(pa.int32())
    elif pa.types.is_time(t) or pa.types.is_duration(t) or pa.types.is_boolean(t):
        col = col.cast(pa.int64())
    t = col.type
    if pa.types.is_integer(t):
        s["sum"] = s.get("sum", 0) + (pc.sum(col).as_py() or 0)
    elif pa.types.is_decimal(t):
        s["sum"] = s.get("sum", decimal.Decimal(0)) + (pc.sum(col).as_py() or decimal.Decimal(0))
    elif pa.types.is_floating(t):
        s["sum"] = s.get("sum", 0.0) + float(pc.sum(col).as_py() or 0.0)
        s["abs"] = s.get("abs", 0.0) + float(pc.sum(pc.abs(col)).as_py() or 0.0)
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) \
            or pa.types.is_large_binary(t) or pa.types.is_string_view(t) or pa.types.is_binary_view(t):
        if pa.types.is_string_view(t):
            col = col.cast(pa.large_string())
        elif pa.types.is_binary_view(t):
            col = col.cast(pa.large_binary())
        s["length"] = s.get("length", 0) + (pc.sum(pc.binary_length(col)).as_py() or 0)
    else:
        s["type"] = str(t)  # compared by type only


def objects_rows(table) -> list[tuple]:
    """get_objects' nested answer as sorted (catalog, schema, table, type, column...) rows."""
    out = []
    for cat in table.to_pylist():
        for sch in cat.get("catalog_db_schemas") or [{"db_schema_name": None}]:
            for tab in sch.get("db_schema_tables") or [{"table_name": None}]:
                base = (cat["catalog_name"], sch.get("db_schema_name"), tab.get("table_name"), tab.get("table_type"))
                cols = tab.get("table_columns") or []
                if not cols:
                    out.append(base)
                for col in cols:
                    out.append(base + tuple(repr(v) for _, v in sorted(col.items())))
    return sorted(out, key=repr)


def info_value(info: dict) -> list[tuple]:
    return sorted(((str(k), repr(v)) for k, v in info.items()))


_GO_CODES = {
    "Canceled": "CANCELLED", "Unknown": "UNKNOWN", "InvalidArgument": "INVALID_ARGUMENT",
    "DeadlineExceeded": "DEADLINE_EXCEEDED", "NotFound": "NOT_FOUND", "AlreadyExists": "ALREADY_EXISTS",
    "PermissionDenied": "PERMISSION_DENIED", "ResourceExhausted": "RESOURCE_EXHAUSTED",
    "FailedPrecondition": "FAILED_PRECONDITION", "Aborted": "ABORTED", "OutOfRange": "OUT_OF_RANGE",
    "Unimplemented": "UNIMPLEMENTED", "Internal": "INTERNAL", "Unavailable": "UNAVAILABLE",
    "DataLoss": "DATA_LOSS", "Unauthenticated": "UNAUTHENTICATED",
}
_CODES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
          "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
          "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")


def grpc_code(exc: BaseException) -> str:
    """The gRPC code behind an ADBC (Go driver) or pyarrow.flight exception; a Python
    exception that is not a server answer is named by its class."""
    text = str(exc)
    vc = getattr(exc, "vendor_code", None)
    if getattr(exc, "status_code", None) is not None and isinstance(vc, int) and 0 < vc < len(_CODES):
        return _CODES[vc]
    m = re.search(r"\((\w+); ", text)
    if m and m.group(1) in _GO_CODES:
        return _GO_CODES[m.group(1)]
    m = re.search(r"gRPC client debug context: ([A-Z_]+):", text)
    if m and m.group(1) in _CODES:
        return m.group(1)
    import pyarrow as pa
    import pyarrow.flight as flight

    for cls, name in ((flight.FlightUnavailableError, "UNAVAILABLE"), (flight.FlightInternalError, "INTERNAL"),
                      (flight.FlightTimedOutError, "DEADLINE_EXCEEDED"), (flight.FlightCancelledError, "CANCELLED"),
                      (flight.FlightUnauthenticatedError, "UNAUTHENTICATED"),
                      (flight.FlightUnauthorizedError, "PERMISSION_DENIED"), (pa.ArrowInvalid, "INVALID_ARGUMENT"),
                      (pa.ArrowKeyError, "NOT_FOUND"), (pa.ArrowNotImplementedError, "UNIMPLEMENTED")):
        if isinstance(exc, cls):
            return name
    return f"client:{type(exc).__name__}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


# --------------------------------------------------------------------------- preparing


def load_query(name: str) -> str:
    with open(os.path.join(QUERIES_DIR, f"{name}.sql")) as f:
        return f.read().strip().rstrip(";").strip()


def point_keys(duck, source: str, column: str, count: int) -> list[int]:
    """`count` keys spread evenly over the table (by rank), plus one that is absent."""
    rows = duck.sql(
        f"SELECT {column} FROM (SELECT {column}, row_number() OVER (ORDER BY {column}) AS r, "
        f"count(*) OVER () AS n FROM {source}) WHERE (r - 1) % greatest(n // {count}, 1) = 0 "
        f"ORDER BY 1 LIMIT {count}"
    ).fetchall()
    return [r[0] for r in rows] + [-1]


def duckdb_connection(sources: dict[str, str]):
    """DuckDB with a view <domain>.<table> over each source (UTC)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for schema in sorted({n.split(".")[0] for n in sources}):
        con.execute(f"CREATE SCHEMA {schema}")
    for name, source in sources.items():
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {source}")
    return con


def duckdb_digest(duck, table: str) -> Digest:
    digest = Digest()
    reader = duck.sql(f"SELECT * FROM {table}").to_arrow_reader(65_536)
    for batch in reader:
        digest.add(batch)
    return digest.finish()


class PrepareError(RuntimeError):
    """The server's answer disagreed with DuckDB's, or a bad request was not refused as
    it should be, before any load: a correctness problem of its own."""


def prepare(target: Target, mix: dict[str, float] | None = None, tpch: tuple[str, ...] = DEFAULT_TPCH,
            exports: tuple[str, ...] = EXPORT_TABLES, keys_per_table: int = 16,
            log: Callable[[str], None] = lambda m: None) -> Workload:
    """Runs every request of the kinds the mix weighs above 0 once with one client and
    keeps its answer as the expectation, after checking it against DuckDB on the same
    files (SQL) or against its expected code (bad requests). Raises PrepareError
    listing every disagreement."""
    mix = dict(DEFAULT_MIX if mix is None else mix)
    client = Client(target)
    duck = duckdb_connection(target.sources)
    problems: list[str] = []
    items: dict[str, list[Item]] = {k: [] for k in KINDS}
    try:
        makers = {
            "point": lambda: _point_items(client, duck, target, keys_per_table, problems),
            "tpch": lambda: [_sql_item(client, duck, "tpch", f"tpch:{q}", load_query(q), problems) for q in tpch],
            "export": lambda: [_export_item(client, duck, table, problems) for table in exports],
            "metadata": lambda: _metadata_items(client, target, problems),
            "bad": lambda: _bad_items(client, problems),
        }
        for kind in KINDS:
            if mix.get(kind, 0) > 0:
                items[kind] = makers[kind]()
                log(f"{kind}: {len(items[kind])} requests, " + "; ".join(
                    f"{i.name.split(':', 1)[1]} {i.note}" for i in items[kind][:3])
                    + ("; ..." if len(items[kind]) > 3 else ""))
    finally:
        client.close()
        duck.close()
    if problems:
        raise PrepareError("before the load:\n  " + "\n  ".join(problems))
    return Workload(items, mix)


def _sql_item(client: Client, duck, kind: str, name: str, sql: str, problems: list[str]) -> Item:
    got = client.query(sql)
    ref = duck.sql(sql).to_arrow_table()
    same, why = compare.compare(ref, got, sql)
    if not same:
        problems.append(f"{name}: meshgate and DuckDB disagree: {why}")
    return Item(name, kind, "query", sql, canonical(got), got.num_rows, f"({got.num_rows} rows) DuckDB: {why}")


def _point_items(client: Client, duck, target: Target, keys_per_table: int, problems: list[str]) -> list[Item]:
    return [_sql_item(client, duck, "point", f"point:{table}#{key}", f"SELECT * FROM {table} WHERE {column} = {key}",
                      problems)
            for table, column in POINT_TABLES if table in target.sources
            for key in point_keys(duck, table, column, keys_per_table)]


def _export_item(client: Client, duck, table: str, problems: list[str]) -> Item:
    got = client.export(f"SELECT * FROM {table}")
    diff = duckdb_digest(duck, table).diff(got)
    if diff is not None:
        problems.append(f"export:{table}: meshgate and DuckDB disagree: {diff}")
    return Item(f"export:{table}", "export", "export", table, got, got.rows,
                f"({got.rows:,} rows) DuckDB: " + ("equal digest" if diff is None else diff))


def _metadata_items(client: Client, target: Target, problems: list[str]) -> list[Item]:
    items = []
    for name, op, arg in (("metadata:get_objects(tables)", "get_objects", "tables"),
                          ("metadata:get_objects(columns)", "get_objects", "all"),
                          ("metadata:get_info", "get_info", None),
                          ("metadata:get_table_schema(sales.orders)", "get_table_schema", "sales.orders"),
                          ("metadata:get_table_types", "get_table_types", None)):
        items.append(Item(name, "metadata", op, arg, client.metadata(op, arg), None, "first answer"))
    listed = {(r[1], r[2]) for r in items[0].expected}
    missing = [n for n in target.sources if tuple(n.split(".")) not in listed]
    if missing:
        problems.append(f"get_objects does not list {', '.join(missing)}")
    return items


def _bad_items(client: Client, problems: list[str]) -> list[Item]:
    info = client.flight_info("SELECT * FROM customers.nation WHERE n_nationkey = 7")
    good = info.endpoints[0].ticket.ticket
    mid = len(good) // 2
    tampered = good[:mid] + bytes([good[mid] ^ 0x01]) + good[mid + 1:]
    items = []
    for name, op, arg, codes in (
            ("bad:malformed-sql", "query", "SELEC o_orderkey FROM sales.orders", ("INVALID_ARGUMENT",)),
            ("bad:unknown-table", "query", "SELECT * FROM sales.no_such_product", ("NOT_FOUND",)),
            ("bad:garbage-ticket", "ticket", b"not a ticket", TICKET_CODES),
            ("bad:tampered-ticket", "ticket", tampered, TICKET_CODES)):
        try:
            client.do_get(arg) if op == "ticket" else client.query(arg)
            problems.append(f"{name}: answered instead of failing with {' or '.join(codes)}")
            continue
        except Exception as e:  # noqa: BLE001 (the refusal is the answer)
            code = grpc_code(e)
        if code not in codes:
            problems.append(f"{name}: {code} instead of {' or '.join(codes)}")
        items.append(Item(name, "bad", op, arg, Refusal(code), None, f"refused with {code}"))
    return items
