"""Connecting to meshgate: :func:`connect` and :class:`Client`."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import pyarrow.flight as flight

from . import _wire
from .errors import MeshgateError, server_errors

if TYPE_CHECKING:
    from .training import TrainingSet

__all__ = ["Client", "connect"]

Pem = str | bytes | os.PathLike[str]
T = TypeVar("T")
# A pickled client gets a fresh token when its login is older than this (DataLoader
# workers are handed the client each epoch, and tokens expire).
_REFRESH_AFTER_SECS = 60.0

# The process that opened a Flight (gRPC) connection. gRPC does not survive fork: a
# process forked from it hangs on its first call, so that is refused with a clear error.
_GRPC_PID: int | None = None
Headers = Mapping[str, str] | Sequence[tuple[str, str]]


def _pem(value: Pem | None) -> bytes | None:
    """PEM text as bytes; a path (``Path`` or any ``os.PathLike``) is read."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        return Path(value).read_bytes()
    return value.encode("ascii") if isinstance(value, str) else bytes(value)


def _header_pairs(headers: Headers | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items: Iterable[tuple[str, str]] = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(k).lower(), str(v)) for k, v in items]


def connect(
    uri: str,
    *,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    tls_root_certs: Pem | None = None,
    cert_chain: Pem | None = None,
    private_key: Pem | None = None,
    headers: Headers | None = None,
) -> Client:
    """Connect to a meshgate server.

    Args:
        uri: ``grpc://host:port``, or ``grpc+tls://host:port`` for TLS.
        username, password: Basic credentials, exchanged once (Flight handshake) for the
            bearer token the server answers with; that token authenticates every call.
        token: a bearer token to send as is (a meshgate token or a JWT).
        tls_root_certs: PEM of the CA that signed the server's certificate (text, bytes
            or a path); default: the system's roots.
        cert_chain, private_key: the client certificate and key for mutual TLS.
        headers: extra call headers for every call (e.g. ``x-meshgate-time-zone``).

    Returns:
        A :class:`Client`. It can be pickled (e.g. into DataLoader worker processes): the
        pickle carries the URI, TLS material, headers and the bearer token, never a
        password. With username and password, an expired token is renewed by logging in
        again (in the process that connected), and a client older than a minute logs in
        again before it is pickled, so workers start with a fresh token.

    Raises:
        MeshgateError: ``UNAUTHENTICATED`` when the credentials are refused,
            ``UNAVAILABLE`` when the server cannot be reached.
    """
    if token is not None and (username is not None or password is not None):
        raise ValueError("give either username/password or token, not both")
    if (username is None) != (password is None):
        raise ValueError("username and password go together")
    client = Client(
        uri,
        token=token,
        tls_root_certs=_pem(tls_root_certs),
        cert_chain=_pem(cert_chain),
        private_key=_pem(private_key),
        headers=_header_pairs(headers),
    )
    if username is not None and password is not None:
        client._login(username, password)
    return client


