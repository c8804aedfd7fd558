"""The project's web replays as catalogue entries: the recording, its replay summary (with the facts
computed at ingest), its metadata, who read it and when retention destroys it.

A page costs what a page costs whatever the project's size: its ids come from the
(project, created_at, recording_id) index alone, then one query loads those rows, one their metadata
and one their viewers; the total is a count of the project's summaries (a deleted recording's summary
goes with it, in the deletion's transaction).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import defer, noload

from app.errors import NotFound
from app.models import Project, Recording, RecordingMeta, RecordingState, ReplaySummary
from app.runtime import Runtime
from app.services.interactions import metadata, replay_insights, views
from app.services.interactions.replays import EXTERNAL_ID

S = RecordingState
_NOT_FOUND = "Not found."
SIMILAR_CANDIDATES = 5000  # the newest replays similar_sessions compares with


@dataclass(frozen=True)
class Entry:
    recording: Recording
    summary: ReplaySummary
    meta: dict[str, Any]  # metadata values by key
    viewers: list[tuple[str, str]]  # (key id, name) in order of first read
    retention_days: int | None  # None while persisted or held: retention does not destroy it
    expires_at: datetime | None

    def viewed_by(self, key_id: str) -> Entry:
        """This entry once `key_id` has read it."""
        if any(viewer == key_id for viewer, _ in self.viewers):
            return self
        return replace(self, viewers=[*self.viewers, (key_id, "")])


def _rows(project_id: str | None) -> Any:
    """Live replays (of the project, unless None) with their recordings (the recording's own relations
    not loaded)."""
    query = (
        select(Recording, ReplaySummary)
        .join(ReplaySummary, ReplaySummary.recording_id == Recording.id)
        .where(Recording.state != S.DELETED)
        .options(noload(Recording.room), noload(Recording.participant), defer(ReplaySummary.activity))
    )
    return query if project_id is None else query.where(ReplaySummary.project_id == project_id)


def count(rt: Runtime, project_id: str) -> int:
    with rt.db.read() as s:
        found = s.scalar(select(func.count()).where(ReplaySummary.project_id == project_id))
    return int(found or 0)


def page(rt: Runtime, project_id: str, limit: int, offset: int) -> tuple[int, list[Entry]]:
    """(how many replays the project has, one page of them newest first)."""
    with rt.db.read() as s:
        ids = list(
            s.scalars(
                select(ReplaySummary.recording_id)
                .where(ReplaySummary.project_id == project_id)
                .order_by(ReplaySummary.created_at.desc(), ReplaySummary.recording_id.desc())
                .limit(limit)
                .offset(offset)
            )
        )
    return count(rt, project_id), entries(rt, project_id, ids)


def locate(rt: Runtime, project_id: str, external_id: str) -> Recording:
    """The live replay the client's id names (the recording row alone); NotFound for unknown, foreign
    or deleted ones."""
    if not EXTERNAL_ID.fullmatch(external_id):
        raise NotFound(_NOT_FOUND)
    with rt.db.read() as s:
        found = s.execute(_by_external(project_id, [external_id])).one_or_none()
    if found is None:
        raise NotFound(_NOT_FOUND)
    return found[0]


def entry(rt: Runtime, project_id: str, external_id: str) -> Entry:
    """The live replay the client's id names, in full; NotFound for unknown, foreign or deleted ones."""
    found = by_external_ids(rt, project_id, [external_id])
    if not found:
        raise NotFound(_NOT_FOUND)
    return found[0]


def by_external_ids(rt: Runtime, project_id: str, external_ids: list[str]) -> list[Entry]:
    """The live replays among the client ids given (unknown ones left out), in the order given."""
    wanted = [i for i in dict.fromkeys(external_ids) if EXTERNAL_ID.fullmatch(i)]
    return _in_order(
        rt, project_id, _by_external(project_id, wanted), wanted, lambda e: e.recording.external_id
    )


