"""What a recording's detail page shows in time order: its state changes and its session events.

An event's own data (everything but the fields all events share) is shown as readable fields: nested
objects are flattened to their leaf names (`click_data: {button: left}` reads `button: left`), spelled
out as a path only where two leaves share a name or the leaf is a list position.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.models import Ingest, Recording, RecordingState

S = RecordingState
# Fields every session event has; the rest is its per-type data, shown as fields.
EVENT_FIELDS = ("id", "type", "timestamp", "offset", "screenshot_path")
MAX_FIELDS = 12  # an event shows this many fields at most, the last one saying how many more there are
MAX_VALUE = 120  # characters of one value
MAX_DEPTH = 4  # deeper data is shown as one value
EMPTY: tuple[object, ...] = (None, "", [], {})
CREATED = {
    Ingest.PULL: "media pulled from the source",
    Ingest.PUSH: "media pushed by the meeting app",
    Ingest.NONE: "events only, no media",
}

Field = tuple[str, str]


@dataclass(frozen=True)
class Step:
    """One row of the state timeline: what happened, when (None when not recorded), and detail."""

    label: str
    at: datetime | None
    detail: str = ""


def states(rec: Recording) -> list[Step]:
    """The recording's lifecycle as far as it went: created, stop requested, stopped (with the stop
    reason and the source's gaps), finished, failed, deleted."""
    steps = [Step("Created", rec.created_at, CREATED.get(rec.ingest, ""))]
    if rec.stop_requested_at:
        steps.append(Step("Stop requested", rec.stop_requested_at))
    for gap in rec.gaps or []:
        steps.append(Step("Source gap", None, gap_text(gap)))
    if rec.stopped_at:
        steps.append(Step("Stopped", rec.stopped_at, rec.stop_reason or ""))
    if rec.finished_at:
        steps.append(Step("Finished", rec.finished_at, "final WebM stored and verified"))
    if rec.state == S.FAILED:
        steps.append(Step("Failed", None, rec.error or ""))
    if rec.deleted_at:
        steps.append(Step("Deleted", rec.deleted_at))
    return steps


def gap_text(gap: Mapping[str, Any]) -> str:
    """One of a recording's `gaps` in words: where, how long, why."""
    seconds = gap.get("seconds")
    lost = f"{float(seconds):.1f} s lost" if isinstance(seconds, int | float) else "time lost unknown"
    return f"after segment {gap.get('after_seq', '?')}: {lost} ({gap.get('reason') or 'reconnected'})"


@dataclass(frozen=True)
class EventRow:
    """One session event as the timeline lists it; `offset` is seconds into the video."""

    id: str
    type: str
    timestamp: float
    offset: float
    fields: tuple[Field, ...] = ()
    screenshot: str | None = None


def event_rows(events: Iterable[Mapping[str, Any]], video_start: float) -> list[EventRow]:
    """Rows for the event timeline from event dicts as `player.events` gives them (`id`, `type`,
    `timestamp` in Unix seconds, `offset` into the video or None, an optional `screenshot_path`, and
    per-type data). Without an offset, the time since `video_start` (Unix seconds) is used; offsets
    before the video starts are shown at 0."""
    rows = []
    for event in events:
        timestamp = float(event["timestamp"])
        offset = event.get("offset")
        offset = float(offset) if offset is not None else timestamp - video_start
        data = {k: v for k, v in event.items() if k not in EVENT_FIELDS}
        rows.append(
            EventRow(
                str(event["id"]),
                str(event["type"]),
                timestamp,
                max(0.0, offset),
                fields(data),
                event.get("screenshot_path"),
            )
        )
    return rows


def fields(data: Mapping[str, Any]) -> tuple[Field, ...]:
    """`data` as (name, value) pairs to read: nested objects flattened, empty values left out,
    booleans as yes/no, at most MAX_FIELDS pairs."""
    leaves = list(_leaves(data, ()))
    names = Counter(path[-1] for path, _ in leaves)
    shown = [(_name(path, names), _text(value)) for path, value in leaves]
    if len(shown) > MAX_FIELDS:
        more = len(shown) - MAX_FIELDS + 1
        shown = [*shown[: MAX_FIELDS - 1], ("…", f"{more} more")]
    return tuple(shown)


def _leaves(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if len(path) < MAX_DEPTH and isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    elif len(path) < MAX_DEPTH and isinstance(value, list) and any(_nested(v) for v in value):
        for n, item in enumerate(value, 1):
            yield from _leaves(item, (*path, str(n)))
    elif path and not _empty(value):
        yield path, value


def _nested(value: Any) -> bool:
    return isinstance(value, Mapping | list)


def _empty(value: Any) -> bool:
    return value in EMPTY  # 0 and False are values


def _name(path: tuple[str, ...], names: Counter[str]) -> str:
    leaf = path[-1]
    return ".".join(path) if names[leaf] > 1 or leaf.isdigit() else leaf


def _text(value: Any) -> str:
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, list):
        text = ", ".join(_text(v) for v in value if not _empty(v))
    elif isinstance(value, Mapping):
        text = ", ".join(f"{k}: {_text(v)}" for k, v in value.items() if not _empty(v))
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"
