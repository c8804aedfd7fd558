"""Bodies of rrweb event batches (rrweb cloud ingest: HTTP POST bodies and WebSocket frames), decoded.

Pure: bytes in, events or bytes out, domain errors for anything unreadable. `encoding_of` names the one
content encoding, `inflate` decompresses within a byte limit (a bomb stops at the limit, never in memory),
`parse_events` reads JSON or NDJSON into checked rrweb events, and `encode_lines` writes them as the stored
block format: compact JSON, one object a line.
"""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

import brotli
import zstandard

from app.errors import BadPayload, PayloadTooLarge, UnsupportedEncoding

ENCODINGS = ("identity", "gzip", "br", "zstd")
CONTENT_TYPES = ("application/json", "application/x-ndjson", "application/ndjson")
MAX_DEPTH = 256
MAX_EVENTS = 100_000
MAX_TIMESTAMP = 253_402_300_799_999  # ms since the epoch to 9999-12-31T23:59:59.999Z, datetime's last
MAX_REPORTED = 10  # invalid events described in `errors`

_ALIASES = {name: name for name in ENCODINGS} | {"": "identity", "x-gzip": "gzip"}
_SNIFFED = ("", "text/plain", "application/octet-stream")
_SERVER_KEYS = ("sequenceId", "recordingId")
_ZSTD_MIN_WINDOW = 1 << 23  # what zstd's levels up to 19 use when the size is unknown
_ZSTD_MAX_RATIO = 1 << 15  # an RLE block: 4 input bytes, 128 KiB of output
_NO_EVENTS = "no events in the batch"
_ABSENT = object()
_DATA = frozenset((dict, object))  # `data` is an object or absent (`_ABSENT` is a bare object)
_NEST = frozenset((dict, list))


def no_constant(name: str) -> Any:
    """Refuse NaN and Infinity, which JSON does not have."""
    raise ValueError(f"{name} is not a JSON value")


