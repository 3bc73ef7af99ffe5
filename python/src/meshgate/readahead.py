"""Reading shards one after another while the next ones are already streaming.

A shard is one DoGet: the server decodes its files on one core while the client turns
batches into tensors. Read strictly in turn, the other core idles. ``in_order`` keeps up
to ``ahead`` further shards streaming on background threads (pyarrow releases the GIL
while it reads), each into a queue of at most ``depth`` batches, and yields every batch
in exactly the order a sequential read would: shard by shard, each shard's batches in
order. At most about ``(ahead + 1) x (depth + 1)`` batches are held. An error of any
shard is raised when the reader reaches that shard. Closing the iterator (or an error)
cancels the streams still open, so no shard goes on downloading in the background.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa

__all__ = ["check", "in_order"]

# A source starts one shard's stream: it is handed a callback that receives an object
# with cancel() (the Flight stream) once the stream is open, and returns its batches.
Source = Callable[..., Iterable[pa.RecordBatch]]

_DONE = object()
_POLL_SECONDS = 0.1


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


class _Stream:
    """One source read on a thread into a bounded queue."""

    def __init__(self, source: Source, depth: int, stop: threading.Event):
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.stop = stop
        self._open: Any = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, args=(source,), name="meshgate-readahead", daemon=True)
        self.thread.start()

    def _started(self, stream: Any) -> None:
        with self._lock:
            self._open = stream
            stopped = self.stop.is_set()
        if stopped:
            stream.cancel()

    def cancel(self) -> None:
        """Stop the stream where it is (from any thread)."""
        with self._lock:
            stream = self._open
        if stream is not None:
            stream.cancel()

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Source) -> None:
        batches: Iterable[pa.RecordBatch] | None = None
        try:
            batches = source(started=self._started)
            for batch in batches:
                if not self._put(batch):
                    return
            self._put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the reader, raised there
            self._put(_Failed(error))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - a cancelled stream may complain on close
                    pass

    def batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self.queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item


def check(ahead: int) -> None:
    """Refuse a read-ahead that is not a non-negative integer."""
    if not isinstance(ahead, int) or isinstance(ahead, bool) or ahead < 0:
        raise ValueError(f"read_ahead is a non-negative integer, not {ahead!r}")


def in_order(sources: list[Source], *, ahead: int = 1, depth: int = 8) -> Iterator[pa.RecordBatch]:
    """The batches of ``sources`` in order, with up to ``ahead`` sources after the one
    being read already streaming (``ahead=0``: strictly one after another, no threads)."""
    check(ahead)
    if depth < 1:
        raise ValueError(f"depth is a positive integer, not {depth!r}")
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
            started[index] = None  # read to its end: let it go
    finally:
        stop.set()
        running = [stream for stream in started if stream is not None]
        for stream in running:
            stream.cancel()
        for stream in running:
            stream.thread.join(timeout=5)
