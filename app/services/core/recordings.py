"""The recording core: create, stop, move through the lifecycle, read and delete any kind of recording.

Room recordings (app.services.core.room_recordings), interaction sessions (sessions) and, later, web
replays are all rows made by `create` and moved only by the transitions of `lifecycle`.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.orm import Session

from app.db import InTransaction, Prepared, affected, table_of
from app.errors import Conflict, NotFound, QueueError, StorageError, Unavailable
from app.models import Ingest, Participant, Recording, RecordingState, Room, Segment
from app.queueing import FINALIZE, capture_spec
from app.runtime import Runtime
from app.services.core import lifecycle, push_clock, rows
from app.services.core.sources import is_push
from app.services.ids import new_id
from app.services.outbox import outbox

log = logging.getLogger(__name__)
S = RecordingState


def object_prefix(recording_id: str) -> str:
    return f"recordings/{recording_id}/"


def create(
    rt: Runtime,
    s: InTransaction,
    project_id: str,
    media_source: str | None,
    *,
    recording_id: str | None = None,
    external_id: str | None = None,
    description: str | None = None,
    room: Room | None = None,
    participant: Participant | None = None,
) -> Recording:
    """Add a started recording of any kind and its `recording_update` event to `s`'s transaction.

    `media_source` is a checked pull URL, "push", or None for a recording of events only. The external
    id defaults to the recording's own id; one the client made must be unique in its project. A pull
    recording carries its capture's job id from the start: `enqueue_capture` enqueues it after the
    commit. A room recording names its `room` and the `participant` who started it.

    The row is inserted at once (IntegrityError here, not at the commit), and returned as stored
    (detached, its room and participant with it); its event shows it from those same values.
    """
    values = started_row(rt, project_id, media_source, recording_id or new_id(), external_id, description)
    values["room_id"] = room.id if room else None
    values["participant_id"] = participant.id if participant else None
    recording = rows.RECORDING_ROWS.load(_INSERT.run(s, values).one(), room=room, participant=participant)
    outbox.recording_started(rt, s, recording)
    return recording


_INSERT = Prepared(insert(table_of(Recording)).returning(*rows.RECORDING_ROWS.columns))


# The columns `started_row` sets; the others take their defaults.
STARTED_COLUMNS = frozenset((
    "id", "external_id", "project_id", "state", "media_source", "ingest", "job_id", "description",
    "created_at",
))  # fmt: skip


def started_row(
    rt: Runtime,
    project_id: str,
    media_source: str | None,
    recording_id: str,
    external_id: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """The columns `create` sets on a new started recording (no room or participant): `STARTED_COLUMNS`."""
    ingest = ingest_of(media_source)
    return {
        "id": recording_id,
        "external_id": external_id or recording_id,
        "project_id": project_id,
        "state": S.STARTED,
        "media_source": media_source,
        "ingest": ingest,
        "job_id": capture_job_id(recording_id) if ingest == Ingest.PULL else None,
        "description": description,
        "created_at": rt.now(),
    }


def ingest_of(media_source: str | None) -> Ingest:
    """How media gets into a recording with this (checked) source."""
    if media_source is None:
        return Ingest.NONE
    return Ingest.PUSH if is_push(media_source) else Ingest.PULL


def capture_job_id(recording_id: str) -> str:
    return f"capture-{recording_id}"


def enqueue_capture(rt: Runtime, recording: Recording) -> None:
    """Enqueue the capture of a new pull recording, once the transaction that made it has committed
    (a job must find its row). The row names the job already, so when this process dies before the
    enqueue the reconciler finds no such job and enqueues one. 503 (and the recording failed) when
    Redis refuses it."""
    try:
        rt.jobs.enqueue(
            capture_spec(rt.config.max_recording_seconds), recording.id, job_id=capture_job_id(recording.id)
        )
    except QueueError as e:  # Redis unreachable: do not leave a recording nobody will capture
        fail(rt, recording.id, f"could not enqueue the capture: {e}")
        raise Unavailable("the job queue is unavailable, try again") from e


def resume_capture(rt: Runtime, recording_id: str) -> bool:
    """Enqueue a new capture job for a started pull recording whose job was lost (a dead worker, a
    flushed Redis). The new job waits for the old lease to expire, adopts what was spooled on this
    machine and continues the segment numbering. False when there is nothing to resume."""
    recording = load(rt, recording_id)
    if recording is None or recording.state != S.STARTED or recording.ingest != Ingest.PULL:
        return False
    job_id = rt.jobs.enqueue(
        capture_spec(rt.config.max_recording_seconds),
        recording_id,
        job_id=f"capture-{recording_id}-{new_id()[:8]}",
    )
    with rt.db.transaction() as s:
        s.execute(update(Recording).where(Recording.id == recording_id).values(job_id=job_id))
    return True


def stop_recording(rt: Runtime, recording_id: str, reason: str | None = None) -> Recording | None:
    """Stop a recording: a capture is signalled (it moves the recording to stopped itself), a pushed
    recording is stopped here. `reason` is kept when something other than a stop call stops it.
    Returns the recording as it stands after (None when unknown)."""
    with rt.db.transaction() as s:
        ask_stop(rt, s, recording_id, reason)
        recording = rows.recording(s, recording_id)
    return carry_out_stop(rt, recording)


def carry_out_stop(rt: Runtime, recording: Recording | None) -> Recording | None:
    """What follows a committed stop request (`ask_stop`): the capture is signalled through Redis, a
    pushed or events-only recording is stopped here. Returns the recording as it stands after."""
    if recording is None:
        return None
    _signal_stop(rt, recording.id)
    if recording.ingest == Ingest.PUSH:
        _finish_push(rt, recording)
    elif recording.ingest == Ingest.NONE:
        finish_events_only(rt, recording)
    else:
        return recording  # the capture moves it on; nothing else changed here
    return load(rt, recording.id)


def finish_events_only(rt: Runtime, recording: Recording) -> None:
    """A session without media after its stop: stopped, then finished at once (nothing to assemble);
    its duration is the wall time from start to the stop request."""
    ended = recording.stop_requested_at or rt.now()
    duration = max(0.0, (ended - recording.created_at).total_seconds())
    with rt.db.transaction() as s:
        lifecycle.apply(rt, s, lifecycle.STOP, [recording.id], duration=duration, stopped_at=rt.now())
        lifecycle.apply(rt, s, lifecycle.FINISH, [recording.id], finished_at=rt.now())


def _finish_push(rt: Runtime, recording: Recording) -> None:
    """A pushed recording after its stop: stopped when chunks arrived, failed when none did.

    Every chunk acknowledged before the stop is visible here (see `segments.record_pushed`). The
    duration is the media's, read off the chunks' timestamps (`push_clock`); only chunks that do not
    read as a live WebM stream get the wall time since the start, an estimate finalize replaces.
    """
    if recording.state != S.STARTED:
        return  # another stop call got here first
    if not _has_media(rt, recording.id):
        fail(rt, recording.id, "no media was uploaded before the stop")
        return
    seconds = push_clock.media_seconds(rt, recording.id)
    if seconds is None:
        seconds = max(0.0, ((recording.stop_requested_at or rt.now()) - recording.created_at).total_seconds())
    mark_stopped(rt, recording.id, seconds)


def _has_media(rt: Runtime, recording_id: str) -> bool:
    with rt.db.read() as s:
        return bool(s.scalar(select(exists().where(Segment.recording_id == recording_id))))


def request_stop(rt: Runtime, recording_id: str) -> bool:
    """Record the stop request in SQL, free the room, and signal the capture through Redis."""
    with rt.db.transaction() as s:
        changed = ask_stop(rt, s, recording_id)
    _signal_stop(rt, recording_id)
    return changed


def ask_stop(rt: Runtime, s: Session, recording_id: str, reason: str | None = None) -> bool:
    """Record the stop request (and `reason`) of a started recording in `s`'s transaction and free its
    room; False when it was not started or its stop was asked for already. The caller signals the
    capture after the commit (`carry_out_stop`)."""
    return stop_asked(rt, s, recording_id, reason) is not None


def stop_asked(rt: Runtime, s: InTransaction, recording_id: str, reason: str | None = None) -> Any:
    """`ask_stop`, answering the recording's row (the columns of `rows.RECORDING_ROWS`, a named tuple)
    as this call left it, or None when it asked nothing."""
    params = {"recording": recording_id, "now": rt.now()}
    if reason:
        asked = _ASK_STOP_FOR.run(s, {**params, "reason": reason[:200]}).first()
    else:
        asked = _ASK_STOP.run(s, params).first()
    _FREE_ROOM.run(s, {"recording": recording_id})  # the room may record again while this one stops
    return asked


# Built once, run on the cursor (the stop call is hot): what `ask_stop` writes, with a reason or without.
_RECORDINGS, _ROOMS = table_of(Recording), table_of(Room)
_ASKING_STOP = (
    update(_RECORDINGS)
    .where(
        _RECORDINGS.c.id == bindparam("recording"),
        _RECORDINGS.c.state == S.STARTED,
        _RECORDINGS.c.stop_requested_at.is_(None),
    )
    .values(stop_requested_at=bindparam("now"))
    .returning(*rows.RECORDING_ROWS.columns)
)
_ASK_STOP = Prepared(_ASKING_STOP)
_ASK_STOP_FOR = Prepared(_ASKING_STOP.values(stop_reason=bindparam("reason")))
# lifecycle.free_rooms for one recording.
_FREE_ROOM = Prepared(
    update(_ROOMS)
    .where(
        _ROOMS.c.id
        == select(_RECORDINGS.c.room_id).where(_RECORDINGS.c.id == bindparam("recording")).scalar_subquery(),
        _ROOMS.c.active_recording_id == bindparam("recording"),
    )
    .values(active_recording_id=None)
)


def _signal_stop(rt: Runtime, recording_id: str) -> None:
    try:
        rt.jobs.signal_stop(recording_id)
    except QueueError:  # the capture also polls SQL, Redis only makes it faster
        pass


def stop_requested(rt: Runtime, recording_id: str) -> bool:
    """True when a stop was asked for (Redis fast path, SQL as the truth)."""
    try:
        if rt.jobs.stop_signalled(recording_id):
            return True
    except QueueError:  # Redis down: fall through to SQL
        pass
    with rt.db.read() as s:
        row = s.execute(
            select(Recording.stop_requested_at, Recording.state).where(Recording.id == recording_id)
        ).one_or_none()
    return row is None or row.stop_requested_at is not None or row.state != S.STARTED


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
    values: dict[str, object] = {"duration": duration, "stopped_at": rt.now()}
    if reason:
        values["stop_reason"] = reason[:200]
    if gaps is not None:
        values.update(gaps=gaps, reconnects=len(gaps))
    moved = lifecycle.move(rt, lifecycle.STOP, recording_id, **values)
    if moved:
        try:
            enqueue_finalize(rt, recording_id)
        except QueueError as e:  # stopped all the same: the reconciler enqueues a finalize nobody did
            log.warning("recording %s: finalize not enqueued (%s); the reconciler will", recording_id, e)
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
            .where(Recording.id == recording_id, Recording.state == S.STARTED)
            .values(gaps=list(gaps), reconnects=len(gaps))
        )


def mark_finished(
    rt: Runtime,
    recording_id: str,
    *,
    key: str,
    size: int,
    sha256: str | None,
    duration: float,
    poster_key: str | None = None,
    timeline: list[list[float]] | None = None,
) -> bool:
    """stopped -> finished: the final object is in place and verified, with its `duration` (finalize
    keeps a push recording's stop value when the file agrees). `timeline` maps wall time into the video
    (see app.services.pipeline.timeline)."""
    return lifecycle.move(
        rt,
        lifecycle.FINISH,
        recording_id,
        finished_at=rt.now(),
        object_key=key,
        size=size,
        sha256=sha256,
        duration=duration,
        poster_key=poster_key,
        timeline=timeline,
    )


def set_digest(rt: Runtime, recording_id: str, object_key: str, sha256: str) -> bool:
    """Record the SHA-256 of a finished recording's object, read after its finish; False when the row
    names another object by now, or knows its digest."""
    named = (Recording.id == recording_id, Recording.object_key == object_key, Recording.sha256.is_(None))
    with rt.db.transaction() as s:
        return bool(affected(s, update(Recording).where(*named).values(sha256=sha256)))


def fail(rt: Runtime, recording_id: str, reason: str) -> bool:
    """started|stopped -> failed with a reason."""
    return lifecycle.move(rt, lifecycle.FAIL, recording_id, error=reason[:4000])


def load(rt: Runtime, recording_id: str) -> Recording | None:
    """A recording by id, whatever its project or state (for jobs)."""
    with rt.db.read() as s:
        return s.get(Recording, recording_id)


def state_of(rt: Runtime, recording_id: str) -> RecordingState | None:
    """A recording's state now, or None when there is no such recording."""
    with rt.db.read() as s:
        return s.scalar(select(Recording.state).where(Recording.id == recording_id))


def get(rt: Runtime, project_id: str, recording_id: str) -> Recording:
    """A live recording of this project; 404 for unknown, foreign or deleted ids."""
    with rt.db.read() as s:
        recording = s.scalar(_LIVE_RECORDING, {"recording_id": recording_id})
    if recording is None or recording.project_id != project_id:  # the project on the row: see rows.BY_ID
        raise NotFound("recording not found")
    return recording


def by_external_id(rt: Runtime, project_id: str, external_id: str) -> Recording:
    """A live recording of this project by the id its client knows it by; NotFound otherwise."""
    with rt.db.read() as s:
        recording = s.scalar(
            select(Recording).where(
                Recording.project_id == project_id,
                Recording.external_id == external_id,
                Recording.state != S.DELETED,
            )
        )
    if recording is None:
        raise NotFound("recording not found")
    return recording


LEGAL_HOLD = "the recording is under legal hold; an admin key must lift the hold first"

# Built once: the hottest read of the API (every recording and session call starts with it).
_LIVE_RECORDING = select(Recording).where(
    Recording.id == bindparam("recording_id"), Recording.state != S.DELETED
)


def delete(rt: Runtime, project_id: str, recording_id: str) -> None:
    """Stop it if it runs, delete its objects, tombstone the row. Then `get` answers 404.

    Conflict while it is under legal hold (only an admin key lifts it; see `retention.set_flags`).

    The recording is claimed first (guarded by the hold), so no hold can be set while its objects go.
    Objects go before the row: when storage is down the claim is given back, the call fails
    (StorageError: 503) and the recording stays intact. A capture still uploading sees the tombstone
    and removes what it uploads.
    """
    recording = get(rt, project_id, recording_id)
    claim = lifecycle.claim(rt, [recording_id], lifecycle.CLAIM_DELETE)
    if not claim.ids:
        get(rt, project_id, recording_id)  # deleted meanwhile: NotFound
        raise Conflict(LEGAL_HOLD)
    if recording.state == S.STARTED:
        request_stop(rt, recording_id)
    try:
        rt.storage.delete_prefix(object_prefix(recording_id))
    except StorageError:
        lifecycle.release(rt, claim)
        raise
    lifecycle.move(rt, lifecycle.DELETE, recording_id, deleted_at=rt.now())
