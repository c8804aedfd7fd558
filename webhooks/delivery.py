"""One delivery attempt: an HTTP POST, bounded in time, to an address checked just before connecting.

The host is resolved and checked against the SSRF guard at every attempt (DNS may have changed since
registration) and the connection goes to a checked address, not to the name again, so a rebinding DNS
server cannot swap in a private address between check and connect. Redirects are never followed (a 3xx
is a failed attempt), so a public receiver cannot bounce us onto a private one. The whole attempt,
connect to last byte read, ends after `timeout` seconds; only the first bytes of the answer are read.

`post` opens a connection per attempt; a `Sender` keeps them alive between attempts (see
`webhooks.connections`), still checking the host at every attempt and reusing only a connection pinned
to one of the addresses that check just returned.
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

from webhooks.connections import WATCHDOG, Connection, Pool, Receiver, new_connection
from webhooks.policy import is_success
from webhooks.urlsafety import UnsafeURL, checked_addresses

EXCERPT_BYTES = 1024
# An answer longer than the excerpt is read this much further so its connection can serve again; a
# longer one closes it.
DRAIN_BYTES = 16 * 1024
USER_AGENT = "meetrec-webhooks/1"
# What a reused connection raises when its receiver closed it while it sat idle (nothing was answered).
_STALE = (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


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


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    allowlist: Iterable[str] = (),
) -> Result:
    """POST `body` to `url` on a connection of its own; never raises for anything the receiver or the
    network does."""
    return _post(url, body, headers, timeout, allowlist, None)


class Sender:
    """POSTs like `post`, over keep-alive connections reused per receiver (scheme, host, port).

    Thread-safe: each attempt has a connection to itself. At most `max_idle` idle connections are kept
    per receiver, each for at most `idle_seconds` (receivers close idle connections: Node after 5 s).
    """

    def __init__(self, *, max_idle: int = 8, idle_seconds: float = 4.0) -> None:
        self.pool = Pool(max_idle=max_idle, idle_seconds=idle_seconds)

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        timeout: float,
        allowlist: Iterable[str] = (),
    ) -> Result:
        return _post(url, body, headers, timeout, allowlist, self.pool)

    def close(self) -> None:
        """Close every idle connection."""
        self.pool.close()


def _post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    allowlist: Iterable[str],
    pool: Pool | None,
) -> Result:
    began = time.monotonic()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return Result(None, 0, f"unsupported scheme {parts.scheme!r}")
    try:
        addresses = checked_addresses(url, allowlist)
    except UnsafeURL as e:
        return Result(None, _ms(began), f"refused: {e}")
    receiver = Receiver(parts.scheme, (parts.hostname or "").lower(), parts.port)
    attempt = _Attempt(parts, receiver, body, headers, began, began + timeout, pool)
    last_error = "no address to connect to"
    for address in addresses:  # like socket.create_connection: the next address when one refuses
        if time.monotonic() >= attempt.deadline:
            break
        result = attempt.to(address)
        if not (result.error or "").startswith("connect:"):
            return result
        last_error = result.error or last_error
    return Result(None, _ms(began), last_error)


@dataclass
class _Attempt:
    parts: SplitResult
    receiver: Receiver
    body: bytes
    headers: Mapping[str, str]
    began: float
    deadline: float
    pool: Pool | None

    def to(self, address: Address) -> Result:
        """The attempt at one checked address: on an idle connection pinned to it when there is one
        (once more on a new connection when the receiver had closed that one), else on a new one."""
        if self.pool is not None:
            idle = self.pool.take(self.receiver, str(address))
            if idle is not None:
                outcome = self._exchange(idle, address)
                if outcome is not None:
                    return outcome
        conn = new_connection(self.receiver, str(address), self.deadline - time.monotonic())
        try:
            conn.connect()
        except OSError as e:
            conn.close()
            return Result(None, _ms(self.began), f"connect: {_describe(e, address)}")
        return self._exchange(conn, address, fresh=True) or Result(None, _ms(self.began), "no answer")

    def _exchange(self, conn: Connection, address: Address, fresh: bool = False) -> Result | None:
        """Send and read the answer; None when a reused connection turned out closed (send again)."""
        remaining = self.deadline - time.monotonic()
        if conn.sock is not None:
            conn.sock.settimeout(max(remaining, 0.001))
        # Socket timeouts bound each read; the watchdog bounds the whole attempt (a receiver dripping
        # one byte at a time must not hold a worker past the timeout).
        fired = threading.Event()
        armed = WATCHDOG.arm(self.deadline, conn, fired)
        reusable = False
        try:
            path = (self.parts.path or "/") + (f"?{self.parts.query}" if self.parts.query else "")
            keep_alive = self.pool is not None
            conn.request(
                "POST", path, body=self.body, headers=_headers(self.headers, len(self.body), keep_alive)
            )
            resp = conn.getresponse()
            excerpt = resp.read(EXCERPT_BYTES).decode("utf-8", "replace")
            status, error = resp.status, _status_error(resp)
            reusable = keep_alive and _drained(resp)
        except _STALE as e:
            if not fresh and not fired.is_set():
                conn.close()
                return None
            status, excerpt, error = None, "", _describe(e, address)
        except (OSError, http.client.HTTPException, ValueError) as e:
            status, excerpt, error = None, "", _describe(e, address)
        finally:
            WATCHDOG.disarm(armed)
        late = fired.is_set() or time.monotonic() >= self.deadline
        if reusable and not late and self.pool is not None:
            self.pool.give_back(self.receiver, conn)
        else:
            conn.close()
        if late:  # whatever was read, the answer came too late
            return Result(None, _ms(self.began), f"timed out after {self.deadline - self.began:.0f} s")
        return Result(status, _ms(self.began), error, excerpt)


def _drained(resp: http.client.HTTPResponse) -> bool:
    """Whether the answer was read to its end on a connection the receiver keeps open."""
    if not resp.isclosed():
        resp.read(DRAIN_BYTES)
    return resp.isclosed() and not resp.will_close


def _headers(headers: Mapping[str, str], length: int, keep_alive: bool) -> dict[str, str]:
    out = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **headers,
        "Content-Length": str(length),
    }
    if not keep_alive:
        out["Connection"] = "close"
    return out


def _status_error(resp: http.client.HTTPResponse) -> str | None:
    if is_success(resp.status):
        return None
    if 300 <= resp.status < 400:
        return f"HTTP {resp.status}: redirect to {resp.getheader('Location', '?')} not followed"
    return f"HTTP {resp.status}"


def _describe(e: BaseException, address: Address) -> str:
    if isinstance(e, TimeoutError | socket.timeout):
        return f"timed out ({address})"
    if isinstance(e, ConnectionRefusedError):
        return f"connection refused by {address}"
    return f"{type(e).__name__}: {e}"[:500]


def _ms(began: float) -> int:
    return round((time.monotonic() - began) * 1000)
