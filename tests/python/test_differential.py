"""Differential corpus: every query in tests/python/differential/*.sql runs through
meshgate (ADBC, as the demo steward, who reads every row and column unmasked) and
through DuckDB on the same files, and the results must agree.

A query file holds blocks; each block starts with `-- q: <name>`, then optional
annotation lines, then the SQL (ending with `;`):

    -- q: <name>                  the test id is <file>:<name>
    -- ordered                    compare rows in order (else as multisets)
    -- tolerance: 1e-6            relative tolerance for floats (default 1e-9)
    -- expect: refused <text>     meshgate refuses it: INVALID_ARGUMENT, "<text> ... is not supported"
    -- expect: error <text>       meshgate (DataFusion) fails it with a message containing <text>
    -- dialect: <reason>          a deliberate dialect difference: skipped with the reason
    -- known-wrong: <diagnosis>   meshgate returns a wrong result: xfail(strict=True)
    SELECT ...;
    -- duckdb:                    optional: DuckDB's spelling of the same question
    SELECT ...;

The 22 TPC-H queries are read from benches/queries/ (the text the benchmarks run, one
copy), as cases `tpch:q01` … `tpch:q22`.

Results agree when they have the same number of columns and the same rows (as
multisets unless `ordered`): integers, decimals, strings, dates and timestamps exactly
(a decimal equals the integer or decimal of the same value; timestamps are compared as
instants in UTC), floats, and a float against a decimal, within the tolerance.
Column names are not compared (the engines name expressions differently).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import adbc_driver_manager
import pyarrow as pa
import pytest

import mgtest

CORPUS_DIR = Path(__file__).resolve().parent / "differential"
TPCH_DIR = mgtest.REPO_ROOT / "benches" / "queries"
# Q1 averages decimals summed in another order than DuckDB sums them.
TPCH_TOLERANCE = {"q01": 1e-4}
STEWARD = "stella"  # testdata/mesh.yaml: the steward reads every row and column unmasked
DEFAULT_REL_TOL = 1e-9
ABS_TOL = 1e-9


# --------------------------------------------------------------------------------------
# the corpus
# --------------------------------------------------------------------------------------


@dataclass
class Case:
    file: str
    name: str
    sql: str
    duckdb_sql: str | None = None
    ordered: bool = False
    rel_tol: float = DEFAULT_REL_TOL
    expect: tuple[str, str] | None = None  # ("refused" | "error", text)
    dialect: str | None = None
    known_wrong: str | None = None
    line: int = 0

    @property
    def id(self) -> str:
        return f"{self.file}:{self.name}"


_ANNOTATION = re.compile(r"^--\s*([a-z-]+)(?::\s*(.*?))?\s*$")
_KNOWN_KEYS = {"ordered", "tolerance", "expect", "dialect", "known-wrong"}


def parse_corpus_file(path: Path) -> list[Case]:
    """The cases of one corpus file (ValueError naming file and line on a bad block)."""
    cases: list[Case] = []
    current: Case | None = None
    target: list[str] = []
    in_header = False
    sql_lines: list[str] = []
    duck_lines: list[str] = []

    def finish() -> None:
        if current is None:
            return
        current.sql = _statement(sql_lines, path, current)
        if duck_lines:
            current.duckdb_sql = _statement(duck_lines, path, current)
        cases.append(current)

    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.rstrip()
        if line.startswith("-- q:"):
            finish()
            name = line[len("-- q:"):].strip()
            if not re.fullmatch(r"[a-z0-9_]+", name):
                raise ValueError(f"{path.name}:{lineno}: query name {name!r} must be [a-z0-9_]+")
            current = Case(file=path.stem, name=name, sql="", line=lineno)
            sql_lines, duck_lines = [], []
            target, in_header = sql_lines, True
            continue
        if current is None:
            if line.strip() and not line.startswith("--"):
                raise ValueError(f"{path.name}:{lineno}: SQL before the first `-- q:` line")
            continue
        if line.strip() == "-- duckdb:":
            target, in_header = duck_lines, False
            continue
        m = _ANNOTATION.match(line)
        if in_header and m and (m.group(1) in _KNOWN_KEYS or m.group(2) is not None):
            _annotate(current, m.group(1), m.group(2) or "", path, lineno)
            continue
        if line.strip():
            in_header = False
        target.append(raw)
    finish()
    for c in cases:
        if c.ordered and "order by" not in c.sql.lower():
            raise ValueError(f"{path.name}:{c.line}: query {c.name} is `ordered` but has no ORDER BY")
    names = [c.name for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"{path.name}: duplicate query names {sorted(dupes)}")
    return cases


def _annotate(case: Case, key: str, value: str, path: Path, lineno: int) -> None:
    where = f"{path.name}:{lineno}"
    if key == "ordered":
        case.ordered = True
    elif key == "tolerance":
        case.rel_tol = float(value)
    elif key == "expect":
        kind, _, text = value.partition(" ")
        if kind not in ("refused", "error") or not text.strip():
            raise ValueError(f"{where}: `-- expect:` takes `refused <text>` or `error <text>`")
        case.expect = (kind, text.strip())
    elif key == "dialect":
        case.dialect = value
    elif key == "known-wrong":
        case.known_wrong = value
    else:
        raise ValueError(f"{where}: unknown annotation `{key}` (known: {sorted(_KNOWN_KEYS)})")
    if key in ("dialect", "known-wrong", "expect") and not value.strip():
        raise ValueError(f"{where}: `-- {key}:` needs a reason")


def _statement(lines: list[str], path: Path, case: Case) -> str:
    text = "\n".join(lines).strip()
    if not text.endswith(";"):
        raise ValueError(f"{path.name}:{case.line}: query {case.name} does not end with `;`")
    text = text[:-1].rstrip()
    if ";" in re.sub(r"--[^\n]*", "", re.sub(r"'[^']*'", "", text)):
        raise ValueError(f"{path.name}:{case.line}: query {case.name} holds more than one statement")
    return text


def load_tpch(directory: Path = TPCH_DIR) -> list[Case]:
    """The benchmarks' TPC-H queries, one case each (file `tpch`)."""
    cases: list[Case] = []
    for path in sorted(directory.glob("q*.sql")):
        case = Case(file="tpch", name=path.stem, sql="", line=1,
                    rel_tol=TPCH_TOLERANCE.get(path.stem, DEFAULT_REL_TOL))
        case.sql = _statement(path.read_text().splitlines(), path, case)
        cases.append(case)
    if len(cases) != 22:
        raise ValueError(f"{directory}: expected the 22 TPC-H queries, found {len(cases)}")
    return cases


