"""rrweb cloud WebSocket ingest: `GET /rrweb/recordings/{recordingId}/ingest/ws`, plain ASGI.

It runs on the api process's event loop (`app.asgi`), so an open, idle socket holds no thread; every
blocking call (authentication, SQL, object storage, decompression) runs on a small thread pool.

The protocol, the contract for clients:

Handshake (`GET .../ingest/ws`, a trailing slash is accepted), query parameters:
- `contentType`: application/x-ndjson (default), application/ndjson or application/json (an array, an
  object with `events`, or one event) — how each payload frame is read;
- `contentEncoding`: identity (default), gzip, br or zstd — how binary frames are compressed;
- `debug=true`: every decoded payload is echoed back as `{"type": "debug", "events": [...]}`;
- `stream`: the client's id for this stream of frames (1..64 of A-Z a-z 0-9 . _ : -), enabling resume;
- credentials, one of: `Authorization: Bearer <key>` (non-browser clients), `?key=<public key>`
  (browsers cannot set headers on a WebSocket), or a presigned URL (`signature`, `expires`, `keyId`
  for `GET` on this path). A key needs the `ingest` scope, and when it names allowed origins the
  handshake's `Origin` must be one of them.
A refused handshake is an HTTP answer with meetrec's JSON error body: 401 (no valid credential), 403
(scope or origin), 415 (contentType / contentEncoding), 422 (a bad recording id or stream id), 503.

After the upgrade the server sends `{"type": "ready", "recordingId": id, "stream": stream or null,
"acked": k}`: k is how many frames of the named stream are stored already (0 without a stream). The
payload frames the client sends on this connection are numbered k+1, k+2, ...; a client that reconnects
with the same stream resends only the frames after `acked`.

Frames from the client:
- a text frame holding a JSON object with a string `type` is a control message: `{"type": "flush"}`
  stores what is buffered now and acks; `{"type": "end"}` stores it, sends the final result and closes
  with 1000; other control types are ignored;
- any other text frame is an uncompressed payload (read per contentType);
- a binary frame is a payload compressed per contentEncoding (identity: not compressed).
A payload frame may be at most MEETREC_MAX_INGEST_BODY_BYTES as sent and MEETREC_MAX_INFLATED_BYTES
decompressed (the server's WebSocket layer also caps a message at 16 MiB, closing with 1009 above it).

The server buffers decoded events and stores them as one block when 256 KB of decoded payload are
buffered, when a second passes without a frame, when the oldest buffered frame has waited 5 seconds,
on flush and end, and when the client disconnects (durable, though no ack can be sent then). Each
store is acked with `{"type": "upstream-result", "ok": true, "status": 204, "final": false, "acked": n,
"lastSequenceId": s}`: n frames of the stream are stored (on this connection: n - k), the last event
stored by this connection got sequenceId s (null while it stored nothing); the answer to `end` has
`"final": true`. Stores of one connection run one at a time, in frame order.

Errors: `{"type": "error", "status": s, "message": m, "acked": n}`, then close 1011. A bad payload
frame (400 unreadable, 413 too large, 415 unsupported) stores nothing of itself, but the good frames
buffered before it are stored first (`acked` counts them); 409: the recording is being deleted or has
ended; 503: storage is unavailable; 500: a fault of ours. Dead peers are found by WebSocket pings.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from app import payloads
from app.api import jsonbody
from app.api.auth import key_from_header
from app.api.errors import error_body, status_of
from app.api.rrweb import access
from app.errors import (
    BadPayload,
    DomainError,
    PayloadTooLarge,
    StorageError,
    Unprocessable,
    UnsupportedEncoding,
)
from app.runtime import Runtime
from app.services.interactions import replays
from app.services.interactions.replays import StreamPosition

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
T = TypeVar("T")

log = logging.getLogger(__name__)

ROUTE = "/rrweb/recordings/{recordingId}/ingest/ws"
PATH = re.compile(r"/rrweb/recordings/([^/]+)/ingest/ws/?")
DEFAULT_CONTENT_TYPE = "application/x-ndjson"
FLUSH_BYTES = 256 * 1024  # decoded payload buffered before it is stored
IDLE_FLUSH_SECONDS = 1.0  # store the buffer when no frame came for this long ...
MAX_DELAY_SECONDS = 5.0  # ... or when its oldest frame has waited this long
CONTROL_MAX_CHARS = 1024  # longer text frames are payloads, never control messages
BAD_FRAME = (BadPayload, UnsupportedEncoding, PayloadTooLarge)
HTTP_RESPONSE = "websocket.http.response"


@dataclass(frozen=True)
class Params:
    """What the handshake asked for."""

    recording_id: str
    content_type: str
    encoding: str
    debug: bool
    stream: str | None


@dataclass(frozen=True)
class Outcome:
    """How a socket ended, for the access log: the handshake status, the close code, what it stored."""

    status: int
    close_code: int | None = None
    frames: int = 0
    events: int = 0


async def serve(
    rt: Runtime, pool: Executor, scope: Message, receive: Receive, send: Send, recording_id: str
) -> Outcome:
    """Serve one ingest socket from handshake to close; never raises for the client's doing or ours."""
    if (await receive())["type"] != "websocket.connect":
        return Outcome(status=499)
    try:
        params = params_of(recording_id, query_pairs(scope))
        project_id, acked = await call(pool, admit, rt, scope, params)
    except Exception as e:  # noqa: BLE001 - every failure refuses the handshake
        status, message = describe(e)
        try:
            await refuse(scope, send, status, message)
        except OSError:  # the client left before the answer
            pass
        return Outcome(status=status)
    try:
        await send({"type": "websocket.accept"})
    except OSError:  # the client left during the handshake
        return Outcome(status=499)
    socket = _Socket(rt, pool, send, params, project_id, acked)
    code = await socket.run(receive)
    return Outcome(101, code, socket.stored, socket.stored_events)


