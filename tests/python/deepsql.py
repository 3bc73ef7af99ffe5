"""Generated deep and wide statements, with their answers computed here.

Each shape builds a statement over `sales.orders` (the one product every caller of
test_deep_queries can read, the contractor `carl` included) whose size is one number:
terms of an operator chain, nesting depth, CASE branches, IN-list items, chained CTEs,
SELECTs in a UNION ALL. Its expected rows come from the caller's visible order keys,
never from meshgate. `substrait_chain` makes Substrait plans of any depth by repeating
one level of a plan datafusion-python produced (producing a 2,000-term plan with
datafusion-python itself takes minutes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mgtest import pb_bytes, pb_fields, pb_key, pb_varint

Keys = frozenset  # the o_orderkey values a caller sees


@dataclass(frozen=True)
class Shape:
    name: str
    # size -> SQL
    sql: Callable[[int], str]
    # (size, visible keys) -> expected rows, as sorted lists of tuples
    rows: Callable[[int, Keys], list[tuple]]


def _small(keys: Keys, below: int = 200) -> list[int]:
    return sorted(k for k in keys if k < below)


def _chain_keys(n: int) -> list[int]:
    """n distinct order keys, spread over the key range (TPC-H keys run to 60,000)."""
    return [1 + 3 * i for i in range(n)]


def plus_chain(n: int) -> str:
    return "SELECT max(o_orderkey" + " + 1" * (n - 1) + ") AS s FROM sales.orders"


def concat_chain(n: int) -> str:
    return ("SELECT o_orderkey, CAST(o_orderkey AS VARCHAR) || '-'" + " || 'ab'" * (n - 2)
            + " AS s FROM sales.orders WHERE o_orderkey < 200")


def or_chain(n: int) -> str:
    return "SELECT o_orderkey FROM sales.orders WHERE " + " OR ".join(f"o_orderkey = {k}" for k in _chain_keys(n))


def and_chain(n: int) -> str:
    return ("SELECT count(*) AS c FROM sales.orders WHERE "
            + " AND ".join(f"o_orderkey <> {k}" for k in _chain_keys(n)))


def comparison_chain(n: int) -> str:
    """`o_orderkey < 1000 = true = true …`: comparisons are left-associative."""
    return "SELECT count(*) AS c FROM sales.orders WHERE o_orderkey < 1000" + " = true" * (n - 1)


def nested_parentheses(depth: int) -> str:
    return ("SELECT o_orderkey, " + "(" * depth + "o_orderkey" + " + 1)" * depth
            + " AS s FROM sales.orders WHERE o_orderkey < 200")


def searched_case(branches: int) -> str:
    """Branch i matches key i (last branch first, so small keys match late)."""
    whens = " ".join(f"WHEN o_orderkey = {i} THEN {3 * i + 1}" for i in reversed(range(branches)))
    return f"SELECT o_orderkey, CASE {whens} ELSE -1 END AS v FROM sales.orders WHERE o_orderkey < 200"


def in_list(n: int) -> str:
    return ("SELECT count(*) AS c FROM sales.orders WHERE o_orderkey IN ("
            + ", ".join(str(2 * i + 1) for i in range(n)) + ")")


def nested_subqueries(depth: int) -> str:
    sql = "SELECT o_orderkey AS k FROM sales.orders WHERE o_orderkey < 200"
    for i in range(depth):
        sql = f"SELECT k + 1 AS k FROM ({sql}) t{i}"
    return sql


def cte_chain(n: int) -> str:
    ctes = ["c0 AS (SELECT o_orderkey AS k FROM sales.orders WHERE o_orderkey < 200)"]
    ctes += [f"c{i} AS (SELECT k + 1 AS k FROM c{i - 1})" for i in range(1, n)]
    return "WITH " + ", ".join(ctes) + f" SELECT k FROM c{n - 1}"


def union_all(n: int) -> str:
    """The first SELECT counts the visible orders, the others are the numbers 1 … n-1."""
    parts = ["SELECT count(*) AS x FROM sales.orders"] + [f"SELECT {i} AS x" for i in range(1, n)]
    return " UNION ALL ".join(parts)


def nested_functions(depth: int) -> str:
    return ("SELECT o_orderkey, " + "abs(" * depth + "-o_orderkey" + ")" * depth
            + " AS v FROM sales.orders WHERE o_orderkey < 200")


SHAPES = {
    s.name: s
    for s in [
        Shape("plus", plus_chain, lambda n, keys: [(max(keys) + n - 1,)]),
        Shape("concat", concat_chain, lambda n, keys: [(k, f"{k}-" + "ab" * (n - 2)) for k in _small(keys)]),
        Shape("or", or_chain, lambda n, keys: [(k,) for k in sorted(keys & set(_chain_keys(n)))]),
        Shape("and", and_chain, lambda n, keys: [(len(keys - set(_chain_keys(n))),)]),
        Shape("comparison", comparison_chain, lambda n, keys: [(sum(1 for k in keys if k < 1000),)]),
        Shape("parentheses", nested_parentheses, lambda d, keys: [(k, k + d) for k in _small(keys)]),
        Shape("case", searched_case,
              lambda b, keys: [(k, 3 * k + 1 if k < b else -1) for k in _small(keys)]),
        Shape("in", in_list, lambda n, keys: [(sum(1 for k in keys if k % 2 == 1 and k < 2 * n),)]),
        Shape("subqueries", nested_subqueries, lambda d, keys: [(k + d,) for k in _small(keys)]),
        Shape("ctes", cte_chain, lambda n, keys: [(k + n - 1,) for k in _small(keys)]),
        Shape("union", union_all, lambda n, keys: sorted([(len(keys),)] + [(i,) for i in range(1, n)])),
        Shape("functions", nested_functions, lambda d, keys: [(k, k) for k in _small(keys)]),
    ]
}


def prepared_or_chain(n: int) -> str:
    """An OR chain whose first term is the parameter $1."""
    return ("SELECT o_orderkey FROM sales.orders WHERE o_orderkey = $1 OR "
            + " OR ".join(f"o_orderkey = {k}" for k in _chain_keys(n - 1)))


def with_parameter(sql: str) -> str:
    """`sql` as a prepared statement with one parameter, $1; binding a positive number
    keeps every row."""
    return f"SELECT * FROM ({sql}) AS q WHERE $1 > 0"


def prepared_or_rows(n: int, keys: Keys, parameter: int) -> list[tuple]:
    return [(k,) for k in sorted(keys & ({parameter} | set(_chain_keys(n - 1))))]


# --------------------------------------------------------------------------------------
# Substrait plans of any depth
# --------------------------------------------------------------------------------------


def pb_encode(fields: list[tuple[int, int, object]]) -> bytes:
    """The inverse of mgtest.pb_fields."""
    out = bytearray()
    for field, wire, value in fields:
        if wire == 0:
            out += pb_key(field, 0) + pb_varint(value)
        elif wire == 2:
            out += pb_bytes(field, value)
        else:
            out += pb_key(field, wire) + value
    return bytes(out)


def _replace(message: bytes, old: bytes, new: bytes) -> bytes:
    """`message` with the length-delimited field whose value is `old` replaced by `new`,
    at whatever depth it sits (only submessages containing `old` are decoded)."""
    fields = []
    for field, wire, value in pb_fields(message):
        if wire == 2 and value == old:
            value = new
        elif wire == 2 and old in value:
            value = _replace(value, old, new)
        fields.append((field, wire, value))
    return pb_encode(fields)


def _scalar_function_levels(expression: bytes):
    """Expression { scalar_function = 3 { …, arguments = 4 [{ value = 3: Expression }, …], … } }:
    (fields before the first argument, the first argument's Expression, fields after it),
    or None when `expression` is not such a call."""
    try:
        outer = pb_fields(expression)
        if [(f, w) for f, w, _ in outer] != [(3, 2)]:
            return None
        function = pb_fields(outer[0][2])
        first = next(i for i, (f, w, _) in enumerate(function) if (f, w) == (4, 2))
        argument = pb_fields(function[first][2])
        if [(f, w) for f, w, _ in argument] != [(3, 2)]:
            return None
    except (IndexError, StopIteration, ValueError):
        return None
    return pb_encode(function[:first]), argument[0][2], pb_encode(function[first + 1:])


def _find_chain(message: bytes, depth: int = 0) -> bytes | None:
    """The outermost Expression in `message` that is a call whose first argument is a call."""
    if depth > 40:
        return None
    try:
        fields = pb_fields(message)
    except (IndexError, ValueError):
        return None
    for _, wire, value in fields:
        if wire != 2:
            continue
        levels = _scalar_function_levels(value)
        if levels is not None and _scalar_function_levels(levels[1]) is not None:
            return value
        found = _find_chain(value, depth + 1)
        if found is not None:
            return found
    return None


def substrait_chain(two_term_plan: bytes, terms: int) -> bytes:
    """A plan like `two_term_plan` (whose expression is `x + 1 + 1`) with `x + 1 + … + 1`
    of `terms` additions, built by repeating its outer call around the inner one."""
    outer = _find_chain(two_term_plan)
    assert outer is not None, "no chained call in the template plan"
    before, inner, after = _scalar_function_levels(outer)
    prefixes, suffixes = [], []
    length = len(inner)
    for _ in range(terms - 1):
        value = pb_key(3, 2) + pb_varint(length)  # FunctionArgument.value = inner
        argument_len = len(value) + length
        function_len = len(before) + len(pb_key(4, 2)) + len(pb_varint(argument_len)) + argument_len + len(after)
        prefixes.append(pb_key(3, 2) + pb_varint(function_len) + before + pb_key(4, 2) + pb_varint(argument_len) + value)
        suffixes.append(after)
        length = len(prefixes[-1]) + length + len(after)
    deep = b"".join(reversed(prefixes)) + inner + b"".join(suffixes)
    assert len(deep) == length
    return _replace(two_term_plan, outer, deep)


def wide_plus_chains(items: int, terms: int) -> str:
    """`items` select items, each a `+` chain of `terms` terms: as deep as one chain,
    `items` times the planning work."""
    columns = ", ".join(f"max(o_orderkey" + f" + {i}" * (terms - 1) + f") AS s{i}" for i in range(items))
    return f"SELECT {columns} FROM sales.orders"
