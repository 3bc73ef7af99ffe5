"""Compare query results from different engines.

Results are pyarrow Tables. Engines disagree on result *types* (DuckDB turns
decimal / decimal into a double, DataFusion keeps a decimal; string vs string_view;
int32 vs int64 for extract(year ...)), so values are normalised first: every number
becomes a float compared with a relative tolerance, dates and strings compare exactly.

Rows are compared as multisets (both sides sorted by full row). For a query that ends
in ORDER BY ... LIMIT n, rows tied with the last row on the ORDER BY keys may
legitimately differ between engines; those are checked by key only.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re

REL_TOL = 1e-6
ABS_TOL = 1e-9


def _norm_value(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float, decimal.Decimal)):
        return float(v)
    if isinstance(v, dt.datetime):
        if v.time() == dt.time(0) and v.tzinfo is None:
            return v.date()
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    return v


def normalise(table) -> list[tuple]:
    """A pyarrow Table as a list of tuples of comparable Python values."""
    cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [tuple(_norm_value(c[r]) for c in cols) for r in range(table.num_rows)]


def _sort_value(v):
    # None sorts first; floats are rounded so that two engines' results that differ
    # only in the last bits land in the same order.
    if v is None:
        return (0, 0)
    if isinstance(v, float):
        if math.isnan(v):
            return (2, 0.0)
        return (1, float(f"{v:.9g}"))
    return (1, v)


def row_key(row: tuple) -> tuple:
    return tuple(_sort_value(v) for v in row)


def values_equal(a, b, abs_tol: float = ABS_TOL) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=abs_tol)
    return a == b


def rows_equal(r1: tuple, r2: tuple, tols: list[float] | None = None) -> bool:
    if len(r1) != len(r2):
        return False
    if tols is None:
        return all(values_equal(a, b) for a, b in zip(r1, r2))
    return all(values_equal(a, b, t) for a, b, t in zip(r1, r2, tols))


def column_tolerances(*tables) -> list[float]:
    """Absolute tolerance per column: one unit in the last place of a decimal column.

    An engine that returns avg(decimal) as decimal(p, 6) has rounded it to 6 places,
    while another returns a double; the relative tolerance alone would reject that."""
    import pyarrow as pa

    tols = []
    for i in range(tables[0].num_columns):
        tol = ABS_TOL
        for t in tables:
            typ = t.schema.field(i).type
            if pa.types.is_decimal(typ):
                tol = max(tol, 10.0 ** (-typ.scale))
        tols.append(tol)
    return tols


_ORDER_LIMIT = re.compile(
    r"order\s+by\s+(?P<keys>(?:(?!order\s+by).)*?)\s+limit\s+(?P<limit>\d+)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def order_limit(sql: str):
    """(order-by column names, limit) of a query ending in ORDER BY ... LIMIT n, else None."""
    text = re.sub(r"--[^\n]*", "", sql).strip()
    m = _ORDER_LIMIT.search(text)
    if not m:
        return None
    keys = []
    for item in m.group("keys").split(","):
        item = re.sub(r"\s+(asc|desc)(\s+nulls\s+(first|last))?\s*$", "", item.strip(), flags=re.I)
        keys.append(item.split(".")[-1].strip().lower())
    return keys, int(m.group("limit"))


def _multiset_diff(a: list[tuple], b: list[tuple], tols: list[float], window: int = 64):
    """Rows of a with no equal row in b, and rows of b with none in a.

    Both sides are sorted by row_key, so a row's match sits at nearly the same position;
    it is looked for among the next `window` unmatched rows of b (bounded work even
    when everything differs)."""
    a = sorted(a, key=row_key)
    b = sorted(b, key=row_key)
    used = [False] * len(b)
    only_a = []
    j0 = 0
    for ra in a:
        while j0 < len(b) and used[j0]:
            j0 += 1
        found = False
        seen = 0
        j = j0
        while j < len(b) and seen < window:
            if not used[j]:
                seen += 1
                if rows_equal(ra, b[j], tols):
                    used[j] = True
                    found = True
                    break
            j += 1
        if not found:
            only_a.append(ra)
    only_b = [rb for rb, u in zip(b, used) if not u]
    return only_a, only_b


def compare(ref, other, sql: str) -> tuple[bool, str]:
    """Compare two pyarrow Tables for the query `sql`. Returns (equal, explanation)."""
    if ref.num_columns != other.num_columns:
        return False, f"{ref.num_columns} vs {other.num_columns} columns"
    if ref.num_rows != other.num_rows:
        return False, f"{ref.num_rows} vs {other.num_rows} rows"
    a, b = normalise(ref), normalise(other)
    tols = column_tolerances(ref, other)
    only_a, only_b = _multiset_diff(a, b, tols)
    if not only_a and not only_b:
        return True, "equal"

    ol = order_limit(sql)
    if ol is not None and ref.num_rows == ol[1]:
        # ORDER BY ... LIMIT: rows tied with the last row on the ORDER BY keys may differ.
        keys, _ = ol
        names = [n.lower() for n in ref.column_names]
        idx = [names.index(k) for k in keys if k in names]
        if len(idx) == len(keys):
            key_tols = [tols[i] for i in idx]

            def key_of(row):
                return tuple(row[i] for i in idx)

            boundary_a = key_of(a[-1])  # engines return rows in ORDER BY order
            boundary_b = key_of(b[-1])
            if rows_equal(boundary_a, boundary_b, key_tols) and all(
                rows_equal(key_of(r), boundary_a, key_tols) for r in only_a + only_b
            ):
                return True, f"equal up to {len(only_a)} tied row(s) at the LIMIT boundary"

    sample = ""
    if only_a:
        sample += f" first row only in reference: {only_a[0]!r};"
    if only_b:
        sample += f" first row only in other: {only_b[0]!r};"
    return False, f"{len(only_a)} row(s) differ;{sample}".rstrip(";")
