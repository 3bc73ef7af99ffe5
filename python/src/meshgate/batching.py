"""The loader's deterministic pipeline, in Arrow and NumPy (no torch): which shards a
reader gets, in which order, the seeded shuffle buffer, fixed-size batches, skipping
what was already yielded, and batches as tensors.

Every step depends only on the sequence of rows it is given, never on how the server
happened to cut them into batches, so the same shards, seed and epoch give the same
batches in any process; that is what makes resuming exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "shard_order",
    "assigned_shards",
    "shuffled",
    "rebatched",
    "skipped",
    "tensor_columns",
]


def shard_order(count: int, seed: int, epoch: int, permute: bool) -> list[int]:
    """The canonical shards in the order an epoch reads them: permuted by (seed, epoch)
    when ``permute``, else 0..count-1."""
    if not permute:
        return list(range(count))
    rng = np.random.default_rng([seed, epoch])
    return [int(i) for i in rng.permutation(count)]


def assigned_shards(order: list[int], reader: int, readers: int) -> list[int]:
    """The shards reader ``reader`` of ``readers`` reads: positions p of ``order`` with
    p % readers == reader (no shard read twice, none left out)."""
    if not 0 <= reader < readers:
        raise ValueError(f"reader {reader} is not one of {readers}")
    return order[reader::readers]


def _concat(pieces: list[pa.RecordBatch]) -> pa.RecordBatch:
    return pieces[0] if len(pieces) == 1 else pa.concat_batches(pieces)


def _pieces(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[list[pa.RecordBatch]]:
    """Groups of slices holding exactly ``size`` rows each (the last group may hold fewer)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            take = min(size - held, batch.num_rows - offset)
            pending.append(batch.slice(offset, take))
            held += take
            offset += take
            if held == size:
                yield pending
                pending, held = [], 0
    if held:
        yield pending


def shuffled(
    batches: Iterable[pa.RecordBatch], buffer_size: int, batch_size: int, rng: np.random.Generator
) -> Iterator[pa.RecordBatch]:
    """A seeded shuffle buffer: rows are held until at least ``buffer_size + emit`` are
    there, the held rows are permuted, ``emit`` rows leave (a multiple of ``batch_size``,
    about half the buffer) and the rest stay to mix with the next ones; at the end the
    rest is permuted and leaves. Each row is copied about three times on its way through."""
    emit = max(batch_size, (buffer_size // 2) // batch_size * batch_size)
    window = buffer_size + emit
    held: list[pa.RecordBatch] = []
    count = 0
    for group in _pieces(batches, emit):
        held.extend(group)
        count += sum(piece.num_rows for piece in group)
        if count < window:
            continue
        rows = _concat(held)
        mixed = rows.take(pa.array(rng.permutation(rows.num_rows)))
        yield mixed.slice(0, emit)
        held = [mixed.slice(emit)]
        count -= emit
    if count:  # the end of the stream: what is left leaves in a random order
        rows = _concat(held)
        yield rows.take(pa.array(rng.permutation(rows.num_rows)))


def rebatched(batches: Iterable[pa.RecordBatch], batch_size: int, drop_last: bool) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``batch_size`` rows; the last one may be short unless dropped."""
    for group in _pieces(batches, batch_size):
        if sum(p.num_rows for p in group) < batch_size and drop_last:
            return
        yield _concat(group)


def skipped(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The stream without its first ``rows`` rows."""
    left = rows
    for batch in batches:
        if left >= batch.num_rows:
            left -= batch.num_rows
            continue
        yield batch.slice(left) if left else batch
        left = 0


# -- tensors ------------------------------------------------------------------------------

_TEMPORAL_WIDTH = {32: pa.int32(), 64: pa.int64()}
_UNSIGNED = {pa.uint16(): pa.int32(), pa.uint32(): pa.int64(), pa.uint64(): pa.int64()}


def _listed(array: pa.Array) -> list[Any]:
    values: list[Any] = array.to_pylist()
    return values


def _ndarray(array: pa.Array, zero_copy: bool) -> np.ndarray:
    values: np.ndarray = array.to_numpy(zero_copy_only=zero_copy)
    return values


def _numpy(name: str, array: pa.Array) -> np.ndarray | list[Any]:
    """One column as a NumPy array without a copy where Arrow allows (primitive values,
    no nulls), or as a Python list (strings, binary)."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
        kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return _listed(array)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return _listed(array)
    if pa.types.is_decimal(kind):
        array = pc.cast(array, pa.float64())
    elif pa.types.is_temporal(kind) and not pa.types.is_interval(kind):
        array = array.view(_TEMPORAL_WIDTH[kind.bit_width])  # days, or units since the epoch
    elif kind in _UNSIGNED:
        array = pc.cast(array, _UNSIGNED[kind])
    elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
        raise TypeError(
            f"column {name!r} is {kind}, which has no tensor form: read it with output='arrow' "
            "or leave it out with columns="
        )
    if array.null_count:
        target = array.type if pa.types.is_floating(array.type) else pa.float64()
        if pa.types.is_boolean(array.type) or array.type in (pa.int8(), pa.int16(), pa.uint8()):
            target = pa.float32()
        return _ndarray(pc.cast(array, target), zero_copy=False)  # nulls become NaN
    if pa.types.is_boolean(array.type):
        return _ndarray(array, zero_copy=False)  # Arrow packs booleans in bits
    return _ndarray(array, zero_copy=True)


def tensor_columns(batch: pa.RecordBatch) -> dict[str, np.ndarray | list[Any]]:
    """Column name -> NumPy array (numbers, booleans, dates and timestamps as integers,
    decimals as float64, nulls as NaN in a float column) or list (strings, binary)."""
    return {name: _numpy(name, batch.column(i)) for i, name in enumerate(batch.schema.names)}
