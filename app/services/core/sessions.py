"""Interaction sessions: recordings started without a room, by the sessions API.

A session is the same Recording a room recording is: same states, webhooks, retention and links. It
always collects interaction events; with a media source (a pull URL, or "push" for uploaded chunks) it
records video too, through the same capture and finalize. Without one, stopping it finishes it at once.
"""

from __future__ import annotations

from sqlalchemy import select

from app.models import Ingest, Recording, RecordingState
from app.runtime import Runtime
from app.services.core import recordings
from app.services.core.sources import checked_source

S = RecordingState


def start(
    rt: Runtime, project_id: str, description: str | None, media_source: str | None = None
) -> Recording:
    """Start a session; with `media_source` its capture is enqueued (422 unsafe source, 503 no queue)."""
    source = checked_source(rt.config, media_source) if media_source else None
    with rt.db.transaction() as s:
        recording = recordings.create(rt, s, project_id, source, description=description)
    if recording.ingest == Ingest.PULL:
        recordings.enqueue_capture(rt, recording)
    return recording


def stop(rt: Runtime, project_id: str, recording_id: str) -> Recording:
    """Stop one of the project's recordings, whichever API started it; stopping again is a no-op."""
    recording = recordings.get(rt, project_id, recording_id)
    if recording.state == S.STARTED:
        return recordings.stop_recording(rt, recording_id) or recording
    return recording


def ids(rt: Runtime, project_id: str, limit: int | None = None, offset: int = 0) -> list[str]:
    """The project's recording ids (every kind, deleted ones left out), oldest first."""
    query = (
        select(Recording.id)
        .where(Recording.project_id == project_id, Recording.state != S.DELETED)
        .order_by(Recording.created_at, Recording.id)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    with rt.db.read() as s:
        return list(s.scalars(query))


def active_ids(rt: Runtime, project_id: str) -> list[str]:
    """The project's recordings still running (started, no stop asked for), oldest first."""
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(Recording.id)
                .where(
                    Recording.project_id == project_id,
                    Recording.state == S.STARTED,
                    Recording.stop_requested_at.is_(None),
                )
                .order_by(Recording.created_at, Recording.id)
            )
        )
