"""A request body read whole under a route's own byte limit.

A chunked body (no Content-Length) reaches the app with its length already (`app.api.chunked`), so
this one check refuses an oversize body with 413 however it was sent, and never stores a cut one.
"""

from __future__ import annotations

from flask import Request

from app.errors import PayloadTooLarge


def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes; PayloadTooLarge (413) past it. Empty without a body."""
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"the body is {length} bytes; at most {limit} are taken")
    request.max_content_length = limit
    return request.get_data(cache=False)
