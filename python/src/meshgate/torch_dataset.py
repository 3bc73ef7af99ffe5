"""A PyTorch ``IterableDataset`` over a training set's canonical shards.

Readers: every (DDP rank, DataLoader worker) pair is one reader, ``reader = rank *
num_workers + worker_id`` of ``readers = world_size * num_workers``; in each epoch the
shards, in the epoch's order, go round-robin to the readers, so no shard is read twice and
none is left out, whatever the number of ranks and workers.

Resuming: the state counts, per reader, the rows it has yielded in the epoch. A reader
resumed from it rebuilds the same order (shards, shuffle buffer and batches depend only
on the manifest, seed, epoch and reader) and skips that many rows, so it neither repeats
nor skips a row. The state is kept where the batches are made:

- torchdata's ``StatefulDataLoader`` calls :meth:`TorchDataset.state_dict` and
  :meth:`TorchDataset.load_state_dict` inside each worker: use it as is;
- with a plain ``DataLoader`` and workers, make the dataset with ``positions=True`` and
  call ``dataset.record(batch)`` on every batch in the training loop; then
  ``dataset.state_dict()`` in the main process is exact (it counts what the loop
  received, not what workers prefetched);
- without workers, ``state_dict()`` is exact as it is.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import IterableDataset, get_worker_info

from . import batching, readahead

if TYPE_CHECKING:
    from .client import Client
    from .manifest import Shard

__all__ = ["TorchDataset", "POSITION_KEY", "STATE_FORMAT"]

POSITION_KEY = "_meshgate_position"  # with positions=True: (reader, readers, rows, epoch)
STATE_FORMAT = "meshgate.torch-state/1"
_POSITION_METADATA = b"meshgate.position"


def _rank_and_world() -> tuple[int, int]:
    """torch.distributed's rank and world size when it is initialized, else the RANK and
    WORLD_SIZE environment variables (torchrun sets them), else 0 and 1."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


