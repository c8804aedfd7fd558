"""How posthog-js sends a request body, read back into JSON.

posthog-js picks a compression from the remote config's `supportedCompression` (meetrec offers
`gzip-js` and `base64`) and sends:
- `gzip-js`: the gzip of the JSON, as `text/plain` (newer versions drop `?compression=` and let the gzip
  magic bytes speak, so those are sniffed whatever the query says);
- `base64`: `data=<base64 of the JSON>`, form-encoded (also what a `sendBeacon` falls back to);
- none: the JSON itself.
A capture body is then a list of events, `{"api_key": ..., "batch": [...]}`, or one event.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from app import payloads
from app.errors import BadPayload, UnsupportedEncoding
from app.services.interactions import posthog_capture

COMPRESSIONS = ("gzip-js", "base64")
_GZIP_MAGIC = b"\x1f\x8b"
_FORM = "application/x-www-form-urlencoded"


def decode(body: bytes, compression: str | None, content_type: str | None, limit: int) -> Any:
    """The JSON document a posthog-js request body holds (at most `limit` bytes once decompressed)."""
    compression = (compression or "").strip().lower()
    if body[:2] == _GZIP_MAGIC or compression in ("gzip-js", "gzip"):
        return payloads.parse_document(payloads.inflate(body, "gzip", limit))
    if compression not in ("", "base64"):
        raise UnsupportedEncoding(
            f"unsupported compression {compression[:40]!r}: "
            f"meetrec reads {', '.join(COMPRESSIONS)} or plain JSON"
        )
    form = (content_type or "").split(";", 1)[0].strip().lower() == _FORM or body[:5] == b"data="
    if form:
        body = _form_data(body)
    if compression == "base64" or form:
        body = _unbase64(body)
    return payloads.parse_document(payloads.inflate(body, "identity", limit))


def _form_data(body: bytes) -> bytes:
    """The `data` field of a form-encoded body."""
    try:
        fields = parse_qs(body.decode("ascii"), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise BadPayload("the form body is not valid") from None
    values = fields.get("data")
    if not values:
        raise BadPayload("a form body must carry the events in its data field")
    return values[0].encode("ascii", "replace")


def _unbase64(body: bytes) -> bytes:
    try:
        return base64.b64decode(body.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadPayload("the body is not valid base64") from None


@dataclass(frozen=True)
class Capture:
    """A capture request's events and the project token it names."""

    events: list[Any]
    token: str | None


def capture(document: Any) -> Capture:
    """The events and token of a decoded capture body."""
    if isinstance(document, list):
        events, token = document, None
    elif isinstance(document, dict) and "batch" in document:
        if not isinstance(document["batch"], list):
            raise BadPayload("batch must be an array of events")
        events, token = document["batch"], _text(document.get("api_key") or document.get("token"))
    elif isinstance(document, dict):
        events, token = [document], None
    else:
        raise BadPayload("the body must be an event, an array of events or an object with a batch")
    if not events:
        raise BadPayload("no events in the request")
    if len(events) > payloads.MAX_EVENTS:
        raise BadPayload(f"more than {payloads.MAX_EVENTS} events in one request")
    return Capture(events, token or posthog_capture.event_token(events[0]))


def token_of(document: Any) -> str | None:
    """The project token a flags or config request body names (`token` or `api_key`)."""
    if not isinstance(document, dict):
        return None
    return _text(document.get("token") or document.get("api_key"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
