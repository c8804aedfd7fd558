"""Chunked request bodies (no Content-Length) read under the same limits as a body with a length.

WSGI leaves a body without a Content-Length to the server. Werkzeug reads one only when the server says
it ends the stream (`wsgi.input_terminated`: gunicorn, werkzeug's server), and then stops at the route's
limit, so a chunked body over a limit came out cut at the limit and was stored; under a2wsgi (our
uvicorn workers), which does not say so, every route saw an empty body. This middleware reads such a
body first, up to one byte past the largest limit of any route, and hands it on with its length: each
route then sees it exactly as the same body sent with a Content-Length. A body past the largest limit
arrives one byte past it, which every route refuses with 413; nothing is ever cut and accepted.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

_PIECE = 1 << 20


class DechunkedBodies:
    """WSGI middleware: a chunked request body reaches the app whole, with a CONTENT_LENGTH."""

    def __init__(self, app: Any, largest_limit: int):
        self.app = app
        self.cap = largest_limit + 1

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        # A Content-Length beside "chunked" means nothing (RFC 9112, 6.3): the chunks say where it ends.
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = _read_at_most(environ["wsgi.input"], self.cap)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            del environ["HTTP_TRANSFER_ENCODING"]  # Werkzeug ignores a length beside "chunked"
        return self.app(environ, start_response)


def _read_at_most(stream: Any, cap: int) -> bytes:
    """The server's dechunked stream up to its end or `cap` bytes, whichever comes first."""
    body = bytearray()
    while len(body) < cap:
        piece = stream.read(min(_PIECE, cap - len(body)))
        if not piece:
            break
        body += piece
    return bytes(body)