class Client:
    """A connection to one meshgate server (use :func:`connect` to make one).

    The underlying Flight client is opened lazily and again in every process that uses
    the object, so one ``Client`` can be handed to forked or spawned workers.
    """

    def __init__(
        self,
        uri: str,
        *,
        token: str | None = None,
        tls_root_certs: bytes | None = None,
        cert_chain: bytes | None = None,
        private_key: bytes | None = None,
        headers: list[tuple[str, str]] | None = None,
    ):
        if not uri.startswith(("grpc://", "grpc+tcp://", "grpc+tls://")):
            raise ValueError(f"meshgate URIs start with grpc:// or grpc+tls://, not {uri!r}")
        self.uri = uri
        self._authorization: str | None = f"Bearer {token}" if token is not None else None
        self._basic_only = False
        self._credentials: tuple[str, str] | None = None  # kept in memory, never pickled
        self._login_at = 0.0
        self._tls_root_certs = tls_root_certs
        self._cert_chain = cert_chain
        self._private_key = private_key
        self._headers = list(headers or [])
        self._flight_client: flight.FlightClient | None = None
        self._pid = -1
        # Shards read ahead on threads share this client: one connection is opened, and
        # an expired token is renewed once.
        self._lock = threading.Lock()

    # -- the Flight connection ----------------------------------------------------------

    def _flight(self) -> flight.FlightClient:
        client = self._flight_client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            return self._open()

    def _open(self) -> flight.FlightClient:
        global _GRPC_PID
        if self._flight_client is None or self._pid != os.getpid():
            if _GRPC_PID is not None and _GRPC_PID != os.getpid():
                raise MeshgateError(
                    "FAILED_PRECONDITION",
                    "this process was forked from one that had opened a connection to meshgate, and gRPC "
                    "connections do not survive fork: start DataLoader workers with "
                    "multiprocessing_context='forkserver' (or 'spawn'), as TorchDataset.loader() does",
                )
            kwargs: dict[str, Any] = {}
            if self._tls_root_certs is not None:
                kwargs["tls_root_certs"] = self._tls_root_certs
            if self._cert_chain is not None:
                kwargs["cert_chain"] = self._cert_chain
            if self._private_key is not None:
                kwargs["private_key"] = self._private_key
            with server_errors():
                self._flight_client = flight.FlightClient(self.uri, **kwargs)
            self._pid = os.getpid()
            _GRPC_PID = self._pid
        return self._flight_client

    def _login(self, username: str, password: str) -> None:
        with server_errors():
            pair = self._flight().authenticate_basic_token(username, password)
        self._credentials = (username, password)
        self._login_at = time.monotonic()
        name, value = (bytes(x).decode("latin-1") for x in pair) if pair else ("", "")
        if name.lower() == "authorization" and value:
            self._authorization = value
        else:  # a server that answers no token: send Basic on every call (never pickled)
            import base64

            self._authorization = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
            self._basic_only = True

    def _options(self, headers: Iterable[tuple[str, str]] = ()) -> flight.FlightCallOptions:
        pairs = list(self._headers) + list(headers)
        if self._authorization is not None:
            pairs.append(("authorization", self._authorization))
        return flight.FlightCallOptions(headers=[(k.encode(), v.encode()) for k, v in pairs])

    def _authenticated(self, call: Callable[[], T]) -> T:
        """``call()``, with server errors as MeshgateError; when the server no longer takes
        the token (it expired) and this process logged in with a password, log in again
        and call once more."""
        try:
            with server_errors():
                return call()
        except MeshgateError as exc:
            if exc.code != "UNAUTHENTICATED" or self._credentials is None or self._pid != os.getpid():
                raise
            refused = self._authorization
        with self._lock:
            if self._authorization == refused:  # not renewed meanwhile by another thread
                self._login(*self._credentials)
        with server_errors():
            return call()

    def flight_info(self, sql: str, headers: Iterable[tuple[str, str]] = ()) -> flight.FlightInfo:
        """GetFlightInfo for a SQL query (a Flight SQL ``CommandStatementQuery``), with
        extra call headers such as ``x-meshgate-shards``."""
        descriptor = flight.FlightDescriptor.for_command(_wire.statement_query(sql))
        extra = list(headers)
        return self._authenticated(lambda: self._flight().get_flight_info(descriptor, self._options(extra)))

    def read_ticket(
        self,
        ticket: bytes,
        headers: Iterable[tuple[str, str]] = (),
        *,
        started: Callable[[flight.FlightStreamReader], None] | None = None,
    ) -> pa.RecordBatchReader:
        """DoGet one ticket; server errors (also those arriving mid-stream) are raised as
        :class:`~meshgate.MeshgateError`. ``started`` is handed the Flight stream once it
        is open (its ``cancel()`` stops the stream from another thread)."""
        extra = list(headers)

        def start() -> tuple[flight.FlightStreamReader, pa.Schema]:
            reader = self._flight().do_get(flight.Ticket(ticket), self._options(extra))
            return reader, reader.schema

        reader, schema = self._authenticated(start)
        if started is not None:
            started(reader)

        def batches() -> Iterable[pa.RecordBatch]:
            with server_errors():
                while True:
                    try:
                        chunk = reader.read_chunk()
                    except StopIteration:
                        return
                    if chunk.data is not None:
                        yield chunk.data

        return pa.RecordBatchReader.from_batches(schema, batches())

    def action(self, kind: str, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
        """DoAction; the bodies of its results."""
        extra = list(headers)

        def run() -> list[bytes]:
            results = self._flight().do_action(flight.Action(kind, body), self._options(extra))
            return [r.body.to_pybytes() for r in results]

        return self._authenticated(run)

    # -- conveniences ---------------------------------------------------------------------

    def sql(self, query: str, *, purpose: str | None = None) -> pa.Table:
        """Run a query and return its whole result as a ``pyarrow.Table``.

        Args:
            query: the SQL (meshgate's dialect: DataFusion's, tables as ``domain.product``).
            purpose: what the query is for (``x-meshgate-purpose``); policies may test it.
        """
        headers = [(_wire.PURPOSE_HEADER, purpose)] if purpose is not None else []
        info = self.flight_info(query, headers)
        tables = [self.read_ticket(e.ticket.ticket, headers).read_all() for e in info.endpoints]
        if not tables:
            return info.schema.empty_table()
        return pa.concat_tables(tables)

    def principal(self) -> str:
        """The name the server knows this client by (``SELECT current_user``)."""
        value = self.sql("SELECT current_user AS name").column(0)[0].as_py()
        if not isinstance(value, str):
            raise MeshgateError("INTERNAL", f"current_user returned {value!r}")
        return value

    def snapshot(self, sql: str, headers: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
        """The server's training snapshot of a query: the products it reads with their
        files (or Delta versions) and a fingerprint of the policies that govern them."""
        body = json.dumps({"sql": sql}).encode("utf-8")
        results = self.action(_wire.SNAPSHOT_ACTION, body, headers)
        if len(results) != 1:
            raise MeshgateError("INTERNAL", f"{_wire.SNAPSHOT_ACTION} answered {len(results)} results, expected 1")
        snapshot: dict[str, Any] = json.loads(results[0].decode("utf-8"))
        return snapshot

    def training_set(self, sql: str | None = None, **kwargs: Any) -> TrainingSet:
        """A governed training set; see :class:`meshgate.TrainingSet` for the arguments."""
        from .training import TrainingSet

        return TrainingSet(self, sql, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (it reopens if the client is used again)."""
        if self._flight_client is not None and self._pid == os.getpid():
            self._flight_client.close()
        self._flight_client = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        if self._basic_only:
            raise TypeError(
                "this client authenticates with Basic credentials on every call (the server gave no "
                "token), and a password is never pickled: connect with token= to share the client"
            )
        if self._credentials is not None and time.monotonic() - self._login_at > _REFRESH_AFTER_SECS:
            self._login(*self._credentials)
        state = dict(self.__dict__)
        state["_flight_client"] = None
        state["_pid"] = -1
        state["_credentials"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"meshgate.Client({self.uri!r})"
