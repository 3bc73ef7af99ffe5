"""Reading shards one after another while the next ones are already streaming.

A shard is one DoGet: the server decodes its files on one core while the client turns
batches into tensors. Read strictly in turn, the other core idles. ``in_order`` keeps up
to ``ahead`` further shards streaming on background threads (pyarrow releases the GIL
while it reads), each into a small bounded queue, and yields every batch in exactly the
order a sequential read would: shard by shard, each shard's batches in order. Memory is
bounded by ``ahead x depth`` batches; an error of any shard is raised when the reader
reaches that shard; closing the iterator stops the threads and drops their streams.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa

__all__ = ["in_order"]

_DONE = object()
_POLL_SECONDS = 0.1


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


class _Stream:
    """One source read on a thread into a bounded queue."""

    def __init__(self, source: Callable[[], Iterable[pa.RecordBatch]], depth: int, stop: threading.Event):
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.stop = stop
        self.thread = threading.Thread(target=self._run, args=(source,), name="meshgate-readahead", daemon=True)
        self.thread.start()

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Callable[[], Iterable[pa.RecordBatch]]) -> None:
        batches: Iterable[pa.RecordBatch] | None = None
        try:
            batches = source()
            for batch in batches:
                if not self._put(batch):
                    return
            self._put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the reader, raised there
            self._put(_Failed(error))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    def batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self.queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item


def in_order(
    sources: list[Callable[[], Iterable[pa.RecordBatch]]], *, ahead: int = 1, depth: int = 8
) -> Iterator[pa.RecordBatch]:
    """The batches of ``sources`` in order, with up to ``ahead`` sources after the one
    being read already streaming (``ahead=0``: strictly one after another, no threads)."""
    if ahead < 0 or depth < 1:
        raise ValueError(f"ahead is >= 0 and depth >= 1, not {ahead} and {depth}")
    if ahead == 0:
        for source in sources:
            yield from source()
        return
    stop = threading.Event()
    started: list[_Stream | None] = []
    try:
        for index in range(len(sources)):
            while len(started) <= min(index + ahead, len(sources) - 1):
                started.append(_Stream(sources[len(started)], depth, stop))
            stream = started[index]
            assert stream is not None
            yield from stream.batches()
            started[index] = None  # read: let it go
    finally:
        stop.set()
        for stream in started:
            if stream is not None:
                stream.thread.join(timeout=5)
