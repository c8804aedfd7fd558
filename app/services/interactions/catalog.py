"""The project's web replays as catalogue entries: the recording, its replay summary (with the facts
computed at ingest), its metadata, who read it and when retention destroys it. One indexed query per
page, so PostHog's list of 10,000 recordings costs what a page of them costs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from app.errors import NotFound
from app.models import Project, Recording, RecordingMeta, RecordingState, ReplaySummary
from app.runtime import Runtime
from app.services.interactions import metadata, views

S = RecordingState
_NOT_FOUND = "Not found."


@dataclass(frozen=True)
class Entry:
    recording: Recording
    summary: ReplaySummary
    meta: dict[str, Any]  # metadata values by key
    viewers: list[tuple[str, str]]  # (key id, name) in order of first read
    retention_days: int | None  # None while persisted or held: retention does not destroy it
    expires_at: datetime | None


def _live(project_id: str) -> Any:
    return (
        select(Recording, ReplaySummary)
        .join(ReplaySummary, ReplaySummary.recording_id == Recording.id)
        .where(ReplaySummary.project_id == project_id, Recording.state != S.DELETED)
    )


def count(rt: Runtime, project_id: str) -> int:
    with rt.db.read() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(ReplaySummary)
                .join(Recording, Recording.id == ReplaySummary.recording_id)
                .where(ReplaySummary.project_id == project_id, Recording.state != S.DELETED)
            )
            or 0
        )


def page(rt: Runtime, project_id: str, limit: int, offset: int) -> tuple[int, list[Entry]]:
    """(how many live replays the project has, one page of them newest first)."""
    query = (
        _live(project_id)
        .order_by(ReplaySummary.created_at.desc(), ReplaySummary.recording_id.desc())
        .limit(limit)
        .offset(offset)
    )
    with rt.db.read() as s:
        rows = s.execute(query).all()
    return count(rt, project_id), _entries(rt, project_id, rows)


def entry(rt: Runtime, project_id: str, external_id: str) -> Entry:
    """The live replay the client's id names; NotFound for unknown, foreign or deleted ones."""
    with rt.db.read() as s:
        row = s.execute(_live(project_id).where(Recording.external_id == external_id)).one_or_none()
    if row is None:
        raise NotFound(_NOT_FOUND)
    return _entries(rt, project_id, [row])[0]


def entries(rt: Runtime, project_id: str, recording_ids: list[str]) -> list[Entry]:
    """The live replays among `recording_ids` (internal ids), in the order given."""
    if not recording_ids:
        return []
    with rt.db.read() as s:
        rows = s.execute(_live(project_id).where(Recording.id.in_(recording_ids))).all()
    by_id = {e.recording.id: e for e in _entries(rt, project_id, rows)}
    return [by_id[i] for i in recording_ids if i in by_id]


def summaries(rt: Runtime, project_id: str, limit: int) -> list[tuple[str, ReplaySummary]]:
    """(external id, summary) of the project's newest `limit` live replays."""
    with rt.db.read() as s:
        rows = s.execute(
            select(Recording.external_id, ReplaySummary)
            .join(ReplaySummary, ReplaySummary.recording_id == Recording.id)
            .where(ReplaySummary.project_id == project_id, Recording.state != S.DELETED)
            .order_by(ReplaySummary.created_at.desc())
            .limit(limit)
        ).all()
    return [(row[0], row[1]) for row in rows]


def _entries(rt: Runtime, project_id: str, rows: Sequence[Any]) -> list[Entry]:
    ids = [row[0].id for row in rows]
    meta = _meta(rt, ids)
    seen = views.viewers_of(rt, ids)
    days = retention_days(rt, project_id)
    found = []
    for recording, summary in rows:
        exempt = recording.persist or recording.legal_hold
        found.append(
            Entry(
                recording=recording,
                summary=summary,
                meta=meta.get(recording.id, {}),
                viewers=seen.get(recording.id, []),
                retention_days=None if exempt else days,
                expires_at=None if exempt else recording.created_at + timedelta(days=days),
            )
        )
    return found


def _meta(rt: Runtime, recording_ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = defaultdict(dict)
    if not recording_ids:
        return found
    with rt.db.read() as s:
        for row in s.scalars(select(RecordingMeta).where(RecordingMeta.recording_id.in_(recording_ids))):
            found[row.recording_id][row.key] = metadata.value_of(row)
    return found


def retention_days(rt: Runtime, project_id: str) -> int:
    """The days after which the project's recordings are destroyed (its override, else the default)."""
    with rt.db.read() as s:
        days = s.scalar(select(Project.retention_days).where(Project.id == project_id))
    return days if days and days > 0 else rt.config.retention_days