def load_corpus(directory: Path = CORPUS_DIR) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob("*.sql")):
        cases.extend(parse_corpus_file(path))
    return cases + load_tpch()


CORPUS = load_corpus()


def _param(case: Case):
    marks = []
    if case.dialect:
        marks.append(pytest.mark.skip(reason=f"dialect: {case.dialect}"))
    elif case.known_wrong:
        marks.append(pytest.mark.xfail(strict=True, reason=f"known wrong: {case.known_wrong}"))
    return pytest.param(case, id=case.id, marks=marks)


# --------------------------------------------------------------------------------------
# comparing results
# --------------------------------------------------------------------------------------


def normalise(v: Any) -> Any:
    """A client value in the form both engines' values are compared in."""
    if v is None:
        return None
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(timezone.utc).replace(tzinfo=None)
        return v
    if isinstance(v, (list, tuple)):
        return tuple(normalise(x) for x in v)
    if isinstance(v, dict):
        return tuple((k, normalise(x)) for k, x in v.items())
    if isinstance(v, pa.MonthDayNano):
        return timedelta(days=v.months * 30 + v.days, microseconds=v.nanoseconds // 1000)
    if hasattr(v, "item") and not isinstance(v, (Decimal, str, bytes)):  # numpy scalars
        return normalise(v.item())
    return v


def values_agree(a: Any, b: Any, rel_tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, Decimal)) and isinstance(b, (int, Decimal)):
        return a == b
    if isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)):
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) and math.isnan(fb)
        return math.isclose(fa, fb, rel_tol=rel_tol, abs_tol=ABS_TOL)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(values_agree(x, y, rel_tol) for x, y in zip(a, b))
    if isinstance(a, date) and isinstance(b, date):  # a date equals its midnight
        return _as_datetime(a) == _as_datetime(b)
    return type(a) is type(b) and a == b


def _as_datetime(d: date) -> datetime:
    return d if isinstance(d, datetime) else datetime(d.year, d.month, d.day)


def _sort_key(row: tuple) -> tuple:
    return tuple(_value_key(v) for v in row)


def _value_key(v: Any) -> tuple:
    if v is None:
        return (0,)
    if isinstance(v, bool):
        return (1, float(v))
    if isinstance(v, (int, float, Decimal)):
        f = float(v)
        return (1, -math.inf) if math.isnan(f) else (1, float(f"{f:.9g}"))
    if isinstance(v, date):
        return (2, _as_datetime(v).isoformat())
    if isinstance(v, time):
        return (3, v.isoformat())
    if isinstance(v, timedelta):
        return (4, v.total_seconds())
    if isinstance(v, tuple):
        return (5, tuple(_value_key(x) for x in v))
    if isinstance(v, bytes):
        return (6, v.hex())
    return (7, str(v))


