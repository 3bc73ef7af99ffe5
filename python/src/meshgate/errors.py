"""Exceptions raised by the meshgate client.

Every error the server sends arrives as a :class:`MeshgateError` carrying the gRPC status
code name (``.code``, e.g. ``"NOT_FOUND"``) and the server's message (``.message``), so
callers branch on codes rather than on pyarrow's exception classes. Errors found by the
client itself (a manifest that was edited, a snapshot that moved) are subclasses with a
code of the same vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.flight as flight

__all__ = [
    "MeshgateError",
    "ManifestTampered",
    "SnapshotChanged",
    "translate",
    "server_errors",
]


class MeshgateError(Exception):
    """An error from meshgate or from this client.

    Attributes:
        code: the gRPC status code name (``"INVALID_ARGUMENT"``, ``"NOT_FOUND"``,
            ``"PERMISSION_DENIED"``, ``"UNAUTHENTICATED"``, ``"FAILED_PRECONDITION"``, ...).
        message: the server's message (or the client's, for client-side errors).
    """

    def __init__(self, code: str, message: str | None = None):
        if message is None:
            # one argument: a text that holds "CODE: message" (as DataLoader workers and
            # pickles pass an exception on), else the whole text with an UNKNOWN code
            found = list(_CODE_IN_TEXT.finditer(code))
            text = code
            code, message = (found[-1].group(1), found[-1].group(2)) if found else ("UNKNOWN", text)
            super().__init__(text)
        else:
            super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        return (MeshgateError, (self.code, self.message))


class ManifestTampered(MeshgateError):
    """A manifest's content does not hash to its id: it was edited after it was planned."""

    def __init__(self, message: str):
        super().__init__("INVALID_ARGUMENT", message)

    def __reduce__(self) -> tuple[object, ...]:
        return (ManifestTampered, (self.message,))


class SnapshotChanged(MeshgateError):
    """The data or the policies behind a manifest changed since it was planned.

    Attributes:
        changes: one line per difference, e.g.
            ``"sales.lineitem: file data/sales/lineitem/part-2.parquet added"`` or
            ``"policies that govern this data changed"``.
    """

    def __init__(self, changes: list[str] | str):
        self.changes = [changes] if isinstance(changes, str) else list(changes)
        super().__init__(
            "FAILED_PRECONDITION",
            "the training set's snapshot changed since the manifest was planned: " + "; ".join(self.changes),
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (SnapshotChanged, (self.changes,))


# Arrow's Flight client turns a gRPC status into "Flight returned <phrase> error, with
# message: <message>" (older releases: "gRPC returned ..."); the phrase names the code.
_PHRASES = {
    "invalid argument": "INVALID_ARGUMENT",
    "deadline exceeded": "DEADLINE_EXCEEDED",
    "not found": "NOT_FOUND",
    "already exists": "ALREADY_EXISTS",
    "permission denied": "PERMISSION_DENIED",
    "resource exhausted": "RESOURCE_EXHAUSTED",
    "precondition failed": "FAILED_PRECONDITION",
    "aborted": "ABORTED",
    "out-of-range": "OUT_OF_RANGE",
    "unimplemented": "UNIMPLEMENTED",
    "internal": "INTERNAL",
    "unavailable": "UNAVAILABLE",
    "data loss": "DATA_LOSS",
    "unauthenticated": "UNAUTHENTICATED",
    "unauthorized": "PERMISSION_DENIED",
    "cancelled": "CANCELLED",
}
_CODES = set(_PHRASES.values()) | {"UNKNOWN", "OK"}
_CODE_IN_TEXT = re.compile(r"\b(" + "|".join(sorted(_CODES)) + r"): ([^\n]*)")
_RETURNED = re.compile(r"(?:Flight|gRPC) returned ([a-z -]+?) error, with message: (.*)", re.S)
_CANCELLED = re.compile(r"(?:Flight|gRPC) cancelled call, with message: (.*)", re.S)
_RPC_FAILED = re.compile(r"Flight RPC failed with message: (.*)", re.S)
_DEBUG_CONTEXT = re.compile(r"gRPC client debug context: ([A-Z_]+):")
_TRAILERS = re.compile(r"\. (?:gRPC client debug context|Client context|Detail):.*\Z", re.S)

# When the message does not say, the exception class does (Arrow's mapping of codes).
_CLASSES: list[tuple[type[BaseException], str]] = [
    (flight.FlightUnavailableError, "UNAVAILABLE"),
    (flight.FlightInternalError, "INTERNAL"),
    (flight.FlightTimedOutError, "DEADLINE_EXCEEDED"),
    (flight.FlightCancelledError, "CANCELLED"),
    (flight.FlightUnauthenticatedError, "UNAUTHENTICATED"),
    (flight.FlightUnauthorizedError, "PERMISSION_DENIED"),
    (pa.ArrowInvalid, "INVALID_ARGUMENT"),
    (pa.ArrowKeyError, "NOT_FOUND"),
    (pa.ArrowNotImplementedError, "UNIMPLEMENTED"),
]


def translate(exc: BaseException) -> MeshgateError:
    """The :class:`MeshgateError` for an exception raised by a pyarrow.flight call."""
    if isinstance(exc, MeshgateError):
        return exc
    text = str(exc)
    code: str | None = None
    message = text
    if m := _RETURNED.search(text):
        code = _PHRASES.get(m.group(1))
        message = m.group(2)
    elif m := _CANCELLED.search(text):
        code, message = "CANCELLED", m.group(1)
    elif m := _RPC_FAILED.search(text):
        code, message = "UNKNOWN", m.group(1)
    if (m := _DEBUG_CONTEXT.search(text)) and m.group(1) in _CODES:
        code = code or m.group(1)
    if code is None:
        code = next((name for cls, name in _CLASSES if isinstance(exc, cls)), "UNKNOWN")
    message = _TRAILERS.sub("", message).strip()
    return MeshgateError(code, message)


@contextmanager
def server_errors() -> Iterator[None]:
    """Re-raises pyarrow.flight errors raised inside the block as :class:`MeshgateError`."""
    try:
        yield
    except (flight.FlightError, pa.ArrowException) as exc:
        raise translate(exc) from exc
