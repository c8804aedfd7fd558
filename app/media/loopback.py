"""A guard ffmpeg talks to instead of a source: a threaded TCP server on 127.0.0.1 that notes what it refused.

`app.media.http_gateway.HttpGateway` and `app.media.tcp_relay.PinnedRelay` are such guards; a handler
reaches its guard as `self.server.guard`.
"""

from __future__ import annotations

import logging
import socketserver
import threading
from typing import Self

log = logging.getLogger(__name__)


class LoopbackServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    guard: LoopbackGuard


class LoopbackGuard:
    """`with Guard(...) as guard:` serves `handler` on 127.0.0.1:`guard.port` until the block ends."""

    handler: type[socketserver.BaseRequestHandler]

    def __init__(self) -> None:
        self.refusals: list[str] = []
        self._server: LoopbackServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, f"use {type(self).__name__} as a context manager"
        return int(self._server.server_address[1])

    def __enter__(self) -> Self:
        self._server = LoopbackServer(("127.0.0.1", 0), self.handler)
        self._server.guard = self
        name = type(self).__name__
        threading.Thread(target=self._server.serve_forever, name=name, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def refuse(self, reason: str) -> None:
        """Note that something the source asked for was refused (the capture says why it failed)."""
        self.refusals.append(reason)
        log.warning("egress refused: %s", reason)
