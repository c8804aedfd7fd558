"""Recordings: start, stop, lifecycle transitions, reads and deletion.

Every transition is a conditional update (`UPDATE ... WHERE state = :expected`): when two workers race,
exactly one moves the recording and the other sees `False` and backs off.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session

from app.errors import ApiError, Conflict, NotFound
from app.models import Participant, Recording, RecordingState, Room, SessionEvent
from app.queueing import FINALIZE, capture_spec
from app.runtime import Runtime
from app.services.core import rooms
from app.services.ids import new_id
from app.services.outbox import outbox
from app.services.pipeline import segments
from app.services.pipeline.sources import checked_source, is_push

S = RecordingState
PAGE_SIZE = 25


class RecordingNotAvailable(ApiError):
    status = 405


class NotAcceptable(ApiError):
    status = 406


def stop_signal_key(recording_id: str) -> str:
    return f"meetrec:stop:{recording_id}"


def object_prefix(recording_id: str) -> str:
    return f"recordings/{recording_id}/"


def start(rt: Runtime, access_key: str, media_source: str | None = None) -> Recording:
    """Start recording the participant's meeting and enqueue its capture.

    404 unknown access key, 410 meeting shut down, 405 recording not available in this room,
    406 a recording is already running or the room has no media source, 422 unsafe source.
    """
    participant = rooms.by_access_key(rt, access_key)
    room = participant.room
    if not room.recording_available:
        raise RecordingNotAvailable("recording is not available in this room")
    source = media_source or room.media_source
    if not source:
        raise NotAcceptable("the room has no media source (set options[media_source])")
    source = checked_source(rt.config, source)
    recording = _claim_room(rt, room, participant, source)
    if recording.ingest == "pull":  # pushed media is uploaded by the meeting app: nothing to capture
        enqueue_capture(rt, recording)
    return recording


def enqueue_capture(rt: Runtime, recording: Recording) -> None:
    """Enqueue the capture of a new pull recording; 503 (and the recording failed) when Redis is down."""
    try:
        job = rt.jobs.enqueue(
            capture_spec(rt.config.max_recording_seconds), recording.id, job_id=f"capture-{recording.id}"
        )
    except Exception as e:  # Redis unreachable: do not leave a recording nobody will capture
        fail(rt, recording.id, f"could not enqueue the capture: {e}")
        raise ApiError("the job queue is unavailable, try again", status=503) from e
    with rt.db.transaction() as s:
        s.execute(update(Recording).where(Recording.id == recording.id).values(job_id=job.id))


def resume_capture(rt: Runtime, recording_id: str) -> bool:
    """Enqueue a new capture job for a started pull recording whose job was lost (a dead worker, a
    flushed Redis). The new job waits for the old lease to expire, adopts what was spooled on this
    machine and continues the segment numbering. False when there is nothing to resume."""
    recording = load(rt, recording_id)
    if recording is None or recording.state != S.STARTED.value or recording.ingest != "pull":
        return False
    job = rt.jobs.enqueue(
        capture_spec(rt.config.max_recording_seconds),
        recording_id,
        job_id=f"capture-{recording_id}-{new_id()[:8]}",
    )
    with rt.db.transaction() as s:
        s.execute(update(Recording).where(Recording.id == recording_id).values(job_id=job.id))
    return True


def _claim_room(rt: Runtime, room: Room, participant: Participant, source: str) -> Recording:
    recording_id = new_id()
    with rt.db.transaction() as s:
        claimed = s.execute(
            update(Room)
            .where(Room.id == room.id, Room.active_recording_id.is_(None), Room.shutdown_at.is_(None))
            .values(active_recording_id=recording_id)
        ).rowcount
        if not claimed:
            raise NotAcceptable("a recording is already running in this room")
        recording = Recording(
            id=recording_id,
            project_id=room.project_id,
            room_id=room.id,
            participant_id=participant.id,
            state=S.STARTED.value,
            media_source=source,
            ingest="push" if is_push(source) else "pull",
            created_at=rt.now(),
        )
        s.add(recording)
        outbox.recording_changed(rt, s, recording_id)
    return get(rt, room.project_id, recording_id)


def stop(rt: Runtime, access_key: str) -> Recording:
    """Ask the running recording of the participant's meeting to stop. 404 when none runs, 410 shut down."""
    participant = rooms.by_access_key(rt, access_key)
    recording_id = participant.room.active_recording_id
    if recording_id is None:
        raise NotFound("no recording is running in this room")
    stop_recording(rt, recording_id)
    return get(rt, participant.room.project_id, recording_id)


def stop_recording(rt: Runtime, recording_id: str, reason: str | None = None) -> None:
    """Stop a recording: a capture is signalled (it moves the recording to stopped itself), a pushed
    recording is stopped here. `reason` is kept when something other than a stop call stops it."""
    if request_stop(rt, recording_id) and reason:
        with rt.db.transaction() as s:
            s.execute(update(Recording).where(Recording.id == recording_id).values(stop_reason=reason[:200]))
    recording = load(rt, recording_id)
    if recording is not None and recording.ingest == "push":
        _finish_push(rt, recording)
    elif recording is not None and recording.ingest == "none":
        finish_events_only(rt, recording)


