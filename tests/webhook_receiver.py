"""A real HTTP webhook receiver on loopback that records every request (tests and bench/webhooks.py).

It speaks HTTP/1.1 and keeps connections alive, as receivers behind common servers do; `connections`
counts the TCP connections it accepted and `max_in_flight` the most requests it was answering at once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when the request was read


@dataclass
class Receiver:
    """Answers each POST with `status_for(request)` when given, else the next status of `answers`
    (then `default`), after `delay` seconds."""

    port: int = 0
    answers: list[int] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0
    on_request: Callable[[Received], None] | None = None
    status_for: Callable[[Received], int] | None = None
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._open: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # As servers that keep connections alive do: the body written after the headers must
                # not wait for the client's delayed ACK (Nagle), 40 ms a request.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                receiver._opened(self.connection)

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    receiver._closed(self.connection)

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got = Received(dict(self.headers.items()), body, time.time())
                status = receiver._record(got)
                try:
                    if receiver.delay:
                        time.sleep(receiver.delay)
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender gave up waiting (a timeout test)
                    self.close_connection = True
                finally:
                    receiver._answered()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _opened(self, conn: socket.socket) -> None:
        with self._lock:
            self.connections += 1
            self._open.add(conn)

    def _closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.discard(conn)

    def _record(self, got: Received) -> int:
        with self._lock:
            self.requests.append(got)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.status_for is not None:
                status = self.status_for(got)
            else:
                status = self.answers.pop(0) if self.answers else self.default
        if self.on_request:
            self.on_request(got)
        return status

    def _answered(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def stop(self) -> None:
        """Stop listening and close every connection, kept-alive ones included (a stopped receiver
        answers nothing more)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.close_connections()

    def close_connections(self) -> None:
        """Close the connections open now, as a server ending idle keep-alive connections does."""
        with self._lock:
            still_open = list(self._open)
        for conn in still_open:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        """The first `count` requests, waiting up to `timeout` seconds for them."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} of {count} webhook requests within {timeout}s")
            time.sleep(0.02)
        return list(self.requests[:count])
