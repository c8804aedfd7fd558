"""Recordings read only to be shown: one statement on a pooled DBAPI cursor, no ORM session.

`recordings.get` loads a live, detached ORM row with its room and participant (and the participant's
room) joined: 0.6-0.85 ms of CPU a call here, most of it the ORM building instances. Through a Core
`Connection` the same row costs about 0.11 ms, and straight on the DBAPI cursor 0.03 ms: the statement
is compiled once per dialect (`app.db.Prepared`), and only the columns' own result processors (dates, enums,
JSON) run on the row. `recording` answers the same recording, room and participant from that row:
transient instances that nothing tracks, fit to be shaped and signed (`app.wire`, the link audit) and
never to be added to a session or changed (use `recordings.get` for that).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.orm import instrumentation
from sqlalchemy.orm.attributes import set_committed_value

from app.db import Prepared
from app.errors import NotFound
from app.models import Participant, Recording, RecordingState, Room
from app.runtime import Runtime

T = TypeVar("T")

_RECORDINGS, _ROOMS, _PARTICIPANTS = Recording.__table__, Room.__table__, Participant.__table__
_RECORDING_KEYS = tuple(c.key for c in _RECORDINGS.c)
_ROOM_KEYS = tuple(c.key for c in _ROOMS.c)
_PARTICIPANT_KEYS = tuple(c.key for c in _PARTICIPANTS.c)
# Where the room's and the participant's columns start in a row, and where their ids are.
_ROOM_AT = len(_RECORDING_KEYS)
_PARTICIPANT_AT = _ROOM_AT + len(_ROOM_KEYS)
_ROOM_ID, _PARTICIPANT_ID = _ROOM_AT + _ROOM_KEYS.index("id"), _PARTICIPANT_AT + _PARTICIPANT_KEYS.index("id")
_STATE = _RECORDING_KEYS.index("state")

# Built once, like recordings.get's statement. A deleted recording is told apart in Python: on SQLite a
# bound `state != ?` beside the joins made the statement be prepared again on every execution (most of
# its time), and an Enum constant would be rendered into the SQL afresh each time instead.
_LIVE = Prepared(
    select(
        *_RECORDINGS.c,
        *(c.label(f"room__{c.key}") for c in _ROOMS.c),
        *(c.label(f"participant__{c.key}") for c in _PARTICIPANTS.c),
    )
    .select_from(
        _RECORDINGS.outerjoin(_ROOMS, _ROOMS.c.id == _RECORDINGS.c.room_id).outerjoin(
            _PARTICIPANTS, _PARTICIPANTS.c.id == _RECORDINGS.c.participant_id
        )
    )
    .where(
        _RECORDINGS.c.id == bindparam("recording_id"),
        _RECORDINGS.c.project_id == bindparam("project_id"),
    )
)


def recording(rt: Runtime, project_id: str, recording_id: str) -> Recording:
    """A live recording of this project as `recordings.get` finds it, room and participant included,
    for showing only; 404 for unknown, foreign or deleted ids."""
    row = _LIVE.one_or_none(rt.db.engine, {"recording_id": recording_id, "project_id": project_id})
    if row is None or row[_STATE] == RecordingState.DELETED:
        raise NotFound("recording not found")
    return _recording(row)


def _recording(values: tuple[Any, ...]) -> Recording:
    recording = _instance(Recording, _RECORDING_KEYS, values[:_ROOM_AT])
    room = participant = None
    if values[_ROOM_ID] is not None:
        room = _instance(Room, _ROOM_KEYS, values[_ROOM_AT:_PARTICIPANT_AT])
    if values[_PARTICIPANT_ID] is not None:
        participant = _instance(Participant, _PARTICIPANT_KEYS, values[_PARTICIPANT_AT:])
        set_committed_value(participant, "room", room if room and room.id == participant.room_id else None)
    set_committed_value(recording, "room", room)
    set_committed_value(recording, "participant", participant)
    return recording


def _instance(cls: type[T], keys: tuple[str, ...], values: tuple[Any, ...]) -> T:
    """An instance of a mapped class holding `values` as loaded, as the ORM's loader fills one (no
    constructor, no change events)."""
    obj: T = instrumentation.manager_of_class(cls).new_instance()
    obj.__dict__.update(zip(keys, values, strict=True))
    return obj