class TorchDataset(IterableDataset):  # type: ignore[type-arg]
    """Batches of one split of a training set (made by ``Manifest.to_torch``).

    Use it with ``torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=N)``:
    the dataset makes the batches itself.

    Args:
        batch_size: rows per batch (the last batch of a reader may be shorter).
        shuffle_buffer: rows held by each reader's seeded shuffle buffer (0: no shuffle).
        seed: the shuffle's seed (default: the manifest's).
        drop_last: drop each reader's last, short batch.
        output: ``"tensors"``: a dict of column -> tensor (numbers without a copy where
            Arrow allows; booleans; dates and timestamps as integers since the epoch;
            decimals as float64; a column with nulls as a float tensor with NaN) or
            list (strings, binary); ``"arrow"``: a ``pyarrow.RecordBatch``.
        columns: read only these columns.
        shuffle_shards: permute the shard order each epoch by (seed, epoch); default: when
            shuffling.
        rank, world_size: override the distributed rank and world size.
        positions: each batch carries its position for :meth:`record` (the
            ``"_meshgate_position"`` key of a dict batch, or the ``meshgate.position``
            schema metadata of an Arrow batch).
        read_ahead: shards each reader keeps streaming beyond the one it is reading, so
            the server decodes the next while this one becomes tensors (0: one at a
            time). The order of rows does not depend on it.

    Tensors share memory with the Arrow buffers they were made from, which are read-only:
    clone a tensor before changing it in place.
    """

    def __init__(
        self,
        client: Client,
        shards: list[Shard],
        *,
        schema: pa.Schema,
        manifest_id: str,
        batch_size: int = 256,
        shuffle_buffer: int = 0,
        seed: int = 0,
        drop_last: bool = False,
        output: Literal["tensors", "arrow"] = "tensors",
        columns: list[str] | None = None,
        shuffle_shards: bool | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        positions: bool = False,
        read_ahead: int = 1,
    ):
        super().__init__()
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size is a positive integer, not {batch_size!r}")
        if not isinstance(shuffle_buffer, int) or shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer is a non-negative integer, not {shuffle_buffer!r}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed is a non-negative integer, not {seed!r}")
        if output not in ("tensors", "arrow"):
            raise ValueError(f"output is 'tensors' or 'arrow', not {output!r}")
        readahead.check(read_ahead)
        if (rank is None) != (world_size is None):
            raise ValueError("rank and world_size go together")
        if world_size is not None and rank is not None and not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of world size {world_size}")
        if columns is not None:
            missing = [c for c in columns if c not in schema.names]
            if missing:
                raise ValueError(f"no column {missing[0]!r} in this training set (columns: {schema.names})")
        self.client = client
        self.shards = list(shards)
        self.schema = schema
        self.manifest_id = manifest_id
        self.split = shards[0].split if shards else None
        self.batch_size = batch_size
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.drop_last = drop_last
        self.output = output
        self.columns = list(columns) if columns is not None else None
        self.shuffle_shards = shuffle_buffer > 0 if shuffle_shards is None else bool(shuffle_shards)
        self.rank = rank
        self.world_size = world_size
        self.positions = positions
        self.read_ahead = read_ahead
        self._epoch = 0
        self._readers: int | None = None  # the readers of the state (known once iterated)
        self._rows: dict[int, int] = {}  # reader -> rows yielded this epoch
        self._resume: dict[int, int] = {}  # reader -> rows to skip on the next iteration
        self._sent_rank_world: tuple[int, int] | None = None

    # -- epochs and state ------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (call it before each epoch, in every rank). Setting the
        epoch a loaded state is in keeps the state, so a resumed loop may call it."""
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"an epoch is a non-negative integer, not {epoch!r}")
        if epoch != self._epoch:
            self._resume = {}
            self._rows = {}
        self._epoch = epoch

    def _identity(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest_id,
            "split": self.split,
            "shards": len(self.shards),
            "seed": self.seed,
            "batch_size": self.batch_size,
            "shuffle_buffer": self.shuffle_buffer,
            "shuffle_shards": self.shuffle_shards,
            "drop_last": self.drop_last,
        }

    def state_dict(self) -> dict[str, Any]:
        """Where the epoch is: rows yielded per reader (JSON-able; pass it to
        :meth:`load_state_dict` of a dataset over the same manifest and split)."""
        rows = {**self._resume, **self._rows}
        return {
            "format": STATE_FORMAT,
            **self._identity(),
            "epoch": self._epoch,
            "readers": self._readers,
            "rows": {str(reader): count for reader, count in sorted(rows.items())},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`: the next iteration of each reader skips the
        rows it had yielded."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a {STATE_FORMAT} state: {state.get('format')!r}")
        mine = self._identity()
        differs = [k for k, v in mine.items() if state.get(k) != v]
        if differs:
            raise ValueError(
                "this state belongs to another loader: "
                + ", ".join(f"{k} {state.get(k)!r} (here {mine[k]!r})" for k in differs)
            )
        self._epoch = int(state["epoch"])
        self._readers = state.get("readers")
        self._resume = {int(reader): int(count) for reader, count in state["rows"].items()}
        self._rows = {}

    def record(self, batch: Any) -> Any:
        """Note that the training loop received ``batch`` (made with ``positions=True``),
        so that this process's :meth:`state_dict` counts it; returns the batch without its
        position (a dict batch loses the ``"_meshgate_position"`` key)."""
        if isinstance(batch, dict):
            position = batch.pop(POSITION_KEY, None)
            if position is None:
                raise ValueError(f"this batch carries no {POSITION_KEY}: make the dataset with positions=True")
            reader, readers, rows, epoch = (int(x) for x in torch.as_tensor(position).tolist())
        else:
            metadata = batch.schema.metadata or {}
            if _POSITION_METADATA not in metadata:
                raise ValueError("this batch carries no position: make the dataset with positions=True")
            reader, readers, rows, epoch = json.loads(metadata[_POSITION_METADATA])
        if epoch != self._epoch:
            raise ValueError(f"a batch of epoch {epoch} recorded in epoch {self._epoch}: call set_epoch first")
        self._readers = readers
        self._rows[reader] = rows
        self._resume.pop(reader, None)
        return batch

    # -- loaders ---------------------------------------------------------------------------

    def loader(
        self,
        *,
        num_workers: int = 0,
        stateful: bool = False,
        multiprocessing_context: str | None = None,
        **kwargs: Any,
    ) -> torch.utils.data.DataLoader[Any]:
        """A DataLoader over this dataset: ``batch_size=None`` (the dataset makes the
        batches) and, with workers, ``multiprocessing_context="forkserver"``: a worker
        forked from a process that has talked to the server would hang in gRPC.

        Args:
            num_workers: DataLoader worker processes.
            stateful: a torchdata ``StatefulDataLoader`` (its ``state_dict()`` resumes
                mid-epoch, workers included) instead of a plain ``DataLoader``.
            multiprocessing_context: ``"forkserver"`` (default with workers) or ``"spawn"``.
            kwargs: more DataLoader arguments (``pin_memory``, ``prefetch_factor``, ...).
        """
        if num_workers and multiprocessing_context is None:
            multiprocessing_context = "forkserver"
        if stateful:
            from torchdata.stateful_dataloader import StatefulDataLoader

            cls: type[torch.utils.data.DataLoader[Any]] = StatefulDataLoader
        else:
            cls = torch.utils.data.DataLoader
        return cls(
            self, batch_size=None, num_workers=num_workers, multiprocessing_context=multiprocessing_context, **kwargs
        )

    # -- iteration -------------------------------------------------------------------------

    def _rank_world(self) -> tuple[int, int]:
        if self.rank is not None and self.world_size is not None:
            return self.rank, self.world_size
        if self._sent_rank_world is not None:  # a worker: as its DataLoader's process saw it
            return self._sent_rank_world
        return _rank_and_world()

    def __getstate__(self) -> dict[str, Any]:
        # Pickled in the process that starts the DataLoader workers, where
        # torch.distributed is initialized and RANK/WORLD_SIZE are current.
        state = dict(self.__dict__)
        state["_sent_rank_world"] = self._rank_world()
        return state

    def reader(self) -> tuple[int, int]:
        """(this reader, all readers) in the calling process: rank x DataLoader worker."""
        rank, world = self._rank_world()
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers

    def __iter__(self) -> Iterator[Any]:
        reader, readers = self.reader()
        if self._readers is not None and self._resume and self._readers != readers:
            raise ValueError(
                f"the state was saved with {self._readers} readers (ranks x workers), this run has {readers}: "
                "resume with the same world size and number of workers"
            )
        self._readers = readers
        epoch = self._epoch
        skip = self._resume.pop(reader, 0)
        order = batching.shard_order(len(self.shards), self.seed, epoch, self.shuffle_shards)
        mine = batching.assigned_shards(order, reader, readers)
        if readers > len(self.shards) and not mine:
            warnings.warn(
                f"meshgate: {readers} readers (ranks x DataLoader workers) for {len(self.shards)} shards: "
                f"reader {reader} gets no shard; plan the training set with more shards",
                stacklevel=2,
            )
        stream = self._rows_of(mine)
        if self.shuffle_buffer:
            rng = np.random.default_rng([self.seed, epoch, reader])
            stream = batching.shuffled(stream, self.shuffle_buffer, self.batch_size, rng)
        stream = batching.skipped(batching.rebatched(stream, self.batch_size, self.drop_last), skip)
        rows = skip
        self._rows[reader] = rows
        for batch in stream:
            rows += batch.num_rows
            self._rows[reader] = rows
            yield self._output(batch, (reader, readers, rows, epoch))

    def _rows_of(self, shards: list[int]) -> Iterator[pa.RecordBatch]:
        sources = [functools.partial(self.shards[index].read, self.client) for index in shards]
        for batch in readahead.in_order(sources, ahead=self.read_ahead):
            yield batch.select(self.columns) if self.columns is not None else batch

    def _output(self, batch: pa.RecordBatch, position: tuple[int, int, int, int]) -> Any:
        if self.output == "arrow":
            if self.positions:
                metadata = dict(batch.schema.metadata or {})
                metadata[_POSITION_METADATA] = json.dumps(position).encode()
                batch = batch.replace_schema_metadata(metadata)
            return batch
        out: dict[str, Any] = {}
        with warnings.catch_warnings():
            # Arrow's buffers are read-only; the tensors share them (documented above)
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            for name, values in batching.tensor_columns(batch).items():
                out[name] = torch.from_numpy(values) if isinstance(values, np.ndarray) else values
        if self.positions:
            out[POSITION_KEY] = torch.tensor(position, dtype=torch.int64)
        return out