def finish_events_only(rt: Runtime, recording: Recording) -> None:
    """A session without media after its stop: stopped, then finished at once (nothing to assemble);
    its duration is the wall time from start to the stop request."""
    ended = recording.stop_requested_at or rt.now()
    duration = max(0.0, (ended - recording.created_at).total_seconds())
    _transition(rt, recording.id, (S.STARTED,), state=S.STOPPED.value, duration=duration, stopped_at=rt.now())
    _transition(rt, recording.id, (S.STOPPED,), state=S.FINISHED.value, finished_at=rt.now())


def _finish_push(rt: Runtime, recording: Recording) -> None:
    """A pushed recording after its stop: stopped when chunks arrived (the duration is the wall time
    until finalize measures it exactly), failed when none did."""
    if segments.next_seq(rt, recording.id) == 0:
        fail(rt, recording.id, "no media was uploaded before the stop")
        return
    elapsed = (rt.now() - recording.created_at).total_seconds()
    mark_stopped(rt, recording.id, max(0.0, elapsed))


def request_stop(rt: Runtime, recording_id: str) -> bool:
    """Record the stop request in SQL, free the room, and signal the capture through Redis."""
    with rt.db.transaction() as s:
        changed = s.execute(
            update(Recording)
            .where(
                Recording.id == recording_id,
                Recording.state == S.STARTED.value,
                Recording.stop_requested_at.is_(None),
            )
            .values(stop_requested_at=rt.now())
        ).rowcount
        _release_room(s, recording_id)
    try:
        rt.redis.set(stop_signal_key(recording_id), "1", ex=24 * 3600)
    except Exception:  # noqa: BLE001 - the capture also polls SQL, Redis only makes it faster
        pass
    return bool(changed)


def _release_room(s: Session, recording_id: str) -> None:
    s.execute(update(Room).where(Room.active_recording_id == recording_id).values(active_recording_id=None))


def stop_requested(rt: Runtime, recording_id: str) -> bool:
    """True when a stop was asked for (Redis fast path, SQL as the truth)."""
    try:
        if rt.redis.exists(stop_signal_key(recording_id)):
            return True
    except Exception:  # noqa: BLE001 - Redis down: fall through to SQL
        pass
    with rt.db.read() as s:
        row = s.execute(
            select(Recording.stop_requested_at, Recording.state).where(Recording.id == recording_id)
        ).one_or_none()
    return row is None or row.stop_requested_at is not None or row.state != S.STARTED.value


def _transition(rt: Runtime, recording_id: str, expected: tuple[S, ...], **values: object) -> bool:
    with rt.db.transaction() as s:
        changed = s.execute(
            update(Recording)
            .where(Recording.id == recording_id, Recording.state.in_([e.value for e in expected]))
            .values(**values)
        ).rowcount
        if changed and values.get("state") in (S.FAILED.value, S.DELETED.value, S.STOPPED.value):
            _release_room(s, recording_id)
        if changed and values.get("state") == S.DELETED.value:
            _forget_events(s, [recording_id])
        if changed:
            outbox.recording_changed(rt, s, recording_id)
    return bool(changed)


def mark_stopped(
    rt: Runtime,
    recording_id: str,
    duration: float,
    *,
    reason: str | None = None,
    gaps: list[dict[str, object]] | None = None,
) -> bool:
    """started -> stopped with the recorded duration; enqueues finalize when this call moved it.

    `reason` says why it stopped other than by a stop call (the maximum duration, the source ended).
    """
    values: dict[str, object] = {"state": S.STOPPED.value, "duration": duration, "stopped_at": rt.now()}
    if reason:
        values["stop_reason"] = reason[:200]
    if gaps is not None:
        values.update(gaps=gaps, reconnects=len(gaps))
    moved = _transition(rt, recording_id, (S.STARTED,), **values)
    if moved:
        enqueue_finalize(rt, recording_id)
    return moved


def finalize_job_id(recording_id: str) -> str:
    return f"finalize-{recording_id}"


def enqueue_finalize(rt: Runtime, recording_id: str) -> None:
    rt.jobs.enqueue(FINALIZE, recording_id, job_id=finalize_job_id(recording_id))


def note_gaps(rt: Runtime, recording_id: str, gaps: list[dict[str, object]]) -> None:
    """Record where a pull source dropped and was reconnected (visible while still recording)."""
    with rt.db.transaction() as s:
        s.execute(
            update(Recording)
            .where(Recording.id == recording_id, Recording.state == S.STARTED.value)
            .values(gaps=list(gaps), reconnects=len(gaps))
        )


