"""An egress guard for ffmpeg's HTTP(S): a loopback proxy that checks every host ffmpeg connects to.

The API checks a media source's host before recording starts, but ffmpeg then follows what the source
says: an HTTP redirect, or the segment URLs of an HLS playlist, may name any host, a private address or
the cloud metadata service included. A capture of an http(s) source therefore runs ffmpeg with
`-http_proxy` pointing here (HLS passes it on to every segment it opens). Each request is checked with
`webhooks.urlsafety` (DNS resolved now, every address public or allow-listed) and connected to the
checked address, never to the name again:

- `CONNECT host:port` (https, tunnelled through by ffmpeg's TLS): checked, then bytes are relayed;
- `GET http://host/path` (plain http): checked, sent on as `GET /path` with `Connection: close`, and
  the answer relayed until the server closes. One request per client connection, so a second request on
  a kept-alive connection cannot ride along to an unchecked host.

A refused host gets `403` (ffmpeg fails the read) and lands in `refusals`, so the capture can say why.
"""

from __future__ import annotations

import logging
import selectors
import socket
import socketserver
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit

from webhooks.urlsafety import UnsafeURL, checked_addresses

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024
CONNECT_TIMEOUT = 10.0
IDLE_TIMEOUT = (
    60.0  # a relay with no bytes either way for this long is dropped (ffmpeg's -rw_timeout is 15 s)
)
DROPPED_HEADERS = (b"connection:", b"proxy-connection:", b"proxy-authorization:", b"keep-alive:")


class EgressProxy:
    """`with EgressProxy(allowlist) as proxy:` serves on `proxy.url` until the block ends."""

    def __init__(self, allowlist: Iterable[str] = ()):
        self.allowlist = tuple(allowlist)
        self.refusals: list[str] = []
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "use EgressProxy as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> EgressProxy:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        threading.Thread(target=self._server.serve_forever, name="egress-proxy", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def refuse(self, reason: str) -> None:
        self.refusals.append(reason)
        log.warning("egress refused: %s", reason)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: EgressProxy


class _Handler(socketserver.StreamRequestHandler):
    server: _Server
    rbufsize = 0  # unbuffered: no byte after the request head may sit in a buffer the relay never reads

    def handle(self) -> None:
        head = _read_head(self.rfile)
        if head is None:
            return
        line, _, rest = head.partition(b"\r\n")
        try:
            method, target, version = line.decode("latin-1").split(" ", 2)
        except ValueError:
            return self._answer(400, "malformed request line")
        if method == "CONNECT":
            host, port = _host_port(target)
            url = f"https://{_bracketed(host)}:{port}/"
        else:
            parts = urlsplit(target)
            if parts.scheme != "http" or not parts.hostname:
                return self._answer(400, "only absolute http:// requests and CONNECT are proxied")
            host, port, url = parts.hostname, parts.port or 80, target
        proxy = self.server.proxy
        try:
            addresses = checked_addresses(url, proxy.allowlist)
        except (UnsafeURL, ValueError) as e:
            proxy.refuse(f"{host}: {e}")
            return self._answer(403, str(e))
        upstream = _connect(addresses, port)
        if upstream is None:
            return self._answer(502, f"cannot connect to {host}:{port}")
        with upstream:
            if method == "CONNECT":
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
            else:
                upstream.sendall(_origin_form(method, urlsplit(target), version, rest))
            _relay(self.connection, upstream)

    def _answer(self, status: int, message: str) -> None:
        body = message.encode()[:500]
        reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
        self.wfile.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + body
        )


def _read_head(rfile) -> bytes | None:
    """The request line and headers (without the blank line), or None when the client went away."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = rfile.readline(MAX_HEAD)
        if not line or len(head) + len(line) > MAX_HEAD:
            return None
        head += line
    return head[:-4]


def _host_port(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 443


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _origin_form(method: str, parts, version: str, rest: bytes) -> bytes:
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [h for h in rest.split(b"\r\n") if h and not h.lower().startswith(DROPPED_HEADERS)]
    return b"\r\n".join([f"{method} {path} {version}".encode("latin-1"), *headers, b"Connection: close"]) + (
        b"\r\n\r\n"
    )


def _connect(addresses, port: int) -> socket.socket | None:
    for addr in addresses:
        try:
            return socket.create_connection((str(addr), port), timeout=CONNECT_TIMEOUT)
        except OSError:
            continue
    return None


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes or both stay silent for IDLE_TIMEOUT."""
    pair = {client: upstream, upstream: client}
    with selectors.DefaultSelector() as sel:
        for sock in pair:
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ)
        while True:
            ready = sel.select(IDLE_TIMEOUT)
            if not ready:
                return
            for key, _ in ready:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return
                if not data:
                    return
                try:
                    pair[source].setblocking(True)
                    pair[source].sendall(data)
                    pair[source].setblocking(False)
                except OSError:
                    return
