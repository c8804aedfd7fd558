"""Parsing and validating a batch of interaction events: `POST /recordings/{id}/events`.

Hand-written rather than a marshmallow schema: a batch of 500 events must validate in well under a
millisecond a hundred events (marshmallow costs ~30x that), and the rules are few. A batch is all or
nothing: one invalid event refuses the whole batch (422) with every problem listed by index.

Event shapes (the sessions API's, plus `scroll`, `text` and `custom`):

    {"id"?, "type": "click", "timestamp", "coordinates": {"x", "y"},
     "click_data"?: {"button": "left"|"middle"|"right", "pressed": bool}}
    {"id"?, "type": "key", "timestamp", "key_data": {"key", "modifiers"?: [str], "pressed"?: bool}}
    {"id"?, "type": "scroll", "timestamp", "scroll_data": {"x", "y", "dx"?, "dy"?}, "coordinates"?}
    {"id"?, "type": "text", "timestamp", "text_data": {"text", "target"?}}
    {"id"?, "type": "custom", "timestamp", "name"?, "custom_data": any JSON}

Every event may also carry `screenshot` (base64 or a data: URL in a JSON body; the name of a file part
in a multipart body) and `grab_frame` (bool: take a frame of the session's video at its timestamp;
clicks default to true). `timestamp` is Unix seconds (fractions allowed).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any

from werkzeug.datastructures import FileStorage

from app.errors import PayloadTooLarge, Unprocessable
from app.services.interactions.event_store import NewEvent, Screenshot

MAX_BATCH = 1000
MAX_TEXT = 10_000
MAX_CUSTOM_BYTES = 16 * 1024
# Unix seconds below this are before 2001; above it, the value is almost surely milliseconds.
TS_MIN, TS_MAX = 1e9, 1e11
ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
BUTTONS = frozenset({"left", "middle", "right"})
COMMON = frozenset({"id", "type", "timestamp", "screenshot", "grab_frame"})


class _Invalid(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def parse_batch(
    payload: Any, files: Mapping[str, FileStorage] | None, max_screenshot_bytes: int
) -> list[NewEvent]:
    """Validated events from a decoded body: a list of events, or {"events": [...]}.

    `files` are a multipart body's file parts (None for a JSON body). 422 with `errors.events.<index>`
    for invalid events, 413 past MAX_BATCH events or a screenshot past `max_screenshot_bytes`."""
    items = payload.get("events") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise Unprocessable('the body must be a list of events or {"events": [...]}')
    if len(items) > MAX_BATCH:
        raise PayloadTooLarge(f"at most {MAX_BATCH} events a request; this one has {len(items)}")
    events: list[NewEvent] = []
    errors: dict[str, dict[str, list[str]]] = {}
    for index, raw in enumerate(items):
        try:
            events.append(_event(raw, files, max_screenshot_bytes))
        except _Invalid as e:
            errors[str(index)] = {e.field: [e.message]}
    if errors:
        raise Unprocessable("invalid events; none of the batch was stored", errors={"events": errors})
    return events


def _event(raw: Any, files: Mapping[str, FileStorage] | None, limit: int) -> NewEvent:
    if not isinstance(raw, dict):
        raise _Invalid("_schema", "an event is a JSON object")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in _TYPES:
        raise _Invalid("type", f"one of {', '.join(sorted(_TYPES))}")
    parse = _TYPES[kind]
    allowed = _FIELDS[kind]
    for name in raw:
        if name not in allowed:
            raise _Invalid(name, f"unknown field for a {kind} event")
    event_id = raw.get("id")
    if event_id is None:
        event_id = str(uuid.uuid4())
    elif not isinstance(event_id, str) or not ID_PATTERN.fullmatch(event_id):
        raise _Invalid("id", "1 to 64 characters of A-Z a-z 0-9 . _ : -")
    grab = raw.get("grab_frame")
    if grab is not None and not isinstance(grab, bool):
        raise _Invalid("grab_frame", "a boolean")
    shot = raw.get("screenshot")
    return NewEvent(
        event_id=event_id,
        type=kind,
        ts=_timestamp(raw.get("timestamp")),
        data=parse(raw),
        screenshot=_screenshot(shot, files, limit) if shot is not None else None,
        grab_frame=grab,
    )


def _timestamp(value: Any) -> float:
    if not _is_number(value):
        raise _Invalid("timestamp", "required: Unix seconds, a number")
    if not TS_MIN <= value < TS_MAX:
        hint = " (this looks like milliseconds)" if value >= TS_MAX else ""
        raise _Invalid("timestamp", f"Unix seconds after 2001{hint}")
    return float(value)


def _is_number(value: Any) -> bool:
    """A JSON number: an int (any size: `math.isfinite` overflows on a huge one) or a finite float."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


