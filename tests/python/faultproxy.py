"""A loopback TCP proxy that misbehaves on request, for fault-injection tests.

It sits between meshgate and an object store (moto on loopback): meshgate's store
endpoint is the proxy's, and the test switches what the proxy does while queries run:

- `pass_through()`: bytes flow both ways unchanged (the start mode),
- `delay(ms)`: every chunk the store sends waits `ms` milliseconds first (a slow store),
- `stall()`: nothing the store sends is passed on; connections stay open (a hung store),
- `reset_after(n)`: each connection is reset (TCP RST) once `n` more bytes of the
  store's answers have gone through it (answers cut off mid-body),
- `refuse()`: open connections are reset and new ones reset as soon as they are
  accepted (a store that died),
- `http_500()`: every request is answered `500 Internal Server Error` with an S3 error
  body, without reaching the store; open connections are closed.

`upstream_port` can be changed at run time (a store restarted elsewhere). Each
connection is served by one thread that polls both sockets, so a mode switch applies
to open connections within a few milliseconds.

>>> with FaultProxy(moto_port) as proxy:
...     endpoint = proxy.endpoint          # http://127.0.0.1:PORT, for the mesh's store
...     proxy.reset_after(100_000)
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass

CHUNK = 64 * 1024
POLL = 0.02  # seconds a connection thread waits before looking at the mode again
S3_500_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)


@dataclass(frozen=True)
class Mode:
    kind: str  # pass | delay | stall | reset | refuse | http500
    value: float = 0  # delay: milliseconds per chunk; reset: bytes let through
    generation: int = 0  # changes on every switch: per-connection budgets start again


class FaultProxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self._mode = Mode("pass")
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL)
        self.port = self._listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._stopping = threading.Event()
        self._connections: set[_Connection] = set()
        self._accepter = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)
        # what went through, for the tests' own checks
        self.accepted = 0
        self.bytes_down = 0  # store -> meshgate
        self.resets = 0
        self.answered_500 = 0

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        self._accepter.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._accepter.join(5)
        self._listener.close()
        for conn in self._open():
            conn.thread.join(5)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- modes ------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    def _switch(self, kind: str, value: float = 0) -> None:
        with self._lock:
            self._mode = Mode(kind, value, self._mode.generation + 1)

    def pass_through(self) -> None:
        self._switch("pass")

    def delay(self, ms: float) -> None:
        self._switch("delay", ms)

    def stall(self) -> None:
        self._switch("stall")

    def reset_after(self, nbytes: int) -> None:
        self._switch("reset", nbytes)

    def refuse(self) -> None:
        self._switch("refuse")
        for conn in self._open():
            conn.doom(reset=True)

    def http_500(self) -> None:
        self._switch("http500")
        for conn in self._open():  # pooled connections would still reach the store
            conn.doom(reset=False)

    def close_connections(self, *, reset: bool) -> None:
        """Ends every open connection: with a TCP RST (as when a process dies) or a FIN."""
        for conn in self._open():
            conn.doom(reset=reset)

    def open_connections(self) -> int:
        return len(self._open())

    def _open(self) -> list["_Connection"]:
        with self._lock:
            return list(self._connections)

    # -- serving ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            conn = _Connection(self, client)
            with self._lock:
                self._connections.add(conn)
            conn.thread.start()

    def _forget(self, conn: "_Connection") -> None:
        with self._lock:
            self._connections.discard(conn)


def _abort(sock: socket.socket | None) -> None:
    """Closes `sock` with a TCP RST instead of a FIN."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class _Connection:
    """One client connection and its upstream; served by one thread."""

    def __init__(self, proxy: FaultProxy, client: socket.socket):
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self._doomed: bool | None = None  # None: live; True: reset; False: close
        self.thread = threading.Thread(target=self._run, name="faultproxy-conn", daemon=True)

    def doom(self, *, reset: bool) -> None:
        if self._doomed is None:
            self._doomed = reset

    def _run(self) -> None:
        try:
            self._serve()
        except OSError:
            self._end(reset=True)
        finally:
            self.proxy._forget(self)

    def _end(self, *, reset: bool) -> None:
        if reset:
            self.proxy.resets += 1
        for sock in (self.client, self.upstream):
            (_abort if reset else _close)(sock)

    def _should_end(self) -> bool:
        if self.proxy._stopping.is_set():
            self._end(reset=True)
            return True
        if self._doomed is not None:
            self._end(reset=self._doomed)
            return True
        return False

    def _serve(self) -> None:
        mode = self.proxy.mode
        if mode.kind == "refuse":
            self._end(reset=True)
            return
        if mode.kind == "http500":
            self._answer_500()
            return
        try:
            self.upstream = socket.create_connection(("127.0.0.1", self.proxy.upstream_port), timeout=5)
        except OSError:  # the store is down: so is its proxy
            self._end(reset=True)
            return
        for sock in (self.client, self.upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sel = selectors.DefaultSelector()
        sel.register(self.client, selectors.EVENT_READ, "up")  # bytes to send up
        sel.register(self.upstream, selectors.EVENT_READ, "down")
        generation, budget = -1, 0.0
        try:
            while True:
                if self._should_end():
                    return
                mode = self.proxy.mode
                if mode.kind in ("refuse", "http500"):  # switched while open
                    self._end(reset=mode.kind == "refuse")
                    return
                if mode.generation != generation:
                    generation, budget = mode.generation, mode.value
                if mode.kind == "stall":
                    time.sleep(POLL)
                    continue
                for key, _ in sel.select(POLL):
                    source = key.fileobj
                    try:
                        data = source.recv(CHUNK)
                    except BlockingIOError:
                        continue
                    if not data:  # one side closed: close both (HTTP/1.1 needs no half-close)
                        self._end(reset=False)
                        return
                    if key.data == "up":
                        if not self._send(self.upstream, data):
                            return
                        continue
                    if mode.kind == "delay":
                        time.sleep(mode.value / 1000.0)
                    if mode.kind == "reset":
                        if len(data) > budget:
                            self._send(self.client, data[: int(budget)])
                            self.proxy.bytes_down += int(budget)
                            self._end(reset=True)
                            return
                        budget -= len(data)
                    if not self._send(self.client, data):
                        return
                    self.proxy.bytes_down += len(data)
        finally:
            sel.close()

    def _send(self, sock: socket.socket, data: bytes) -> bool:
        """Sends all of `data`, waiting for room; False when the connection ended meanwhile."""
        view = memoryview(data)
        while view:
            if self._should_end():
                return False
            try:
                sent = sock.send(view)
            except BlockingIOError:
                sel = selectors.DefaultSelector()
                sel.register(sock, selectors.EVENT_WRITE)
                sel.select(POLL)
                sel.close()
                continue
            view = view[sent:]
        return True

    def _answer_500(self) -> None:
        """Reads one request (head and Content-Length body) and answers 500, then closes."""
        self.client.settimeout(5)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                data = self.client.recv(CHUNK)
                if not data:
                    self._end(reset=False)
                    return
                head += data
            top, _, body = head.partition(b"\r\n\r\n")
            length = 0
            for line in top.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            while len(body) < length:
                data = self.client.recv(CHUNK)
                if not data:
                    break
                body += data
            self.client.sendall(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
                + f"Content-Length: {len(S3_500_BODY)}\r\n".encode()
                + b"Connection: close\r\n\r\n" + S3_500_BODY
            )
            self.proxy.answered_500 += 1
        except OSError:
            pass
        self._end(reset=False)
