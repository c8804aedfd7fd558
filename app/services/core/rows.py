"""The rows of a room recording's start and stop, read with Core statements built once and made into
detached instances (`app.db.CoreRows`): a participant by access key with its room, a recording with its
room and participant. Each is one statement; the ORM loader would cost more than the SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import bindparam, select

from app.db import CoreRows, InTransaction, Prepared, table_of
from app.models import Participant, Recording, Room

T = TypeVar("T")

PARTICIPANT_ROWS, ROOM_ROWS, RECORDING_ROWS = CoreRows(Participant), CoreRows(Room), CoreRows(Recording)
_PARTICIPANTS, _ROOMS, _RECORDINGS = table_of(Participant), table_of(Room), table_of(Recording)


def participant(s: InTransaction, access_key_hash: str) -> Participant | None:
    """The participant holding the access key with this hash, its room with it, in `s`'s transaction."""
    return holder(_BY_KEY.first(s, {"key_hash": access_key_hash}))


def holder(row: Sequence[Any] | None) -> Participant | None:
    """The participant of a row that starts with `PARTICIPANT_COLUMNS`, its room with it."""
    if row is None:
        return None
    return PARTICIPANT_ROWS.load(row, room=ROOM_ROWS.load(row, len(PARTICIPANT_ROWS.keys)))


# A participant's columns and its room's (labelled `room__<key>`), the row `holder` reads.
PARTICIPANT_COLUMNS = (*PARTICIPANT_ROWS.columns, *ROOM_ROWS.labelled("room"))
# The participant holding the access key with this hash: both room calls start with this read.
BY_KEY = (
    select(*PARTICIPANT_COLUMNS)
    .select_from(_PARTICIPANTS.join(_ROOMS, _ROOMS.c.id == _PARTICIPANTS.c.room_id))
    .where(_PARTICIPANTS.c.access_key_hash == bindparam("key_hash"))
)
_BY_KEY = Prepared(BY_KEY)


def recording(s: InTransaction, recording_id: str) -> Recording | None:
    """A recording by id, whatever its project or state, with its room and participant, as `s`'s
    transaction sees it now."""
    row = BY_ID.first(s, {"recording_id": recording_id})
    return None if row is None else joined(row)


def joined(row: Sequence[Any], shown: bool = False) -> Recording:
    """The recording of a row of `JOINED`, its room and participant with it: detached (`CoreRows.load`),
    or transient for showing only (`CoreRows.shown`)."""
    room = starter = None
    if row[_ROOM_AT + _ROOM_ID] is not None:
        room = _made(ROOM_ROWS, shown, row, _ROOM_AT)
    if row[_PARTICIPANT_AT + _PARTICIPANT_ID] is not None:
        same_room = room is not None and row[_PARTICIPANT_AT + _PARTICIPANT_ROOM] == room.id
        starter = _made(
            PARTICIPANT_ROWS, shown, row, _PARTICIPANT_AT, **({"room": room} if same_room else {})
        )
    return _made(RECORDING_ROWS, shown, row, room=room, participant=starter)


def _made(rows: CoreRows[T], shown: bool, row: Sequence[Any], at: int = 0, **related: Any) -> T:
    return rows.shown(row, at, **related) if shown else rows.load(row, at, **related)


# A recording with its room and participant (outer joins: either may be missing), in the column order
# `joined` reads; a statement adds its WHERE.
JOINED = select(
    *RECORDING_ROWS.columns, *ROOM_ROWS.labelled("room"), *PARTICIPANT_ROWS.labelled("participant")
).select_from(
    _RECORDINGS.outerjoin(_ROOMS, _ROOMS.c.id == _RECORDINGS.c.room_id).outerjoin(
        _PARTICIPANTS, _PARTICIPANTS.c.id == _RECORDINGS.c.participant_id
    )
)
# The recording's state and project in a row of JOINED.
STATE, PROJECT = RECORDING_ROWS.keys.index("state"), RECORDING_ROWS.keys.index("project_id")
# By its primary key alone: a caller that checks the project does so on the row. Given the project too,
# PostgreSQL's generic plan of the prepared statement took the project's index and filtered the
# project's every recording by id (measured: 0.5 ms of server CPU a read at 3,800 recordings).
BY_ID = Prepared(JOINED.where(_RECORDINGS.c.id == bindparam("recording_id")))
# Where the room's and the participant's columns start in a row of JOINED, and their ids within them.
_ROOM_AT = len(RECORDING_ROWS.keys)
_PARTICIPANT_AT = _ROOM_AT + len(ROOM_ROWS.keys)
_ROOM_ID = ROOM_ROWS.keys.index("id")
_PARTICIPANT_ID = PARTICIPANT_ROWS.keys.index("id")
_PARTICIPANT_ROOM = PARTICIPANT_ROWS.keys.index("room_id")
