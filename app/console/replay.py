"""What the console shows of a web replay: its facts, its person, and its events for rrweb's player.

The facts are the ones computed at ingest on the recording's `ReplaySummary` (as the PostHog dialect
presents them); the person is the replay's distinct id, the first of the metadata keys
`DISTINCT_ID_KEYS` that is set, with a name from `NAME_KEYS`. The player's events are the stored ones
in time order (`snapshots.events_in_time_order`), capped at MAX_EVENTS events and MAX_BYTES of JSON a
page load; the timeline's markers are computed in the same pass with `replay_facts`' definitions, so
the player marks exactly what the facts count.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

from sqlalchemy import ColumnElement, case, exists, select
from sqlalchemy.sql.selectable import ScalarSelect

from app.api.posthog.presenters import DISTINCT_ID_KEYS, NAME_KEYS
from app.models import Recording, RecordingMeta, ReplaySummary
from app.runtime import Runtime
from app.services.interactions import catalog, replay_facts, snapshots

# One page load pulls at most this much of a replay; the page says when there was more.
MAX_EVENTS = 100_000
MAX_BYTES = 48 * 1024 * 1024
CLICK, ERROR = "click", "error"


def person_column() -> ScalarSelect[Any]:
    """The listed recording's distinct id (None without one), for a query selecting from Recording."""
    priority = case({key: n for n, key in enumerate(DISTINCT_ID_KEYS)}, value=RecordingMeta.key)
    return (
        select(RecordingMeta.match)
        .where(RecordingMeta.recording_id == Recording.id, RecordingMeta.key.in_(DISTINCT_ID_KEYS))
        .order_by(priority)
        .limit(1)
        .correlate(Recording)
        .scalar_subquery()
    )


def person_matches(pattern: str) -> ColumnElement[bool]:
    """True for a recording whose distinct id or person name matches the LIKE `pattern` (escape `\\`)."""
    return exists().where(
        RecordingMeta.recording_id == Recording.id,
        RecordingMeta.key.in_(DISTINCT_ID_KEYS + NAME_KEYS),
        RecordingMeta.match.ilike(pattern, escape="\\"),
    )


def span_seconds(summary: ReplaySummary) -> float:
    """From the replay's first event to its last, in seconds."""
    return catalog.duration_ms(summary) / 1000


@dataclass(frozen=True)
class Facts:
    """A web replay as its recording page shows it."""

    summary: ReplaySummary
    distinct_id: str | None
    person_name: str | None

    @property
    def duration(self) -> float:
        return span_seconds(self.summary)

    @property
    def active(self) -> float:
        """Active seconds, at most the duration (as PostHog's `active_seconds`)."""
        return min(self.duration, self.summary.active_ms / 1000)


def facts(rt: Runtime, project_id: str, recording_id: str) -> Facts | None:
    """The web replay of a live recording of the project, or None when it has none."""
    found = catalog.entries(rt, project_id, [recording_id])
    if not found:
        return None
    entry = found[0]
    return Facts(entry.summary, _first(entry.meta, DISTINCT_ID_KEYS), _first(entry.meta, NAME_KEYS))


def _first(meta: dict[str, Any], names: tuple[str, ...]) -> str | None:
    values = (meta.get(name) for name in names)
    return next((str(v) for v in values if v not in (None, "")), None)


def marker(event: Any) -> str | None:
    """CLICK for a click, ERROR for a console error, as `replay_facts` counts them; else None."""
    kind, data = event.get("type"), replay_facts.data_of(event)
    if kind == replay_facts.INCREMENTAL:
        source, action = replay_facts.as_int(data.get("source")), replay_facts.as_int(data.get("type"))
        if source == replay_facts.MOUSE_INTERACTION and action in replay_facts.CLICK_TYPES:
            return CLICK
    elif kind == replay_facts.PLUGIN and data.get("plugin") == replay_facts.CONSOLE_PLUGIN:
        return ERROR if replay_facts.console_level(data) == "error" else None
    return None


def events_body(
    rt: Runtime, recording_id: str, total: int, max_events: int = MAX_EVENTS, max_bytes: int = MAX_BYTES
) -> Iterator[bytes]:
    """The player's JSON, streamed: `{"events": [...], "markers": [[timestamp, kind], ...], "loaded",
    "total", "truncated"}`; events in time order, stopping before MAX_EVENTS events or MAX_BYTES (the
    first event always goes). The first block is read before the first byte is yielded, so object
    storage being down fails the request rather than the stream."""
    events = snapshots.events_in_time_order(rt, recording_id)
    first = next(events, None)
    return _body(events if first is None else chain([first], events), total, max_events, max_bytes)


def _body(
    events: Iterator[tuple[int, dict[str, Any]]], total: int, max_events: int, max_bytes: int
) -> Iterator[bytes]:
    yield b'{"events":['
    loaded = size = 0
    markers: list[tuple[Any, str]] = []
    truncated = False
    for _, event in events:
        line = json.dumps(event, separators=(",", ":")).encode()
        if loaded and (loaded >= max_events or size + len(line) > max_bytes):
            truncated = True
            break
        yield (b"," if loaded else b"") + line
        loaded, size = loaded + 1, size + len(line)
        if (kind := marker(event)) is not None:
            markers.append((event["timestamp"], kind))
    tail = {"markers": markers, "loaded": loaded, "total": max(total, loaded), "truncated": truncated}
    yield b"]," + json.dumps(tail, separators=(",", ":")).encode()[1:]