def entries(rt: Runtime, project_id: str, recording_ids: list[str]) -> list[Entry]:
    """The live replays among `recording_ids` (internal ids), in the order given."""
    # By primary key only: with the project in the WHERE clause SQLite walks the project's index instead.
    # The project is checked on the rows read (ids come from project-scoped queries anyway).
    query = _rows(None).where(Recording.id.in_(recording_ids))
    return _in_order(rt, project_id, query, recording_ids, lambda e: e.recording.id)


def _by_external(project_id: str, external_ids: list[str]) -> Any:
    """The replays the client ids name, read through the (project, external id) unique index."""
    return _rows(project_id).where(
        Recording.project_id == project_id, Recording.external_id.in_(external_ids)
    )


def _in_order(
    rt: Runtime, project_id: str, query: Any, ids: list[str], id_of: Callable[[Entry], str]
) -> list[Entry]:
    if not ids:
        return []
    with rt.db.read() as s:
        rows = [row for row in s.execute(query).all() if row[1].project_id == project_id]
    found = {id_of(e): e for e in _entries(rt, project_id, rows)}
    return [found[i] for i in ids if i in found]


def similar(rt: Runtime, project_id: str, entry: Entry, limit: int) -> list[tuple[float, Entry]]:
    """The project's replays most like `entry` (`replay_insights.similarity`), most similar first,
    among its newest SIMILAR_CANDIDATES."""
    columns = (
        ReplaySummary.recording_id,
        ReplaySummary.click_count,
        ReplaySummary.keypress_count,
        ReplaySummary.mouse_activity_count,
        ReplaySummary.console_error_count,
        ReplaySummary.active_ms,
        ReplaySummary.first_timestamp,
        ReplaySummary.last_timestamp,
        ReplaySummary.pages,
    )
    with rt.db.read() as s:
        rows = s.execute(
            select(*columns)
            .where(ReplaySummary.project_id == project_id, ReplaySummary.recording_id != entry.recording.id)
            .order_by(ReplaySummary.created_at.desc())
            .limit(SIMILAR_CANDIDATES)
        ).all()
    target = profile(entry.summary)
    scored = sorted(
        ((replay_insights.similarity(target, profile(row)), row.recording_id) for row in rows),
        key=lambda pair: (-pair[0], pair[1]),
    )[:limit]
    found = {e.recording.id: e for e in entries(rt, project_id, [rid for _, rid in scored])}
    return [(score, found[rid]) for score, rid in scored if rid in found]


def profile(summary: Any) -> replay_insights.Profile:
    """The action profile of a summary row (or any row with its counters, timestamps and pages)."""
    return replay_insights.profile_of(
        summary.click_count,
        summary.keypress_count,
        summary.mouse_activity_count,
        summary.console_error_count,
        summary.active_ms,
        duration_ms(summary),
        summary.pages,
    )


def duration_ms(summary: Any) -> int:
    """From the replay's first event to its last."""
    return max(0, (summary.last_timestamp or 0) - (summary.first_timestamp or 0))


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
        rows = s.execute(
            select(RecordingMeta.recording_id, RecordingMeta.key, RecordingMeta.value).where(
                RecordingMeta.recording_id.in_(recording_ids)
            )
        ).all()
    for recording_id, key, value in rows:
        found[recording_id][key] = metadata.decode(value)
    return found


def project(rt: Runtime, project_id: str) -> Project:
    """The project; NotFound when there is none by that id."""
    with rt.db.read() as s:
        found = s.get(Project, project_id)
    if found is None:
        raise NotFound(_NOT_FOUND)
    return found


def retention_days(rt: Runtime, project_id: str) -> int:
    """The days after which the project's recordings are destroyed (its override, else the default,
    as `retention.expired_ids` reads them)."""
    with rt.db.read() as s:
        days = s.scalar(select(Project.retention_days).where(Project.id == project_id))
    return days if days and days > 0 else rt.config.retention_days