def _object(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """The required object field `name`."""
    value = _optional_object(raw, name)
    if value is None:
        raise _Invalid(name, "required")
    return value


def _optional_object(raw: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = raw.get(name)
    if value is not None and not isinstance(value, dict):
        raise _Invalid(name, "an object")
    return value


def _numbers(
    obj: dict[str, Any], name: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict:
    out: dict[str, Any] = {}
    for key in obj:
        if key not in required and key not in optional:
            raise _Invalid(name, f"unknown key {key!r}")
    for key in required + optional:
        value = obj.get(key)
        if value is None and key in optional:
            continue
        if not _is_number(value):
            raise _Invalid(name, f"{key} must be a number")
        out[key] = value
    return out


def _coordinates(raw: dict[str, Any], required: bool) -> dict[str, Any] | None:
    obj = _object(raw, "coordinates") if required else _optional_object(raw, "coordinates")
    return None if obj is None else _numbers(obj, "coordinates", ("x", "y"))


def _click(raw: dict[str, Any]) -> dict[str, Any]:
    data = _optional_object(raw, "click_data") or {}
    for key in data:
        if key not in ("button", "pressed"):
            raise _Invalid("click_data", f"unknown key {key!r}")
    button = data.get("button", "left")
    if button not in BUTTONS:
        raise _Invalid("click_data", "button must be left, middle or right")
    pressed = data.get("pressed", True)
    if not isinstance(pressed, bool):
        raise _Invalid("click_data", "pressed must be a boolean")
    return {"coordinates": _coordinates(raw, True), "click_data": {"button": button, "pressed": pressed}}


def _key(raw: dict[str, Any]) -> dict[str, Any]:
    data = _object(raw, "key_data")
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name == "key":
            if not isinstance(value, str) or not 0 < len(value) <= 64:
                raise _Invalid("key_data", "key must be a string of 1 to 64 characters")
        elif name == "modifiers":
            if not isinstance(value, list) or not all(isinstance(m, str) and len(m) <= 16 for m in value):
                raise _Invalid("key_data", "modifiers must be a list of short strings")
        elif name == "pressed":
            if not isinstance(value, bool):
                raise _Invalid("key_data", "pressed must be a boolean")
        else:
            raise _Invalid("key_data", f"unknown key {name!r}")
        out[name] = value
    if "key" not in out:
        raise _Invalid("key_data", "key is required")
    return {"key_data": out}


def _scroll(raw: dict[str, Any]) -> dict[str, Any]:
    data = _object(raw, "scroll_data")
    out: dict[str, Any] = {"scroll_data": _numbers(data, "scroll_data", ("x", "y"), ("dx", "dy"))}
    coordinates = _coordinates(raw, False)
    if coordinates is not None:
        out["coordinates"] = coordinates
    return out


def _text(raw: dict[str, Any]) -> dict[str, Any]:
    data = _object(raw, "text_data")
    for key in data:
        if key not in ("text", "target"):
            raise _Invalid("text_data", f"unknown key {key!r}")
    text, target = data.get("text"), data.get("target")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise _Invalid("text_data", f"text must be a string of at most {MAX_TEXT} characters")
    if target is not None and (not isinstance(target, str) or len(target) > 500):
        raise _Invalid("text_data", "target must be a string of at most 500 characters")
    return {"text_data": {"text": text, **({"target": target} if target is not None else {})}}


def _custom(raw: dict[str, Any]) -> dict[str, Any]:
    if "custom_data" not in raw:
        raise _Invalid("custom_data", "required (any JSON value)")
    data = raw["custom_data"]
    if len(json.dumps(data)) > MAX_CUSTOM_BYTES:  # NaN and Infinity never get here (app.api.jsonbody)
        raise _Invalid("custom_data", f"at most {MAX_CUSTOM_BYTES} bytes as JSON")
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise _Invalid("name", "a string of at most 200 characters")
    return {"custom_data": data, **({"name": name} if name is not None else {})}


_TYPES = {"click": _click, "key": _key, "scroll": _scroll, "text": _text, "custom": _custom}
_FIELDS = {
    "click": COMMON | {"coordinates", "click_data"},
    "key": COMMON | {"key_data"},
    "scroll": COMMON | {"scroll_data", "coordinates"},
    "text": COMMON | {"text_data"},
    "custom": COMMON | {"custom_data", "name"},
}

_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def _screenshot(value: Any, files: Mapping[str, FileStorage] | None, limit: int) -> Screenshot:
    if not isinstance(value, str) or not value:
        raise _Invalid("screenshot", "a base64 image (JSON body) or the name of a file part (multipart)")
    if files is not None:
        part = files.get(value)
        if part is None:
            raise _Invalid("screenshot", f"no file part named {value!r} in this request")
        data = part.stream.read(limit + 1)
    else:
        data = _base64(value, limit)
    if len(data) > limit:
        raise PayloadTooLarge(f"a screenshot may have at most {limit} bytes")
    return Screenshot(data, _image_type(data))


def _base64(value: str, limit: int) -> bytes:
    if value.startswith("data:"):
        head, _, value = value.partition(",")
        if not head.endswith(";base64"):
            raise _Invalid("screenshot", "a data: URL must be base64-encoded")
    if len(value) > (limit + 2) // 3 * 4 + 4:
        raise PayloadTooLarge(f"a screenshot may have at most {limit} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise _Invalid("screenshot", "not valid base64") from e


def _image_type(data: bytes) -> str:
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise _Invalid("screenshot", "a PNG, JPEG or WebP image")
