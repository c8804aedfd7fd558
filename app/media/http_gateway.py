"""The HTTP(S) gateway: the only way ffmpeg reaches an http(s) media source.

ffmpeg parses what the source sends, and the source decides what it opens next: an HTTP redirect, the
segment and key URIs of an HLS playlist or a DASH manifest may name any host, a private address or the
cloud metadata service included. So ffmpeg never connects to a source itself. It speaks plain HTTP to
this loopback gateway (`-http_proxy`, and `http_proxy` in its environment for any nested open that does
not inherit the option), with only `http,tcp,crypto` on its protocol whitelist: no `https`, `tls` or
`httpproxy`, so neither a playlist line (`httpproxy://10.0.0.5:6379/`) nor a redirect can make it open a
connection anywhere else.

Each request ffmpeg sends (`GET http://host/path`) is checked here with `webhooks.urlsafety` (DNS
resolved now; every address public or allow-listed) and sent to the checked address, never to the name
again. TLS is meetrec's side of the gateway: an `https://` source is handed to ffmpeg as
`http://<host>.tls.meetrec.invalid:<port>/...` (see `ffmpeg_url`), and the gateway connects to that host
over TLS, verifying its certificate for the real name. So that relative and absolute URIs keep working,
the gateway rewrites `https://` URIs in manifests (HLS playlists, DASH MPDs) and in `Location` headers
into the same form. One request per connection (`Connection: close`): a kept-alive connection cannot
carry a second request past the check. `CONNECT` is refused; ffmpeg has no use for it any more.

A refused host gets `403` (ffmpeg fails the read) and lands in `refusals`, so the capture can say why.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import re
import socket
import socketserver
import ssl
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

from app.media.loopback import LoopbackGuard, LoopbackServer
from webhooks.urlsafety import UnsafeURL, checked_addresses

log = logging.getLogger(__name__)

TLS_SUFFIX = ".tls.meetrec.invalid"  # `.invalid` never resolves (RFC 6761): only the gateway reads it
IPV6_SUFFIX = ".v6"  # an IPv6 literal, its colons written as dashes: `[2001:db8::1]` -> `2001-db8--1.v6`
MAX_HEAD = 16 * 1024
MAX_MANIFEST = 8 * 1024 * 1024  # a playlist or MPD is read whole to be rewritten; larger is not one
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0  # an upstream silent this long is dropped (ffmpeg's own -rw_timeout is shorter)
BLOCK = 64 * 1024
# Request headers ffmpeg's proxy request carries that are the gateway's business, not the source's.
_HOP_BY_HOP = {
    "connection", "proxy-connection", "proxy-authorization", "keep-alive", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "accept-encoding", "content-length",
}  # fmt: skip
_MANIFEST_TYPES = ("mpegurl", "dash+xml")
_MANIFEST_SUFFIXES = (".m3u8", ".m3u", ".mpd")
_HTTPS_AUTHORITY = re.compile(rb"https://(\[[0-9A-Fa-f:.]+\]|[^/\s\"'<>?#:\[\]]+)(?::(\d{1,5}))?", re.I)


def ffmpeg_url(url: str) -> str:
    """The URL ffmpeg is given for source `url`: `https://` becomes the gateway's marked `http://` form."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        return url
    userinfo = parts.netloc.rpartition("@")[0]
    authority = _marked_authority(parts.hostname or "", parts.port or 443)
    rest = url[len(parts.scheme) + 3 + len(parts.netloc) :]
    return f"http://{userinfo + '@' if userinfo else ''}{authority}{rest}"


def _marked_authority(host: str, port: int) -> str:
    if ":" in host:  # IPv6 literal
        host = host.replace(":", "-") + IPV6_SUFFIX
    return f"{host}{TLS_SUFFIX}:{port}"


def _unmarked(host: str) -> str | None:
    """The real host of a marked (TLS) host name, or None when `host` is not marked."""
    if not host.endswith(TLS_SUFFIX):
        return None
    host = host[: -len(TLS_SUFFIX)]
    if host.endswith(IPV6_SUFFIX):
        host = host[: -len(IPV6_SUFFIX)].replace("-", ":")
        ipaddress.IPv6Address(host)  # ValueError: not a literal after all
    return host


