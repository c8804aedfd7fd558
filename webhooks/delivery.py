"""One delivery attempt: an HTTP POST, bounded in time, to an address checked just before connecting.

The host is resolved and checked against the SSRF guard at every attempt (DNS may have changed since
registration) and the connection goes to a checked address, not to the name again, so a rebinding DNS
server cannot swap in a private address between check and connect. Redirects are never followed (a 3xx
is a failed attempt), so a public receiver cannot bounce us onto a private one. The whole attempt,
connect to last byte read, ends after `timeout` seconds; only the first bytes of the answer are read.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from webhooks.policy import is_success
from webhooks.urlsafety import UnsafeURL, checked_addresses

EXCERPT_BYTES = 1024
USER_AGENT = "meetrec-webhooks/1"


@dataclass(frozen=True)
class Result:
    """What one attempt did: the status (None when no answer came), time taken, error, answer excerpt."""

    status: int | None
    duration_ms: int
    error: str | None = None
    excerpt: str = ""

    @property
    def ok(self) -> bool:
        return is_success(self.status) and self.error is None


class _Pinned:
    """Connects to one checked address while speaking HTTP (Host, TLS SNI and certificate) to the name."""

    def pin(self, address: str) -> None:
        def create_connection(addr, timeout=None, source_address=None):
            return socket.create_connection((address, addr[1]), timeout, source_address)

        self._create_connection = create_connection


class _PinnedHTTP(_Pinned, http.client.HTTPConnection):
    pass


class _PinnedHTTPS(_Pinned, http.client.HTTPSConnection):
    pass


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    allowlist: Iterable[str] = (),
) -> Result:
    """POST `body` to `url`; never raises for anything the receiver or the network does."""
    began = time.monotonic()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return Result(None, 0, f"unsupported scheme {parts.scheme!r}")
    try:
        addresses = checked_addresses(url, allowlist)
    except UnsafeURL as e:
        return Result(None, _ms(began), f"refused: {e}")
    deadline = began + timeout
    last_error = "no address to connect to"
    for address in addresses:  # like socket.create_connection: the next address when one refuses
        if time.monotonic() >= deadline:
            break
        result = _attempt(parts, address, body, headers, began, deadline)
        if not (result.error or "").startswith("connect:"):
            return result
        last_error = result.error or last_error
    return Result(None, _ms(began), last_error)


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _attempt(
    parts: SplitResult,
    address: Address,
    body: bytes,
    headers: Mapping[str, str],
    began: float,
    deadline: float,
) -> Result:
    remaining = deadline - time.monotonic()
    cls = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    conn = cls(parts.hostname or "", parts.port, timeout=remaining)
    conn.pin(str(address))
    # Socket timeouts bound each read; the watchdog bounds the whole attempt (a receiver dripping
    # one byte at a time must not hold a worker past the timeout).
    fired = threading.Event()
    watchdog = threading.Timer(remaining, _abort, (conn, fired))
    try:
        try:
            conn.connect()
        except OSError as e:
            return Result(None, _ms(began), f"connect: {_describe(e, address)}")
        watchdog.start()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=body, headers=_headers(headers, len(body)))
        resp = conn.getresponse()
        excerpt = resp.read(EXCERPT_BYTES).decode("utf-8", "replace")
        status, error = resp.status, _status_error(resp)
    except (OSError, http.client.HTTPException, ValueError) as e:
        status, excerpt, error = None, "", _describe(e, address)
    finally:
        watchdog.cancel()
        conn.close()
    if fired.is_set() or time.monotonic() >= deadline:  # whatever was read, the answer came too late
        return Result(None, _ms(began), f"timed out after {deadline - began:.0f} s")
    return Result(status, _ms(began), error, excerpt)


def _headers(headers: Mapping[str, str], length: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **headers,
        "Content-Length": str(length),
        "Connection": "close",
    }


def _status_error(resp: http.client.HTTPResponse) -> str | None:
    if is_success(resp.status):
        return None
    if 300 <= resp.status < 400:
        return f"HTTP {resp.status}: redirect to {resp.getheader('Location', '?')} not followed"
    return f"HTTP {resp.status}"


def _abort(conn: http.client.HTTPConnection, fired: threading.Event) -> None:
    fired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _describe(e: BaseException, address: Address) -> str:
    if isinstance(e, TimeoutError | socket.timeout):
        return f"timed out ({address})"
    if isinstance(e, ConnectionRefusedError):
        return f"connection refused by {address}"
    return f"{type(e).__name__}: {e}"[:500]


def _ms(began: float) -> int:
    return round((time.monotonic() - began) * 1000)
