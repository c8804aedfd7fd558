"""Recordings as an operator reads them from the command line: a project's recent ones, and the facts
of one (times, size, why it failed, when retention destroys it, how many webhook deliveries it made).

A recording's kind is what it holds: "video" (pulled or pushed media), "replay" (a web replay), both
("video+replay"), or "events" (an interaction session that records events only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.errors import Unprocessable
from app.models import Ingest, Recording, RecordingState, ReplaySummary, WebhookDelivery, WebhookEvent
from app.runtime import Runtime
from app.services.core import recordings
from app.services.interactions import catalog
from app.services.outbox.outbox import RECORDING_UPDATE

S = RecordingState
RECENT = 20
LISTED_STATES = tuple(s.value for s in S if s != S.DELETED)
_REPLAY_OF = select(ReplaySummary.recording_id)


@dataclass(frozen=True)
class Listed:
    """A recording with its room's id (the caller's room key, None without a room) and its kind."""

    recording: Recording
    room: str | None
    kind: str


@dataclass(frozen=True)
class Facts(Listed):
    """`Listed` plus when retention destroys it (None: persisted or held) and its delivery attempts."""

    deletes_at: datetime | None
    deliveries: int


def kind_of(ingest: Ingest, has_replay: bool) -> str:
    """What a recording holds: video, replay, video+replay, or events."""
    video = ingest != Ingest.NONE
    if video and has_replay:
        return "video+replay"
    return "video" if video else ("replay" if has_replay else "events")


def recent(rt: Runtime, project_id: str, limit: int = RECENT, state: str | None = None) -> list[Listed]:
    """The project's live recordings, newest first, at most `limit`, in `state` when given."""
    has_replay = _REPLAY_OF.where(ReplaySummary.recording_id == Recording.id).exists()
    query = select(Recording, has_replay).where(
        Recording.project_id == project_id, Recording.state != S.DELETED
    )
    if state:
        if state not in LISTED_STATES:
            raise Unprocessable(f"state must be one of: {', '.join(LISTED_STATES)}")
        query = query.where(Recording.state == state)
    with rt.db.read() as s:
        rows = s.execute(query.order_by(Recording.created_at.desc(), Recording.id).limit(limit)).all()
    return [
        Listed(rec, rec.room.key if rec.room else None, kind_of(rec.ingest, replay)) for rec, replay in rows
    ]


def facts(rt: Runtime, project_id: str, recording_id: str) -> Facts:
    """One live recording of the project with its retention date and webhook delivery attempts;
    NotFound for unknown, foreign and deleted ids."""
    rec = recordings.get(rt, project_id, recording_id)
    with rt.db.read() as s:
        has_replay = s.scalar(_REPLAY_OF.where(ReplaySummary.recording_id == rec.id)) is not None
        deliveries = s.scalar(
            select(func.count(WebhookDelivery.id))
            .join(WebhookEvent, WebhookDelivery.event_id == WebhookEvent.id)
            .where(WebhookEvent.type == RECORDING_UPDATE, WebhookEvent.resource_id == rec.id)
        )
    exempt = rec.persist or rec.legal_hold
    days = catalog.retention_days(rt, project_id)
    return Facts(
        recording=rec,
        room=rec.room.key if rec.room else None,
        kind=kind_of(rec.ingest, has_replay),
        deletes_at=None if exempt else rec.created_at + timedelta(days=days),
        deliveries=deliveries or 0,
    )
