"""What a recording's pages say about its media and its retention, in an operator's words.

How media got in (pulled by a capture, pushed by the meeting app, or absent), what the capture went
through (its jobs, its interruptions, the segments or chunks stored), where the final video skips a
stretch the source did not deliver, and when retention deletes the recording, or why it keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from app.console.steps import gap_text
from app.models import Ingest, Recording, RecordingState, Segment
from app.runtime import Runtime
from app.services.interactions import catalog

S = RecordingState
MEDIA = {Ingest.PULL: "pulled", Ingest.PUSH: "pushed", Ingest.NONE: "absent"}
MEDIA_HINT = {
    Ingest.PULL: "captured by meetrec from the source",
    Ingest.PUSH: "uploaded by the meeting app",
    Ingest.NONE: "events only: nothing to play",
}
LOST_SOURCE = "no media came from the source"


@dataclass(frozen=True)
class Kept:
    """A recording under retention: `kept` names what exempts it ("persisted", "legal hold"), else it
    is deleted at `deletes_at`; `due` once that has passed (the next purge deletes it)."""

    kept: str | None
    deletes_at: datetime | None = None
    due: bool = False


@dataclass(frozen=True)
class Retention:
    """The project's retention as of `now`."""

    days: int
    now: datetime

    def of(self, rec: Recording) -> Kept:
        if rec.legal_hold:
            return Kept("legal hold")
        if rec.persist:
            return Kept("persisted")
        at = rec.created_at + timedelta(days=self.days)
        return Kept(None, at, at <= self.now)


def retention(rt: Runtime, project_id: str) -> Retention:
    """The project's retention (its override, else MEETREC_RETENTION_DAYS) as of now."""
    return Retention(catalog.retention_days(rt, project_id), rt.now())


@dataclass(frozen=True)
class Received:
    """The media stored while recording: a capture's segments, or the chunks a meeting app pushed
    (finalize joins them and deletes their objects; their rows stay)."""

    count: int
    bytes: int
    seconds: float
    last_at: datetime | None


@dataclass(frozen=True)
class Ingested:
    """How media got into a recording and what happened on the way."""

    how: str  # MEDIA: "pulled", "pushed" or "absent"
    hint: str  # MEDIA_HINT
    received: Received | None  # None without media
    capture_jobs: str | None  # `capture_jobs`, for a pull recording
    interruptions: list[str]  # each of its `gaps` in words
    video_gaps: list[VideoGap]


def ingested(rt: Runtime, rec: Recording) -> Ingested:
    """What the recording page says about the recording's media (one query, for its segments)."""
    return Ingested(
        MEDIA[rec.ingest],
        MEDIA_HINT[rec.ingest],
        received(rt, rec.id) if rec.ingest != Ingest.NONE else None,
        capture_jobs(rec) if rec.ingest == Ingest.PULL else None,
        [gap_text(g) for g in rec.gaps or [] if isinstance(g, dict)],
        video_gaps(rec),
    )


def received(rt: Runtime, recording_id: str) -> Received:
    """The recording's segments or chunks in one aggregate query."""
    with rt.db.read() as s:
        row = s.execute(
            select(
                func.count(Segment.id),
                func.coalesce(func.sum(Segment.size), 0),
                func.coalesce(func.sum(Segment.duration), 0.0),
                func.max(Segment.created_at),
            ).where(Segment.recording_id == recording_id)
        ).one()
    count, size, seconds, last_at = row
    return Received(int(count), int(size), float(seconds or 0.0), last_at)


def capture_jobs(rec: Recording) -> str:
    """How many capture jobs recorded a pull recording, and why more than one did."""
    jobs = rec.capture_attempts or 0
    if jobs == 0:
        return "none yet: waiting for a capture worker" if rec.state == S.STARTED else "none ran"
    if jobs == 1:
        return "1"
    again = jobs - 1
    return f"{jobs} (handed over or resumed {again} time{'' if again == 1 else 's'})"


@dataclass(frozen=True)
class VideoGap:
    """Where the final video skips time: at `at` seconds into it, `lost` seconds of the meeting (None
    when unknown) were not recorded, for `reason`."""

    at: float
    lost: float | None
    reason: str


def video_gaps(rec: Recording) -> list[VideoGap]:
    """The stretches the final video skips, from its timeline (a new span starts after each one); the
    reasons are the recording's `gaps` when they pair up with the spans one to one."""
    spans: Sequence[Sequence[float]] = rec.timeline or []
    noted: list[dict[str, Any]] = [g for g in rec.gaps or [] if isinstance(g, dict)]
    paired = len(noted) == len(spans) - 1
    found = []
    for n, (prev, span) in enumerate(zip(spans, spans[1:], strict=False)):
        lost: float | None = max(0.0, float(span[0]) - (float(prev[0]) + float(prev[2])))
        reason = LOST_SOURCE
        if paired:
            gap = noted[n]
            reason = str(gap.get("reason") or "reconnected")
            seconds = gap.get("seconds")
            lost = float(seconds) if isinstance(seconds, int | float) else lost
        found.append(VideoGap(float(span[1]), lost, reason))
    return found
