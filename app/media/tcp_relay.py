"""A pinned TCP relay: ffmpeg connects to loopback, the relay to the address meetrec checked.

For rtmp(s) and rtsp(s) sources ffmpeg would resolve the source's host again when it connects (DNS can
answer differently the second time: rebinding) and would follow what the server tells it. Instead,
ffmpeg is given `127.0.0.1:<relay port>` and the relay joins each connection to one of the addresses
`webhooks.urlsafety` checked, over TLS for rtmps/rtsps (verified for the real host name, so ffmpeg
itself needs no `tls`). For RTSP the relay also reads what the server sends (`RtspGuard`): a redirect
(3xx) would make ffmpeg connect to the host it names, so the relay refuses it and closes instead.
"""

from __future__ import annotations

import logging
import re
import select
import socket
import socketserver
import ssl
from collections.abc import Callable, Sequence

from app.media.loopback import LoopbackGuard, LoopbackServer

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0  # no byte either way for this long: the relay ends (ffmpeg's own timeouts are shorter)
BLOCK = 64 * 1024
MAX_HEAD = 16 * 1024
_STATUS = re.compile(rb"RTSP/\d\.\d +(\d{3})")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d{1,9})[ \t]*(?=\r\n|$)", re.I)
_LOCATION = re.compile(rb"\r\nlocation:[ \t]*([^\r\n]*)", re.I)


class Refused(Exception):
    """The server sent something the relay does not pass on (the reason is the message)."""


class RtspGuard:
    """Reads the server-to-client half of an RTSP connection, message by message.

    Interleaved frames (`$`, channel, 16-bit length, payload) and messages (a text head, then
    Content-Length bytes of body) pass unchanged; a response with a 3xx status raises `Refused`.
    `feed` returns the bytes that may go on to ffmpeg (an incomplete head waits for the rest).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._body_left = 0  # bytes of the current message's body still to pass through

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        buf = self._buffer
        while buf:
            if self._body_left:
                take = min(self._body_left, len(buf))
                out += buf[:take]
                del buf[:take]
                self._body_left -= take
                continue
            if buf[0] == 0x24:  # "$": an interleaved frame
                if len(buf) < 4:
                    break
                size = 4 + int.from_bytes(buf[2:4], "big")
                take = min(size, len(buf))
                out += buf[:take]
                del buf[:take]
                self._body_left = size - take
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise Refused("the RTSP server sent a message head longer than 16 KiB")
                break
            head = bytes(buf[: end + 4])
            status = _STATUS.match(head)
            if status and 300 <= int(status.group(1)) < 400:
                location = _LOCATION.search(head)
                target = location.group(1).decode("latin-1", "replace")[:200] if location else "elsewhere"
                raise Refused(f"the RTSP server redirected to {target}; redirects are not followed")
            length = _CONTENT_LENGTH.search(head[: end + 2])
            out += head
            del buf[: end + 4]
            self._body_left = int(length.group(1)) if length else 0
        return bytes(out)


class PinnedRelay(LoopbackGuard):
    """`with PinnedRelay(addresses, port) as relay:` joins connections to `127.0.0.1:relay.port` to
    `addresses` (the first that answers) on `port`.

    `tls_host`: speak TLS to the source, verifying its certificate for this name with `context`.
    `guard`: a new guard per connection (`RtspGuard`) reading what the source sends. Every refusal is
    kept in `refusals`.
    """

    def __init__(
        self,
        addresses: Sequence[object],
        port: int,
        *,
        tls_host: str | None = None,
        context: ssl.SSLContext | None = None,
        guard: Callable[[], RtspGuard] | None = None,
    ) -> None:
        super().__init__()
        self.addresses = [str(a) for a in addresses]
        self.target_port = port
        self.tls_host = tls_host
        self.context = context or ssl.create_default_context()
        self.guard = guard

    def connect(self) -> socket.socket:
        """A connection to the source's first checked address that answers; OSError when none does."""
        error: OSError = OSError("the source has no address")
        for addr in self.addresses:
            try:
                sock = socket.create_connection((addr, self.target_port), timeout=CONNECT_TIMEOUT)
            except OSError as e:
                error = e
                continue
            sock.settimeout(IDLE_TIMEOUT)
            if self.tls_host is None:
                return sock
            try:
                return self.context.wrap_socket(sock, server_hostname=self.tls_host)
            except (OSError, ssl.SSLError):
                sock.close()
                raise
        raise error


class _Handler(socketserver.BaseRequestHandler):
    server: LoopbackServer

    def handle(self) -> None:
        relay = self.server.guard
        assert isinstance(relay, PinnedRelay)
        client: socket.socket = self.request
        try:
            upstream = relay.connect()
        except (OSError, ssl.SSLError) as e:
            log.info("egress: cannot connect to the source: %s", e)
            return
        client.settimeout(IDLE_TIMEOUT)
        guard = relay.guard() if relay.guard else None
        with upstream:
            try:
                _pump(client, upstream, guard)
            except Refused as e:
                relay.refuse(str(e))


def _pump(client: socket.socket, upstream: socket.socket, guard: RtspGuard | None) -> None:
    """Copy bytes both ways (what the source sends through `guard`) until a side closes or goes idle."""
    sockets: list[socket.socket] = [client, upstream]
    while True:
        # TLS may hold decrypted bytes select() cannot see: read those first.
        ready: list[socket.socket] = [s for s in sockets if isinstance(s, ssl.SSLSocket) and s.pending()]
        if not ready:
            ready, _, _ = select.select(sockets, [], [], IDLE_TIMEOUT)
            if not ready:
                return
        for source in ready:
            try:
                data = source.recv(BLOCK)
            except ssl.SSLWantReadError:
                continue
            except OSError:
                return
            if not data:
                return
            if source is upstream:
                target, data = client, guard.feed(data) if guard else data
            else:
                target = upstream
            try:
                target.sendall(data)
            except OSError:
                return


PinnedRelay.handler = _Handler