def query_pairs(scope: Message) -> list[tuple[str, str]]:
    """The handshake's query parameters, in order, blanks kept."""
    return parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)


def params_of(recording_id: str, pairs: list[tuple[str, str]]) -> Params:
    """The socket's parameters; DomainError for a refused one."""
    query = dict(pairs)
    replays.check_external_id(recording_id)
    stream = query.get("stream")
    if stream is not None and not replays.EXTERNAL_ID.fullmatch(stream):
        raise Unprocessable("stream must be 1..64 characters of A-Z a-z 0-9 . _ : -")
    content_type = query.get("contentType") or DEFAULT_CONTENT_TYPE
    if content_type not in payloads.CONTENT_TYPES:
        raise UnsupportedEncoding(f"contentType must be one of {', '.join(payloads.CONTENT_TYPES)}")
    encoding = payloads.encoding_of(query.get("contentEncoding"))
    return Params(recording_id, content_type, encoding, query.get("debug", "").lower() == "true", stream)


def admit(rt: Runtime, scope: Message, params: Params) -> tuple[str, int]:
    """The project the socket writes to and the frames of its stream stored already (blocking)."""
    headers, query = headers_of(scope), query_pairs(scope)
    # Browsers cannot set headers on a WebSocket: their key comes as `?key=`.
    raw_key = key_from_header(headers.get("authorization", "")) or dict(query).get("key", "")
    project_id = access.authorize(rt, "ingest", "GET", path_of(scope), query, raw_key, headers.get("origin"))
    if params.stream is None:
        return project_id, 0
    return project_id, replays.stream_frames(rt, project_id, params.recording_id, params.stream)


def path_of(scope: Message) -> str:
    """The request path as the app sees it (without the server's root path), as presigned URLs sign it."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def headers_of(scope: Message) -> dict[str, str]:
    """The handshake's headers by lower-case name (a repeated header: its last value)."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}


def describe(error: BaseException) -> tuple[int, str]:
    """The status and message an error answers with; our own faults are logged with their traceback."""
    if isinstance(error, DomainError):
        return status_of(error), error.message
    if isinstance(error, StorageError):
        log.warning("storage unavailable during WebSocket ingest: %s", error)
        return 503, "object storage is unavailable, try again"
    log.error("WebSocket ingest failed", exc_info=error)
    return 500, "internal error"


