"""A fault-injecting HTTP proxy for tests: put it in front of the S3 server and switch what it does.

Loopback only. Every request is read whole and, by the mode in force when it arrives, forwarded to the
upstream server (`pass_through`, `delay`) or answered by the proxy itself: `refuse` closes the connection
without a word, `error` answers an S3 XML error (503 SlowDown, 500 InternalError...), `hang` reads the
request and never answers (until the mode changes or the proxy closes, then it drops the connection).
A mode may be limited to requests a predicate picks (`only=lambda method, path: method == "PUT"`) and to
a number of them (`times=1`: the next matching request only, then pass-through again).

    with FaultProxy(config.s3_endpoint) as proxy:
        store = ObjectStore(replace(config, s3_endpoint=proxy.endpoint))
        proxy.error(503)
        ...
        proxy.pass_through()
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Match = Callable[[str, str], bool]  # (method, path) -> does the fault apply to this request?

S3_CODES = {500: "InternalError", 502: "BadGateway", 503: "SlowDown", 504: "GatewayTimeout"}
_NO_BODY = {204, 304}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


@dataclass
class _Mode:
    name: str = "pass"
    status: int = 503
    seconds: float = 0.0  # `delay`: before forwarding; `error`: the Retry-After it sends (0: none)
    only: Match | None = None
    times: int | None = None  # None: every matching request
    released: threading.Event = field(default_factory=threading.Event)  # set when a new mode replaces it


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 in front of `upstream` (an http:// URL)."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the proxy forwards to an http:// upstream, got {upstream!r}")
        self.upstream = (parts.hostname, parts.port or 80)
        self._lock = threading.Lock()
        self._mode = _Mode()
        self.faulted: list[tuple[str, str, str]] = []  # (mode, method, path) of every request it faulted
        self.forwarded: list[tuple[str, str]] = []  # (method, path) of every request it passed on
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._set(_Mode())
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The modes. Each replaces the one before; hung requests of the old mode are dropped.

    def pass_through(self) -> None:
        self._set(_Mode())

    def refuse(self, only: Match | None = None, times: int | None = None) -> None:
        self._set(_Mode("refuse", only=only, times=times))

    def error(
        self, status: int = 503, only: Match | None = None, times: int | None = None, retry_after: int = 0
    ) -> None:
        self._set(_Mode("error", status=status, seconds=retry_after, only=only, times=times))

    def hang(self, only: Match | None = None, times: int | None = None) -> None:
        self._set(_Mode("hang", only=only, times=times))

    def delay(self, seconds: float, only: Match | None = None, times: int | None = None) -> None:
        self._set(_Mode("delay", seconds=seconds, only=only, times=times))

    def _set(self, mode: _Mode) -> None:
        with self._lock:
            old, self._mode = self._mode, mode
        old.released.set()

    def _take(self, method: str, path: str) -> _Mode:
        """The mode that applies to this request (counting it against `times`); pass-through if none."""
        with self._lock:
            mode = self._mode
            if mode.name == "pass" or (mode.only is not None and not mode.only(method, path)):
                self.forwarded.append((method, path))
                return _Mode()
            if mode.times is not None:
                mode.times -= 1
                if mode.times <= 0:
                    self._mode = _Mode()
            if mode.name == "delay":
                self.forwarded.append((method, path))
            else:
                self.faulted.append((mode.name, method, path))
            return mode


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients expect
        upstream: http.client.HTTPConnection | None = None

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except (ConnectionError, TimeoutError):
                self.close_connection = True

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            mode = proxy._take(self.command, self.path)
            if mode.name == "refuse":
                self.close_connection = True
            elif mode.name == "hang":
                mode.released.wait()
                self.close_connection = True
            elif mode.name == "error":
                self._answer_error(mode.status, int(mode.seconds))
            else:
                time.sleep(mode.seconds)
                self._forward(body)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _serve

        def _answer_error(self, status: int, retry_after: int) -> None:
            code = S3_CODES.get(status, "InternalError")
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
                f"{code}</Code><Message>injected by the test's fault proxy</Message>"
                f"<Resource>{self.path.split('?')[0]}</Resource><RequestId>faultproxy</RequestId></Error>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(xml)))
            if retry_after:
                self.send_header("Retry-After", str(retry_after))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(xml)

        def _forward(self, body: bytes) -> None:
            try:
                response, data = self._exchange(body)
            except (OSError, http.client.HTTPException):
                self.close_connection = True  # the upstream is down: so is this connection
                return
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP and not (
                    name.lower() == "content-length" and self.command != "HEAD"
                ):
                    self.send_header(name, value)
            if self.command != "HEAD" and response.status not in _NO_BODY:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _exchange(self, body: bytes) -> tuple[http.client.HTTPResponse, bytes]:
            for attempt in (1, 2):  # a kept-alive upstream connection may have been closed meanwhile
                if self.upstream is None:
                    self.upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    self.upstream.putrequest(
                        self.command, self.path, skip_host=True, skip_accept_encoding=True
                    )
                    for name, value in self.headers.items():  # Host included: it is signed
                        if name.lower() not in _HOP_BY_HOP:
                            self.upstream.putheader(name, value)
                    self.upstream.endheaders(body if body or self.command in ("PUT", "POST") else None)
                    response = self.upstream.getresponse()
                    return response, response.read()
                except (OSError, http.client.HTTPException):
                    self.upstream.close()
                    self.upstream = None
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

        def finish(self) -> None:
            super().finish()
            if self.upstream is not None:
                self.upstream.close()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's signature
            pass

    return Handler