def _show(rows: list[tuple], limit: int = 8) -> str:
    text = "\n".join(f"    {r!r}" for r in rows[:limit])
    return text + (f"\n    ... {len(rows) - limit} more" if len(rows) > limit else "")


def _rows(table: pa.Table) -> list[tuple]:
    columns = [c.to_pylist() for c in table.columns]
    return [tuple(normalise(v) for v in r) for r in zip(*columns)] if columns else []


def assert_results_agree(got: pa.Table, want: pa.Table, case: Case) -> None:
    """meshgate's result `got` agrees with DuckDB's `want` (see the module docstring)."""
    assert got.num_columns == want.num_columns, (
        f"column count differs: meshgate {got.column_names} vs DuckDB {want.column_names}")
    got_rows, want_rows = _rows(got), _rows(want)
    if not case.ordered:
        got_rows = sorted(got_rows, key=_sort_key)
        want_rows = sorted(want_rows, key=_sort_key)
    differ = [i for i, (a, b) in enumerate(zip(got_rows, want_rows))
              if not all(values_agree(x, y, case.rel_tol) for x, y in zip(a, b))]
    if len(got_rows) != len(want_rows) or differ:
        first = differ[0] if differ else min(len(got_rows), len(want_rows))
        lo = max(0, first - 2)
        raise AssertionError(
            f"results differ ({'ordered' if case.ordered else 'as multisets'}): meshgate "
            f"{len(got_rows)} rows, DuckDB {len(want_rows)} rows; {len(differ)} differing "
            f"positions, first at {first}\n  meshgate rows from {lo}:\n{_show(got_rows[lo:])}"
            f"\n  DuckDB rows from {lo}:\n{_show(want_rows[lo:])}"
        )


# --------------------------------------------------------------------------------------
# the engines
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def steward_conn(demo_server):
    conn = mgtest.adbc_connect(demo_server.uri, user=STEWARD)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def duck():
    con = mgtest.duckdb_mesh()
    yield con
    con.close()


def test_corpus_size():
    """The corpus is what the README's inventory says it is (several hundred queries)."""
    assert len(CORPUS) >= 300, len(CORPUS)
    assert len({c.id for c in CORPUS}) == len(CORPUS)


def test_comparison_tells_results_apart():
    """The comparison used below agrees only on equal results (it can fail)."""
    case = Case(file="self", name="check", sql="")

    def table(*rows):
        return pa.table({f"c{i}": [r[i] for r in rows] for i in range(len(rows[0]))})

    same = [
        (table((1, Decimal("1.50"))), table((1, Decimal("1.5")))),
        (table((Decimal("0.1"), 2)), table((0.1 + 1e-12, 2.0))),
        (table((date(1995, 1, 1), "x"), (None, "y")), table((None, "y"), (datetime(1995, 1, 1), "x"))),
    ]
    for got, want in same:
        assert_results_agree(got, want, case)
    different = [
        (table((1, Decimal("1.50"))), table((1, Decimal("1.51")))),
        (table((1,), (1,)), table((1,),)),
        (table((0,),), table((None,),)),
        (table(("a",),), table(("A",),)),
        (table((0.3,),), table((0.30001,),)),
        (table((date(1995, 1, 1),),), table((date(1995, 1, 2),),)),
        (table((True,),), table((1,),)),
    ]
    for got, want in different:
        with pytest.raises(AssertionError):
            assert_results_agree(got, want, case)
    ordered = Case(file="self", name="ordered", sql="", ordered=True)
    with pytest.raises(AssertionError):
        assert_results_agree(table((1,), (2,)), table((2,), (1,)), ordered)


@pytest.mark.parametrize("case", [_param(c) for c in CORPUS])
def test_differential(case: Case, steward_conn, duck):
    if case.expect is not None:
        kind, text = case.expect
        with pytest.raises(adbc_driver_manager.Error) as info:
            mgtest.adbc_query(steward_conn, case.sql)
        message = str(info.value)
        assert text.lower() in message.lower(), f"expected {kind} naming {text!r}, got: {message}"
        if kind == "refused":  # meshgate's own refusal: the code, and what to write instead
            assert mgtest.adbc_grpc_code(info.value) == "INVALID_ARGUMENT", mgtest.describe_exc(info.value)
            assert "is not supported" in message, message
        return
    want = duck.sql(case.duckdb_sql or case.sql).to_arrow_table()
    got = mgtest.adbc_query(steward_conn, case.sql)
    assert_results_agree(got, want, case)
