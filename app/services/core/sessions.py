"""Interaction sessions: recordings started without a room, by the sessions API.

A session is the same Recording a room recording is: same states, webhooks, retention and links. It
always collects interaction events; with a media source (a pull URL, or "push" for uploaded chunks) it
records video too, through the same capture and finalize. Without one, stopping it finishes it at once.
"""

from __future__ import annotations

from sqlalchemy import select

from app.models import Recording, RecordingState
from app.runtime import Runtime
from app.services.core import recordings
from app.services.ids import new_id
from app.services.outbox import outbox
from app.services.pipeline.sources import checked_source, is_push

S = RecordingState


def start(
    rt: Runtime, project_id: str, description: str | None, media_source: str | None = None
) -> Recording:
    """Start a session; with `media_source` its capture is enqueued (422 unsafe source, 503 no queue)."""
    source = checked_source(rt.config, media_source) if media_source else None
    ingest = "none" if source is None else ("push" if is_push(source) else "pull")
    recording_id = new_id()
    with rt.db.transaction() as s:
        s.add(
            Recording(
                id=recording_id,
                project_id=project_id,
                state=S.STARTED.value,
                media_source=source,
                ingest=ingest,
                description=description,
                created_at=rt.now(),
            )
        )
        outbox.recording_changed(rt, s, recording_id)
    recording = recordings.get(rt, project_id, recording_id)
    if ingest == "pull":
        recordings.enqueue_capture(rt, recording)
    return recording


def stop(rt: Runtime, project_id: str, recording_id: str) -> Recording:
    """Stop one of the project's recordings, whichever API started it; stopping again is a no-op."""
    recording = recordings.get(rt, project_id, recording_id)
    if recording.state == S.STARTED.value:
        recordings.stop_recording(rt, recording_id)
    return recordings.get(rt, project_id, recording_id)


def ids(rt: Runtime, project_id: str, limit: int | None = None, offset: int = 0) -> list[str]:
    """The project's recording ids (every kind, deleted ones left out), oldest first."""
    query = (
        select(Recording.id)
        .where(Recording.project_id == project_id, Recording.state != S.DELETED.value)
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
                    Recording.state == S.STARTED.value,
                    Recording.stop_requested_at.is_(None),
                )
                .order_by(Recording.created_at, Recording.id)
            )
        )
