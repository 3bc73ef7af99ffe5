"""The SQL a training set compiles to: products, point-in-time feature joins, splits and
provenance columns, written with quoted identifiers and literals."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta

__all__ = [
    "quote_ident",
    "quote_literal",
    "product_query",
    "point_in_time_query",
    "split_ranges",
    "split_condition",
    "split_query",
    "ttl_text",
]

PROVENANCE_COLUMNS = ("_source_file", "_source_row")
# Constant provenance columns: the driving product's domain, name and version.
SOURCE_CONSTANTS = ("_source_domain", "_source_product", "_source_version")

_PRODUCT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_@]*$")
_FEATURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


def quote_ident(name: str) -> str:
    """``"name"``, with inner double quotes doubled (case is kept)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """``'text'``, with inner single quotes doubled."""
    return "'" + text.replace("'", "''") + "'"


def product_ref(product: str) -> tuple[str, str]:
    """(domain, product) of ``"domain.product"``; ValueError naming the input otherwise."""
    if not isinstance(product, str) or not _PRODUCT.match(product):
        raise ValueError(f"a product is named 'domain.product', not {product!r}")
    domain, name = product.split(".", 1)
    return domain, name


def table_ref(product: str) -> str:
    domain, name = product_ref(product)
    return f"{quote_ident(domain)}.{quote_ident(name)}"


def product_query(
    product: str,
    columns: Sequence[str] | None,
    where: str | None,
    provenance: bool,
    constants: Mapping[str, str] | None = None,
    condition: str | None = None,
) -> str:
    """``SELECT <columns> FROM domain.product [WHERE (where) [AND condition]]``.

    With provenance the provenance columns follow the chosen columns (``SELECT *`` has
    them already when the call asks for provenance), then the constant columns.
    """
    if columns is not None:
        if isinstance(columns, str) or not columns:
            raise ValueError("columns is a non-empty list of column names")
        select = [quote_ident(c) for c in columns]
        if provenance:
            select += [quote_ident(c) for c in PROVENANCE_COLUMNS if c not in columns]
    else:
        select = ["*"]
    for name, value in (constants or {}).items():
        select.append(f"{quote_literal(value)} AS {quote_ident(name)}")
    sql = f"SELECT {', '.join(select)} FROM {table_ref(product)}"
    conditions = [f"({where})"] if where else []
    conditions += [condition] if condition else []
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    return sql


def ttl_text(ttl: str | timedelta | Mapping[str, str | timedelta] | None) -> str | None:
    """The TTL argument of ``point_in_time``: one duration (``"30 days"``) for every
    feature product, or ``"domain.product=30 days;..."`` per product."""
    if ttl is None:
        return None
    if isinstance(ttl, Mapping):
        parts = []
        for product, value in ttl.items():
            product_ref(product)
            parts.append(f"{product}={_duration(value)}")
        if not parts:
            raise ValueError("ttl is an empty mapping")
        return ";".join(parts)
    return _duration(ttl)


def _duration(value: str | timedelta) -> str:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds <= 0 or seconds != int(seconds):
            raise ValueError(f"a TTL is a positive whole number of seconds, not {value!r}")
        whole = int(seconds)
        for unit, size in (("weeks", 604_800), ("days", 86_400), ("hours", 3_600), ("minutes", 60)):
            if whole % size == 0:
                return f"{whole // size} {unit}"  # the largest exact unit keeps the count small
        return f"{whole} seconds"
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a TTL is a duration such as '30 days' or a timedelta, not {value!r}")
    return value.strip()


def point_in_time_query(
    entities: str,
    event_time: str,
    features: Sequence[str],
    ttl: str | None,
    constants: Mapping[str, str] | None = None,
) -> str:
    """``SELECT * FROM point_in_time('<entities>', '<event_time>', '<features>'[, '<ttl>'])``:
    the server's point-in-time feature join (docs/ml.md), then the constant columns."""
    if not isinstance(entities, str) or not entities.strip():
        raise ValueError("entities is a product name ('domain.product') or a SELECT query")
    if not _PRODUCT.match(entities) and not entities.lstrip().lower().startswith(("select", "with")):
        raise ValueError(f"entities is a product name ('domain.product') or a SELECT query, not {entities!r}")
    if not isinstance(event_time, str) or not event_time:
        raise ValueError("event_time names the entities' event time column")
    if isinstance(features, str) or not features:
        raise ValueError("features is a non-empty list of 'domain.product.column' names")
    for feature in features:
        if not isinstance(feature, str) or not _FEATURE.match(feature):
            raise ValueError(f"a feature is named 'domain.product.column', not {feature!r}")
    args = [quote_literal(entities), quote_literal(event_time), quote_literal(",".join(features))]
    if ttl is not None:
        args.append(quote_literal(ttl))
    select = ["*"] + [f"{quote_literal(v)} AS {quote_ident(k)}" for k, v in (constants or {}).items()]
    return f"SELECT {', '.join(select)} FROM point_in_time({', '.join(args)})"


def split_ranges(splits: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """Each split's ``[lo, hi)`` range of ``mesh_split_hash``: cumulative fractions in the
    order given, the last one ending at exactly 1.0."""
    if not splits:
        raise ValueError("splits maps split names to fractions, e.g. {'train': 0.8, 'test': 0.2}")
    total = 0.0
    for name, fraction in splits.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"split names are non-empty strings, not {name!r}")
        if not isinstance(fraction, (int, float)) or not 0 < fraction <= 1 or math.isnan(fraction):
            raise ValueError(f"split {name!r}: a fraction is in (0, 1], not {fraction!r}")
        total += fraction
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"split fractions add up to {total}, not 1")
    ranges: dict[str, tuple[float, float]] = {}
    lo = 0.0
    names = list(splits)
    for i, name in enumerate(names):
        hi = 1.0 if i == len(names) - 1 else lo + float(splits[name])
        ranges[name] = (lo, hi)
        lo = hi
    return ranges


def split_condition(salt: str, key: Sequence[str], lo: float, hi: float) -> str:
    """``mesh_split_hash(salt, key...) >= lo AND mesh_split_hash(salt, key...) < hi``."""
    call = f"mesh_split_hash({', '.join([quote_literal(salt)] + [quote_ident(k) for k in key])})"
    return f"{call} >= {lo!r} AND {call} < {hi!r}"


def split_query(base: str, condition: str) -> str:
    """Any query restricted to one split (the query becomes a subquery)."""
    return f"SELECT * FROM ({base}) AS meshgate_training WHERE {condition}"