async def refuse(scope: Message, send: Send, status: int, message: str) -> None:
    """Refuse a handshake: an HTTP answer with the JSON error body where the server can send one, else a
    close before accepting (the client sees 403)."""
    if HTTP_RESPONSE not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    body = json.dumps(error_body(status, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": f"{HTTP_RESPONSE}.start", "status": status, "headers": headers})
    await send({"type": f"{HTTP_RESPONSE}.body", "body": body})


async def call(pool: Executor, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` on `pool`, in a copy of this task's context (its log fields)."""
    bound = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool, bound)


def decode(frame: bytes, encoding: str, content_type: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """A payload frame's events and its decoded size (blocking: decompression and JSON)."""
    raw = payloads.inflate(frame, encoding, limit)
    return payloads.parse_events(raw, content_type), len(raw)


def control_type(text: str) -> str | None:
    """The `type` of a control message, or None when the text frame is a payload."""
    if len(text) > CONTROL_MAX_CHARS or not text.lstrip().startswith("{"):
        return None
    try:
        value = jsonbody.loads(text)  # bounded: a thousand `[` fit in a control-sized frame
    except (BadPayload, PayloadTooLarge):
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None


class _Socket:
    """One accepted socket: decodes payload frames, buffers their events, stores them in order, acks."""

    def __init__(self, rt: Runtime, pool: Executor, send: Send, params: Params, project_id: str, acked: int):
        self.rt, self.pool, self.send, self.params, self.project_id = rt, pool, send, params, project_id
        self.base = acked  # frames of the stream stored before this connection
        self.frames = 0  # payload frames received on this connection
        self.stored = 0  # ... of them stored
        self.stored_events = 0
        self.last_sequence: int | None = None
        self.events: list[dict[str, Any]] = []
        self.buffered_bytes = 0
        self.first_at = self.last_at = 0.0  # loop times the oldest and newest buffered frames came
        self.open = True
        self.close_code: int | None = None

    async def run(self, receive: Receive) -> int | None:
        """Serve until the client ends, leaves or fails; the close code (ours, or the client's)."""
        try:
            await self._ready()
            await self._serve(receive)
        except BAD_FRAME as e:
            await self._fail(await self._salvage(e))
        except Exception as e:  # noqa: BLE001 - reported to the client, logged when it is ours
            await self._fail(e)
        return self.close_code

    async def _ready(self) -> None:
        p = self.params
        await self._send_json(
            {"type": "ready", "recordingId": p.recording_id, "stream": p.stream, "acked": self.base}
        )

    async def _serve(self, receive: Receive) -> None:
        while True:
            message = await self._next(receive)
            if message is None:
                await self._flush_and_ack()
            elif message["type"] == "websocket.disconnect":
                self.open, self.close_code = False, message.get("code", 1005)
                await self._flush()  # durable, though nobody is left to ack
                return
            elif message["type"] == "websocket.receive" and await self._on_frame(message):
                return

    async def _next(self, receive: Receive) -> Message | None:
        """The next message, or None when the buffer is due to be stored first."""
        if not self.events:
            return await receive()
        due = min(self.last_at + IDLE_FLUSH_SECONDS, self.first_at + MAX_DELAY_SECONDS)
        try:
            return await asyncio.wait_for(receive(), due - asyncio.get_running_loop().time())
        except TimeoutError:
            return None

    async def _on_frame(self, message: Message) -> bool:
        """Handle one frame; True once the client ended the stream."""
        text, data = message.get("text"), message.get("bytes")
        if text is None:
            await self._add(data or b"", self.params.encoding)
            return False
        kind = control_type(text)
        if kind == "end":
            await self._flush_and_ack(final=True)
            await self._close(1000)
            return True
        if kind == "flush":
            await self._flush_and_ack()
        elif kind is None:
            await self._add(text.encode(), "identity")
        return False

    async def _add(self, frame: bytes, encoding: str) -> None:
        """Decode a payload frame into the buffer; store the buffer once it is large enough."""
        config = self.rt.config
        if len(frame) > config.max_ingest_body_bytes:
            raise PayloadTooLarge(f"a frame may carry at most {config.max_ingest_body_bytes} bytes")
        args = (frame, encoding, self.params.content_type, config.max_inflated_bytes)
        events, size = await call(self.pool, decode, *args)
        now = asyncio.get_running_loop().time()
        if not self.events:
            self.first_at = now
        self.last_at = now
        self.events.extend(events)
        self.buffered_bytes += size
        self.frames += 1
        if self.params.debug:
            await self._send_json({"type": "debug", "events": events})
        if self.buffered_bytes >= FLUSH_BYTES:
            await self._flush_and_ack()

    async def _flush(self) -> None:
        """Store the buffered events as one block, advancing the stream to the frames received."""
        if not self.events:
            return
        events, frames = self.events, self.frames
        self.events, self.buffered_bytes = [], 0
        p = self.params
        stream = StreamPosition(p.stream, self.base + frames, self.base + self.stored) if p.stream else None
        stored = await call(
            self.pool, replays.ingest, self.rt, self.project_id, p.recording_id, events, stream=stream
        )
        self.stored, self.last_sequence = frames, stored.last_sequence
        self.stored_events += len(events)

    async def _flush_and_ack(self, final: bool = False) -> None:
        await self._flush()
        await self._send_json(
            {
                "type": "upstream-result",
                "ok": True,
                "status": 204,
                "final": final,
                "acked": self.base + self.stored,
                "lastSequenceId": self.last_sequence,
            }
        )

    async def _salvage(self, error: Exception) -> Exception:
        """Store the good frames buffered before a bad one; the error to report (the store's if it failed)."""
        try:
            await self._flush()
        except Exception as e:  # noqa: BLE001 - reported instead of the bad frame
            return e
        return error

    async def _fail(self, error: Exception) -> None:
        status, message = describe(error)
        await self._send_json(
            {"type": "error", "status": status, "message": message, "acked": self.base + self.stored}
        )
        await self._close(1011)

    async def _send_json(self, message: dict[str, Any]) -> None:
        """Send a JSON text frame, unless the client is gone."""
        if not self.open:
            return
        try:
            await self.send({"type": "websocket.send", "text": json.dumps(message, separators=(",", ":"))})
        except OSError:  # uvicorn's ClientDisconnected: the client left while we were busy
            self.open = False

    async def _close(self, code: int) -> None:
        if self.open:
            self.open, self.close_code = False, code
            try:
                await self.send({"type": "websocket.close", "code": code})
            except OSError:
                pass