def finite_float(text: str) -> float:
    """A JSON float, refused when it overflows to infinity (1e400)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


_DECODE = json.JSONDecoder(parse_constant=no_constant, parse_float=finite_float).decode
# No cycle check: parsed JSON has none (a cyclic dict would still end in RecursionError), and it costs 8%.
_COMPACT: dict[str, Any] = {"allow_nan": False, "check_circular": False, "separators": (",", ":")}
_ENCODE = json.JSONEncoder(ensure_ascii=False, **_COMPACT).encode
_ENCODE_ASCII = json.JSONEncoder(ensure_ascii=True, **_COMPACT).encode


def encoding_of(header: str | None) -> str:
    """The one encoding a Content-Encoding header or contentEncoding query value names."""
    name = _ALIASES.get((header or "").strip().lower())
    if name is None:
        raise UnsupportedEncoding(f"unsupported content encoding {header!r}: use one of {_listed(ENCODINGS)}")
    return name


def _listed(names: tuple[str, ...]) -> str:
    """Names for an error message."""
    return ", ".join(names)


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """`body` decompressed per `encoding`, refused with PayloadTooLarge as soon as it passes `limit` bytes."""
    if encoding == "identity":
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        return body
    inflater = _INFLATERS.get(encoding)
    if inflater is None:
        raise UnsupportedEncoding(f"unsupported content encoding {encoding!r}")
    sink = _Sink(limit)
    try:
        inflater(body, sink)
    except (zlib.error, brotli.error, zstandard.ZstdError, EOFError) as e:
        raise BadPayload(f"the body is not valid {encoding} data") from e
    return sink.joined()


class _Sink:
    """Output chunks that refuse to grow past `limit` bytes."""

    def __init__(self, limit: int):
        self.limit = limit
        self.size = 0
        self.chunks: list[bytes] = []

    def room(self) -> int:
        """Bytes still allowed, plus one so that passing the limit shows."""
        return self.limit - self.size + 1

    def add(self, chunk: bytes) -> None:
        """Keep `chunk`, or raise PayloadTooLarge if it takes the total past the limit."""
        self.size += len(chunk)
        if self.size > self.limit:
            raise PayloadTooLarge(f"the body inflates to more than {self.limit} bytes")
        self.chunks.append(chunk)

    def joined(self) -> bytes:
        """Everything kept, as one bytes object."""
        return self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)


def _gunzip(data: bytes, sink: _Sink) -> None:
    """Every gzip member of `data` (zero padding after the last is allowed, as gzip's own reader does)."""
    while True:
        member = zlib.decompressobj(wbits=31)
        while not member.eof:
            chunk = member.decompress(data, sink.room())
            data = member.unconsumed_tail
            if not (chunk or data or member.eof):
                raise EOFError("truncated gzip member")
            sink.add(chunk)
        data = member.unused_data
        if not data.strip(b"\0"):
            return


def _unbrotli(data: bytes, sink: _Sink) -> None:
    """One brotli stream; the decoder hands out at most `room` bytes a call."""
    stream = brotli.Decompressor()
    sink.add(stream.process(data, output_buffer_limit=sink.room()))
    while not stream.is_finished():
        if stream.can_accept_more_data():
            raise EOFError("truncated brotli stream")
        sink.add(stream.process(b"", output_buffer_limit=sink.room()))


def _unzstd(data: bytes, sink: _Sink) -> None:
    """Every zstd frame of `data`, fed in slices too small to inflate far past the limit."""
    dctx = zstandard.ZstdDecompressor(max_window_size=max(_ZSTD_MIN_WINDOW, sink.limit))
    view, pos = memoryview(data), 0
    while True:
        frame = dctx.decompressobj()
        while not frame.eof and pos < len(data):
            step = max(64, sink.room() // _ZSTD_MAX_RATIO)
            sink.add(frame.decompress(view[pos : pos + step]))
            pos = min(pos + step, len(data))
        if not frame.eof:
            raise EOFError("truncated zstd frame")
        pos -= len(frame.unused_data)
        if pos >= len(data):
            return


_INFLATERS = {"gzip": _gunzip, "br": _unbrotli, "zstd": _unzstd}


def parse_events(raw: bytes, content_type: str | None) -> list[dict[str, Any]]:
    """Checked rrweb events from a decoded body: a JSON array, a JSON {"events": [...]}, or NDJSON."""
    kind = _kind_of(content_type)
    text = _utf8(raw)
    if not text or text.isspace():
        raise BadPayload(_NO_EVENTS)
    if kind == "ndjson":
        events = _ndjson(text)
    elif kind == "json":
        events = _unwrap(_json(text))
    else:
        events = _sniffed(text)
    return _checked(events)


def parse_document(raw: bytes) -> Any:
    """One JSON document from a decoded body (UTF-8); BadPayload when it is not one."""
    text = _utf8(raw)
    if not text or text.isspace():
        raise BadPayload("the body is empty")
    return _json(text)


def check_events(events: list[Any]) -> list[dict[str, Any]]:
    """`events` as `parse_events` checks them (rrweb `type` and `timestamp`, nesting, count): the same
    list, timestamps made int ms and server keys dropped; BadPayload for all when one is invalid."""
    return _checked(events)


def _kind_of(content_type: str | None) -> str:
    """The parser a Content-Type asks for: json, ndjson or sniff (parameters ignored)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        return "json"
    if media in CONTENT_TYPES:
        return "ndjson"
    if media in _SNIFFED:
        return "sniff"
    raise UnsupportedEncoding(f"unsupported content type {media!r}: use one of {_listed(CONTENT_TYPES)}")


def _utf8(raw: bytes) -> str:
    """`raw` as text, which must be UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadPayload(f"the body is not valid UTF-8 (byte {e.start})") from None


def _json(text: str, line: int | None = None) -> Any:
    """One JSON document (the body, or NDJSON's `line`); BadPayload if malformed or too deep to parse."""
    where = "the body" if line is None else f"line {line}"
    try:
        return _DECODE(text)
    except json.JSONDecodeError as e:
        at = f"column {e.colno}" if line else f"line {e.lineno} column {e.colno}"
        raise BadPayload(f"{where} is not valid JSON: {e.msg} at {at}") from None
    except RecursionError:
        raise BadPayload(f"{where} nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:  # NaN, Infinity, an overflowing float, an int past Python's digit limit
        raise BadPayload(f"{where} is not valid JSON: {e}") from None


def _ndjson(text: str) -> list[Any]:
    """One JSON value a non-blank line."""
    events: list[Any] = []
    for number, line in enumerate(text.split("\n"), 1):
        if line and not line.isspace():
            events.append(_json(line, number))
            if len(events) > MAX_EVENTS:
                raise PayloadTooLarge(f"more than {MAX_EVENTS} events in the batch")
    return events


def _unwrap(value: Any) -> list[Any]:
    """The events of a JSON body: the array itself, an object's "events", or a lone event object."""
    if isinstance(value, list):
        return value
    if not isinstance(value, dict):
        raise BadPayload('the body must be a JSON array of events or an object with an "events" array')
    if "events" not in value:
        return [value]
    if not isinstance(value["events"], list):
        raise BadPayload('"events" must be an array')
    return value["events"]


def _sniffed(text: str) -> list[Any]:
    """A body of unknown type: one JSON document if it is one, else NDJSON."""
    try:
        value = _DECODE(text)
    except (ValueError, RecursionError):
        return _ndjson(text)
    return _unwrap(value)


def _checked(events: list[Any]) -> list[dict[str, Any]]:
    """`events` once every one is valid, without the keys the server assigns; else BadPayload for all."""
    if not events:
        raise BadPayload(_NO_EVENTS)
    if len(events) > MAX_EVENTS:
        raise PayloadTooLarge(f"more than {MAX_EVENTS} events in the batch")
    bad = [i for i, event in enumerate(events) if not _fits(event)]
    if not bad and _depth(events) > MAX_DEPTH:
        bad = [i for i, event in enumerate(events) if _depth([event]) > MAX_DEPTH]
    if bad:
        described = {str(i): _problems(events[i]) for i in bad[:MAX_REPORTED]}
        noun = "event is" if len(bad) == 1 else "events are"
        raise BadPayload(f"{len(bad)} {noun} invalid", errors={"events": described})
    return events


def _fits(event: Any) -> bool:
    """Whether `event` is a valid rrweb event; if so its timestamp becomes int ms and server keys go."""
    if type(event) is not dict:
        return False
    kind, ts = event.get("type"), event.get("timestamp")
    if type(kind) is not int or not 0 <= kind <= 255 or type(event.get("data", _ABSENT)) not in _DATA:
        return False
    if type(ts) is float and 0 <= ts <= MAX_TIMESTAMP:
        event["timestamp"] = int(ts)
    elif type(ts) is not int or not 0 <= ts <= MAX_TIMESTAMP:
        return False
    for key in _SERVER_KEYS:
        event.pop(key, None)
    return True


def _problems(event: Any) -> list[str]:
    """What is wrong with one event, for a person to read."""
    if type(event) is not dict:
        return ["an event must be a JSON object"]
    problems = [p for p in (_type_problem(event), _timestamp_problem(event)) if p]
    if "data" in event and type(event["data"]) is not dict:
        problems.append("data must be an object")
    if not problems and _depth([event]) > MAX_DEPTH:
        problems.append(f"the event nests deeper than {MAX_DEPTH} levels")
    return problems


def _type_problem(event: dict[str, Any]) -> str | None:
    """Why `type` is not an rrweb event type, if it is not."""
    kind = event.get("type")
    if kind is None:
        return "type is required"
    if type(kind) is not int:
        return "type must be an integer"
    return None if 0 <= kind <= 255 else "type must be from 0 to 255"


def _timestamp_problem(event: dict[str, Any]) -> str | None:
    """Why `timestamp` is not an rrweb timestamp, if it is not."""
    ts = event.get("timestamp")
    if ts is None:
        return "timestamp is required"
    if type(ts) not in (int, float):
        return "timestamp must be a number"
    return None if 0 <= ts <= MAX_TIMESTAMP else f"timestamp must be from 0 to {MAX_TIMESTAMP}"


def _depth(values: list[Any]) -> int:
    """How deep the objects and arrays in `values` nest (a flat object is 1), level by level: no recursion."""
    level, depth = [v for v in values if type(v) in _NEST], 0
    while level and depth <= MAX_DEPTH:
        depth += 1
        level = [c for n in level for c in (n.values() if type(n) is dict else n) if type(c) in _NEST]
    return depth


def encode_lines(events: list[dict[str, Any]]) -> bytes:
    """The events as compact JSON, one object a line, each line ending in "\\n": the stored block format."""
    if not events:
        return b""
    try:
        return ("\n".join(map(_ENCODE, events)) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud83d"): escape it, as JSON allows
        return b"".join(_line(event) for event in events)


def _line(event: dict[str, Any]) -> bytes:
    """One event's line: UTF-8 where it can be, ASCII escapes where it holds a lone surrogate."""
    try:
        return (_ENCODE(event) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (_ENCODE_ASCII(event) + "\n").encode("ascii")