def mark_finished(
    rt: Runtime,
    recording_id: str,
    *,
    key: str,
    size: int,
    sha256: str,
    duration: float,
    poster_key: str | None = None,
    timeline: list[list[float]] | None = None,
) -> bool:
    """stopped -> finished: the final object is in place and verified; its exact duration replaces the
    one measured at stop. `timeline` maps wall time into the video (see app.services.pipeline.timeline)."""
    return _transition(
        rt,
        recording_id,
        (S.STOPPED,),
        state=S.FINISHED.value,
        finished_at=rt.now(),
        object_key=key,
        size=size,
        sha256=sha256,
        duration=duration,
        poster_key=poster_key,
        timeline=timeline,
    )


def fail(rt: Runtime, recording_id: str, reason: str) -> bool:
    """started|stopped -> failed with a reason."""
    return _transition(rt, recording_id, (S.STARTED, S.STOPPED), state=S.FAILED.value, error=reason[:4000])


def load(rt: Runtime, recording_id: str) -> Recording | None:
    """A recording by id, whatever its project or state (for jobs)."""
    with rt.db.read() as s:
        return s.get(Recording, recording_id)


def get(rt: Runtime, project_id: str, recording_id: str) -> Recording:
    """A live recording of this project; 404 for unknown, foreign or deleted ids."""
    with rt.db.read() as s:
        recording = s.scalar(_LIVE_RECORDING, {"recording_id": recording_id, "project_id": project_id})
    if recording is None:
        raise NotFound("recording not found")
    return recording


# Built once: the hottest read of the API (every recording and session call starts with it).
_LIVE_RECORDING = select(Recording).where(
    Recording.id == bindparam("recording_id"),
    Recording.project_id == bindparam("project_id"),
    Recording.state != S.DELETED.value,
)


def list_for_room(
    rt: Runtime, project_id: str, room_key: str, page: int = 1, started_at: datetime | None = None
) -> list[Recording]:
    """A room id's recordings, newest first, 25 a page; `started_at` picks the meeting running then."""
    instances = rooms.instances(rt, project_id, room_key)
    if started_at is not None:
        instances = [
            r for r in instances if r.started_at <= started_at and (r.shutdown_at or started_at) >= started_at
        ]
    ids = [r.id for r in instances]
    if not ids:
        return []
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(Recording)
                .where(Recording.room_id.in_(ids), Recording.state != S.DELETED.value)
                .order_by(Recording.created_at.desc(), Recording.id)
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            )
        )


def delete(rt: Runtime, project_id: str, recording_id: str) -> None:
    """Stop it if it runs, delete its objects, tombstone the row. Then `get` answers 404.

    409 while it is under legal hold (only an admin key lifts it; see `retention.set_flags`).

    Objects go first: when storage is down the call fails (503) and the recording stays intact.
    A capture still uploading sees the tombstone and removes what it uploads.
    """
    recording = get(rt, project_id, recording_id)
    if recording.legal_hold:
        raise Conflict("the recording is under legal hold; an admin key must lift the hold first")
    if recording.state == S.STARTED.value:
        request_stop(rt, recording_id)
    rt.storage.delete_prefix(object_prefix(recording_id))  # StorageError: the API answers 503
    _transition(
        rt,
        recording_id,
        (S.STARTED, S.STOPPED, S.FINISHED, S.FAILED),
        state=S.DELETED.value,
        deleted_at=rt.now(),
    )


def tombstone_many(rt: Runtime, recording_ids: list[str]) -> list[str]:
    """finished|failed -> deleted for many recordings in one transaction (retention), each with its
    `recording_update` event; returns the ids this call moved. Their objects must be gone already."""
    ended = [S.FINISHED.value, S.FAILED.value]
    with rt.db.transaction() as s:
        moved = list(
            s.scalars(
                update(Recording)
                .where(Recording.id.in_(recording_ids), Recording.state.in_(ended))
                .values(state=S.DELETED.value, deleted_at=rt.now())
                .returning(Recording.id)
                .execution_options(synchronize_session=False)
            )
        )
        _forget_events(s, moved)
        for recording_id in moved:
            outbox.recording_changed(rt, s, recording_id)
    return moved


def _forget_events(s: Session, recording_ids: list[str]) -> None:
    """A deleted recording's interaction events go with it (their screenshots went with its objects)."""
    if recording_ids:
        s.execute(sql_delete(SessionEvent).where(SessionEvent.recording_id.in_(recording_ids)))


def download_link(rt: Runtime, recording: Recording) -> str | None:
    """A fresh presigned link valid for the configured TTL (one hour), or None until finished."""
    if recording.state != S.FINISHED.value or not recording.object_key:
        return None
    return rt.storage.presign_get(
        recording.object_key, rt.config.link_ttl_seconds, filename=f"{recording.id}.webm"
    )


def poster_link(rt: Runtime, recording: Recording) -> str | None:
    """A fresh presigned link to the poster JPEG, or None until finished."""
    if recording.state != S.FINISHED.value or not recording.poster_key:
        return None
    return rt.storage.presign_get(recording.poster_key, rt.config.link_ttl_seconds)
