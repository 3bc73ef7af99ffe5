"""Hugging Face ``datasets``: a training set split as an ``IterableDataset``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import datasets

    from .client import Client
    from .manifest import Shard

__all__ = ["hf_dataset"]


def _rows(shards: list[Shard], client: Client) -> Iterator[dict[str, Any]]:
    """The rows of the shards this generator call was given (HF hands each of its
    workers a sublist of ``shards``)."""
    for shard in shards:
        for batch in shard.read(client):
            yield from batch.to_pylist()


def hf_dataset(shards: list[Shard], schema: pa.Schema, client: Client) -> datasets.IterableDataset:
    """``datasets.IterableDataset.from_generator`` over the shards: ``n_shards`` is the
    shard count, so ``DataLoader(num_workers=N)`` and ``split_dataset_by_node`` divide
    whole shards."""
    import datasets

    return datasets.IterableDataset.from_generator(
        _rows,
        features=datasets.Features.from_arrow_schema(schema),
        gen_kwargs={"shards": list(shards), "client": client},
    )
