"""What a recording's detail page shows in time order: its state changes and its session events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.models import Recording, RecordingState

S = RecordingState
# Fields every session event has; the rest is its per-type data, shown as a summary.
EVENT_FIELDS = ("id", "type", "timestamp", "offset", "screenshot_path")


@dataclass(frozen=True)
class Step:
    """One row of the state timeline: what happened, when (None when not recorded), and detail."""

    label: str
    at: datetime | None
    detail: str = ""


def states(rec: Recording) -> list[Step]:
    """The recording's lifecycle as far as it went: created, stop requested, stopped (with the stop
    reason and the source's gaps), finished, failed, deleted."""
    steps = [Step("Created", rec.created_at, f"{rec.ingest} recording")]
    if rec.stop_requested_at:
        steps.append(Step("Stop requested", rec.stop_requested_at))
    for gap in rec.gaps or []:
        steps.append(Step("Source gap", None, _gap(gap)))
    if rec.stopped_at:
        steps.append(Step("Stopped", rec.stopped_at, rec.stop_reason or ""))
    if rec.finished_at:
        steps.append(Step("Finished", rec.finished_at, "final WebM stored and verified"))
    if rec.state == S.FAILED:
        steps.append(Step("Failed", None, rec.error or ""))
    if rec.deleted_at:
        steps.append(Step("Deleted", rec.deleted_at))
    return steps


def _gap(gap: Mapping[str, Any]) -> str:
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
    summary: str
    screenshot: str | None = None


def event_rows(events: Iterable[Mapping[str, Any]], video_start: float) -> list[EventRow]:
    """Rows for the event timeline from event dicts as `player.session_events` gives them (`id`,
    `type`, `timestamp` in Unix seconds, `offset` into the video or None, an optional `screenshot_path`,
    and per-type data). Without an offset, the time since `video_start` (Unix seconds) is used;
    offsets before the video starts are shown at 0."""
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
                _summary(data),
                event.get("screenshot_path"),
            )
        )
    return rows


def _summary(data: Mapping[str, Any], limit: int = 120) -> str:
    text = ", ".join(f"{k}: {v}" for k, v in data.items() if v not in (None, "", [], {}))
    return text if len(text) <= limit else text[: limit - 1] + "…"