def rewrite_https(text: bytes) -> bytes:
    """Every absolute `https://` URI in a manifest or header, in the gateway's marked `http://` form."""

    def marked(match: re.Match[bytes]) -> bytes:
        host = match.group(1).decode("latin-1").strip("[]").lower()
        port = int(match.group(2)) if match.group(2) else 443
        return f"http://{_marked_authority(host, port)}".encode("latin-1")

    return _HTTPS_AUTHORITY.sub(marked, text)


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """Certificates verified against the system's CAs, plus `ca_file`'s (MEETREC_SOURCE_CA_FILE)."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(ca_file)
    return context


class HttpGateway(LoopbackGuard):
    """`with HttpGateway(allowlist) as gateway:` serves on `gateway.url` until the block ends."""

    def __init__(self, allowlist: Iterable[str] = (), ca_file: str = ""):
        super().__init__()
        self.allowlist = tuple(allowlist)
        self.context = tls_context(ca_file)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class _Handler(socketserver.StreamRequestHandler):
    server: LoopbackServer

    def handle(self) -> None:
        head = _read_head(self.rfile)
        if head is None:
            return
        line, *header_lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = line.split(" ", 2)
        except ValueError:
            return self._answer(400, "malformed request line")
        if method not in ("GET", "HEAD"):
            return self._answer(405, f"{method} is not relayed: sources are read with GET")
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            return self._answer(400, "only absolute http:// requests are relayed")
        try:
            upstream_url, tls_host = _upstream(parts)
        except ValueError as e:
            return self._answer(400, str(e))
        gateway = self.server.guard
        assert isinstance(gateway, HttpGateway)
        try:
            addresses = checked_addresses(upstream_url, gateway.allowlist)
        except UnsafeURL as e:
            if e.unresolvable:  # not a refusal: DNS may answer again on the next attempt
                return self._answer(502, str(e))
            gateway.refuse(f"{urlsplit(upstream_url).hostname}: {e}")
            return self._answer(403, str(e))
        upstream = urlsplit(upstream_url)
        try:
            conn = _open(addresses, upstream, tls_host, gateway.context)
        except (OSError, ssl.SSLError) as e:
            return self._answer(502, f"cannot connect to {upstream.hostname}: {e}")
        try:
            self._forward(conn, method, upstream, header_lines)
        except (OSError, http.client.HTTPException) as e:
            log.info("egress: %s %s ended: %s", method, upstream_url, e)
        finally:
            conn.close()

    def _forward(
        self, conn: http.client.HTTPConnection, method: str, upstream: SplitResult, header_lines: list[str]
    ) -> None:
        path = (upstream.path or "/") + (f"?{upstream.query}" if upstream.query else "")
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        default_port = 443 if isinstance(conn.sock, ssl.SSLSocket) else 80
        host = _bracketed(upstream.hostname or "")
        conn.putheader("Host", host if upstream.port in (None, default_port) else f"{host}:{upstream.port}")
        for header in header_lines:
            name, _, value = header.partition(":")
            if name and name.strip().lower() not in _HOP_BY_HOP:
                conn.putheader(name.strip(), value.strip())
        conn.putheader("Accept-Encoding", "identity")  # manifests are rewritten: no compressed bodies
        conn.putheader("Connection", "close")
        conn.endheaders()
        response = conn.getresponse()
        headers = [
            (
                name,
                rewrite_https(value.encode("latin-1")).decode("latin-1")
                if name.lower() == "location"
                else value,
            )
            for name, value in response.getheaders()
            if name.lower() not in _HOP_BY_HOP
        ]
        body = b"" if method == "HEAD" else response.read(BLOCK)
        if body and _is_manifest(response, upstream.path, body):
            body = rewrite_https(body + response.read(MAX_MANIFEST))
            length: int | None = len(body)
        else:
            length = response.length + len(body) if response.length is not None else None
            if method == "HEAD":
                length = None
        head = [f"HTTP/1.1 {response.status} {response.reason}"]
        head += [f"{name}: {value}" for name, value in headers]
        if length is not None:
            head.append(f"Content-Length: {length}")
        head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        while method != "HEAD" and (block := response.read(BLOCK)):
            self.wfile.write(block)

    def _answer(self, status: int, message: str) -> None:
        body = message.encode()[:500]
        reason = {400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed", 502: "Bad Gateway"}[status]
        self.wfile.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + body
        )


def _upstream(parts: SplitResult) -> tuple[str, str | None]:
    """The real URL a request ffmpeg sent is for, and the host to verify TLS against (None: plain http)."""
    host = (parts.hostname or "").lower()
    real = _unmarked(host)
    port = parts.port  # ValueError: out of range
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    if real is None:
        return f"http://{_bracketed(host)}:{port or 80}{path}{query}", None
    return f"https://{_bracketed(real)}:{port or 443}{path}{query}", real


def _open(
    addresses: list, upstream: SplitResult, tls_host: str | None, context: ssl.SSLContext
) -> http.client.HTTPConnection:
    """An HTTP connection to the first checked address that answers (TLS verified for `tls_host`)."""
    port = upstream.port or (443 if tls_host else 80)
    error: Exception = OSError(f"{upstream.hostname} has no address")
    for addr in addresses:
        try:
            sock = socket.create_connection((str(addr), port), timeout=CONNECT_TIMEOUT)
        except OSError as e:
            error = e
            continue
        sock.settimeout(READ_TIMEOUT)
        conn = http.client.HTTPConnection(upstream.hostname or "", port, timeout=READ_TIMEOUT)
        try:
            conn.sock = context.wrap_socket(sock, server_hostname=tls_host) if tls_host else sock
        except (OSError, ssl.SSLError):
            sock.close()
            raise
        return conn
    raise error


def _is_manifest(response: http.client.HTTPResponse, path: str, first: bytes) -> bool:
    kind = (response.getheader("Content-Type") or "").lower()
    if any(t in kind for t in _MANIFEST_TYPES) or path.lower().endswith(_MANIFEST_SUFFIXES):
        return True
    start = first.lstrip()[:64]
    return start.startswith(b"#EXTM3U") or (start.startswith(b"<?xml") and b"<MPD" in first[:4096])


def _read_head(rfile) -> bytes | None:
    """The request line and headers (without the blank line), or None when the client went away."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = rfile.readline(MAX_HEAD)
        if not line or len(head) + len(line) > MAX_HEAD:
            return None
        head += line
    return head[:-4]


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


HttpGateway.handler = _Handler
