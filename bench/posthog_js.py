"""What posthog-js (the version vendored in app/static/vendor/posthog-js) makes of a page's rrweb events
before it sends them to `/s/`: each event packed (`cv: 2024-10`), the packed events buffered into
`$snapshot` events of at most its buffer limit, each carrying the session, window and project token,
and a request's body the gzip of their JSON array.

Read from its recorder (`lazy-recorder.js`): a FullSnapshot's `data`, a Mutation's `texts`,
`attributes`, `removes` and `adds`, a StyleSheetRule's `adds` and `removes` (those it has) are each
`gzipSync(JSON.stringify(value))` as a latin-1 string; an event it cannot pack (a Mutation missing a
field) is sent as it is. The buffer is sent as one `$snapshot` event before its estimated JSON size,
plus a byte per event, would pass 943,718.4 (0.9 MB).
"""

from __future__ import annotations

import gzip
import json
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

VERSION = (
    (Path(__file__).resolve().parent.parent / "app" / "static" / "vendor" / "posthog-js" / "VERSION")
    .read_text()
    .strip()
)
COMPRESSION_VERSION = "2024-10"
BUFFER_LIMIT = 943_718.4  # posthog-js's RECORDING_MAX_EVENT_SIZE: 0.9 of a MiB
FULL_SNAPSHOT, INCREMENTAL = 2, 3
MUTATION, STYLE_SHEET_RULE = 0, 8
MUTATION_FIELDS = ("texts", "attributes", "removes", "adds")
GZIP_LEVEL = 6  # fflate's gzipSync default


def js_json(value: Any) -> bytes:
    """`JSON.stringify(value)` as UTF-8 bytes (compact, non-ASCII as is): what a browser sends."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def gzip_to_string(value: Any) -> str:
    """posthog-js's `gzipToString`: gzip of the JSON, its bytes as a latin-1 string."""
    return gzip.compress(js_json(value), GZIP_LEVEL, mtime=0).decode("latin-1")


def request_body(events: list[dict[str, Any]]) -> bytes:
    """What posthog-js POSTs for `events` with `gzip-js` compression (sent as `text/plain`)."""
    return gzip.compress(js_json(events), GZIP_LEVEL, mtime=0)


def packed(event: dict[str, Any]) -> dict[str, Any]:
    """The event as posthog-js's `compressEvent` sends it."""
    data = event.get("data")
    if event.get("type") == FULL_SNAPSHOT:
        return {**event, "data": gzip_to_string(data), "cv": COMPRESSION_VERSION}
    if event.get("type") != INCREMENTAL or not isinstance(data, dict):
        return event
    if data.get("source") == MUTATION and all(data.get(k) is not None for k in MUTATION_FIELDS):
        fields = {k: gzip_to_string(data[k]) for k in MUTATION_FIELDS}
    elif data.get("source") == STYLE_SHEET_RULE:
        fields = {k: gzip_to_string(data[k]) for k in ("adds", "removes") if data.get(k) is not None}
    else:
        return event
    return {**event, "cv": COMPRESSION_VERSION, "data": {**data, **fields}}


def uuid7(ms: int, rng: random.Random) -> str:
    """A UUIDv7 of the moment `ms`, as posthog-js makes session, window and event ids."""
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


class Session:
    """One posthog-js session (one window) of a project: its `$snapshot` events."""

    def __init__(self, token: str, rng: random.Random, distinct_id: str, started_ms: int):
        self.token, self.rng, self.distinct_id = token, rng, distinct_id
        self.id = uuid7(started_ms, rng)
        self.window_id = uuid7(started_ms, rng)

    def snapshots(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`$snapshot` events carrying `events` (packed already), a new one each time the buffer
        would pass BUFFER_LIMIT."""
        found: list[dict[str, Any]] = []
        data: list[dict[str, Any]] = []
        size = 0
        for event in events:
            each = len(js_json(event))
            if data and size + each + len(data) > BUFFER_LIMIT:
                found.append(self._snapshot(data, size))
                data, size = [], 0
            data.append(event)
            size += each
        if data:
            found.append(self._snapshot(data, size))
        return found

    def _snapshot(self, data: list[dict[str, Any]], size: int) -> dict[str, Any]:
        at = data[-1]["timestamp"]
        return {
            "uuid": uuid7(at, self.rng),
            "event": "$snapshot",
            "properties": {
                "$snapshot_bytes": size,
                "$snapshot_data": data,
                "$session_id": self.id,
                "$window_id": self.window_id,
                "$lib": "web",
                "$lib_version": VERSION,
                "distinct_id": self.distinct_id,
                "token": self.token,
            },
            "timestamp": datetime.fromtimestamp(at / 1000, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
