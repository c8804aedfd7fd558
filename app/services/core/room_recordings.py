"""Room recordings (the Eyeson calls): start and stop a meeting's recording by a participant's access
key, and list a room id's recordings.

A room records one recording at a time: starting claims the room (`active_recording_id`, a conditional
update) in the transaction that creates the recording, so two concurrent starts cannot both win.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select, update

from app.db import InTransaction, Prepared, table_of
from app.errors import Forbidden, NotAcceptable, NotFound, RecordingNotAvailable
from app.models import ApiKey, Ingest, Recording, RecordingState, Room
from app.runtime import Runtime
from app.services.access import keys
from app.services.core import fused, recordings, rooms, rows
from app.services.core.sources import checked_source
from app.services.ids import new_id
from app.services.outbox import outbox
from app.wire import redacted_source

PAGE_SIZE = 25


def start(
    rt: Runtime, access_key: str, media_source: str | None = None, api_key: ApiKey | None = None
) -> Recording:
    """Start recording the participant's meeting and enqueue its capture: one transaction (the access
    key looked up, the room claimed, the recording and its webhook event written), then the enqueue
    (see `recordings.enqueue_capture`).

    A `media_source` other than the room's own needs `api_key`, a key of the room's project with the
    room:write scope: an access key is every participant's, and must not pick what meetrec records.

    NotFound unknown access key, Gone meeting shut down, RecordingNotAvailable in this room,
    NotAcceptable a recording is already running or the room has no media source, Forbidden a source
    chosen without such a key, Unprocessable source.
    """
    recording_id = new_id()
    if fused.applies(rt):  # PostgreSQL: the read, then one statement writes it all (see `fused`)
        with rt.db.autocommit() as c:
            participant = rooms.holding(c, access_key)
            source = _checked(rt, participant.room, media_source, api_key)
            recording, delivering = fused.start(rt, c, participant, source, recording_id)
        outbox.started_committed(rt, recording, delivering)  # the connection is back in the pool
    else:
        with rt.db.tx() as s:  # Prepared statements only: no session
            # The lookup and the checks write nothing: no write lock is held before the claim.
            participant = rooms.holding(s, access_key)
            room = participant.room
            source = _checked(rt, room, media_source, api_key)
            _claim(s, room, recording_id)
            recording = recordings.create(
                rt, s, room.project_id, source, recording_id=recording_id, room=room, participant=participant
            )
    if recording.ingest == Ingest.PULL:  # pushed media is uploaded by the meeting app: nothing to capture
        recordings.enqueue_capture(rt, recording)
    return recording


def _checked(rt: Runtime, room: Room, media_source: str | None, api_key: ApiKey | None) -> str:
    """The source a start in `room` records, checked (see `start`)."""
    return checked_source(rt.config, _source(room, _override(room, media_source, api_key)))


def _override(room: Room, media_source: str | None, api_key: ApiKey | None) -> str | None:
    """The start call's own source, None when it names the room's; Forbidden without the key for it."""
    if not media_source or _own_source(room, media_source):
        return None  # the room's own (maybe as GET /rooms shows it, redacted): record that
    if api_key is None or api_key.project_id != room.project_id or not keys.has_scope(api_key, "room:write"):
        raise Forbidden(
            "media_source may differ from the room's only with an API key of the room's project "
            "with the room:write scope in the Authorization header",
            errors={"media_source": ["not the room's media source"]},
        )
    return media_source


def _own_source(room: Room, media_source: str) -> bool:
    """True when `media_source` names the room's own source, raw or as the API shows it (redacted)."""
    own = room.media_source
    return own is not None and media_source in (own, redacted_source(own))


def _source(room: Room, override: str | None) -> str:
    """The source the room may record now: the start call's, else the room's (Eyeson's 405/406 rules)."""
    if not room.recording_available:
        raise RecordingNotAvailable("recording is not available in this room")
    source = override or room.media_source
    if not source:
        raise NotAcceptable("the room has no media source (set options[media_source])")
    return source


def _claim(s: InTransaction, room: Room, recording_id: str) -> None:
    """Make `recording_id` the room's one running recording, in `s`'s transaction."""
    if not _CLAIM.run(s, {"room": room.id, "recording": recording_id}).rowcount:
        raise NotAcceptable("a recording is already running in this room")


_ROOMS = table_of(Room)
_CLAIM = Prepared(
    update(_ROOMS)
    .where(
        _ROOMS.c.id == bindparam("room"),
        _ROOMS.c.active_recording_id.is_(None),
        _ROOMS.c.shutdown_at.is_(None),
    )
    .values(active_recording_id=bindparam("recording"))
)


def stop(rt: Runtime, access_key: str) -> Recording:
    """Ask the running recording of the participant's meeting to stop (the room found and the stop
    asked in one statement on PostgreSQL, see `fused`; in one transaction elsewhere); the recording as
    it stands after. NotFound when none runs."""
    asked = fused.stop(rt, access_key) if fused.applies(rt) else _ask_stop(rt, access_key)
    recording = recordings.carry_out_stop(rt, asked)
    if recording is None:  # the room named a recording that is not there: never after a claim
        raise NotFound("no recording is running in this room")
    return recording


def _ask_stop(rt: Runtime, access_key: str) -> Recording | None:
    """`fused.stop` as one transaction of statements on the cursor, without a session."""
    with rt.db.tx() as s:
        caller = rooms.holding(s, access_key)
        recording_id = caller.room.active_recording_id
        if recording_id is None:
            raise NotFound("no recording is running in this room")
        row = recordings.stop_asked(rt, s, recording_id)
        if row is not None and row.participant_id == caller.id:  # its room and starter are in hand
            return rows.RECORDING_ROWS.load(row, room=caller.room, participant=caller)
        return rows.recording(s, recording_id)  # its stop was asked already, or another started it


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
                .where(Recording.room_id.in_(ids), Recording.state != RecordingState.DELETED)
                .order_by(Recording.created_at.desc(), Recording.id)
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            )
        )
