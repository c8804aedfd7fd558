"""Recordings read only to be shown: one statement on a pooled DBAPI cursor, no ORM session.

`recordings.get` loads a live, detached ORM row with its room and participant (and the participant's
room) joined: 0.6-0.85 ms of CPU a call here, most of it the ORM building instances. Through a Core
`Connection` the same row costs about 0.11 ms, and straight on the DBAPI cursor 0.03 ms: the statement
is compiled once per dialect (`app.db.Prepared`), and only the columns' own result processors (dates, enums,
JSON) run on the row. `recording` answers the same recording, room and participant
from that row (`rows.JOINED`, `rows.joined`): transient instances that nothing tracks, fit to be shaped
and signed (`app.wire`, the link audit) and never to be added to a session or changed (use
`recordings.get` for that).
"""

from __future__ import annotations

from sqlalchemy import bindparam

from app.db import Prepared, table_of
from app.errors import NotFound
from app.models import Recording, RecordingState
from app.runtime import Runtime
from app.services.core import rows

_RECORDINGS = table_of(Recording)

# Built once, like recordings.get's statement. A deleted recording is told apart in Python: on SQLite a
# bound `state != ?` beside the joins made the statement be prepared again on every execution (most of
# its time), and an Enum constant would be rendered into the SQL afresh each time instead.
_LIVE = Prepared(
    rows.JOINED.where(
        _RECORDINGS.c.id == bindparam("recording_id"),
        _RECORDINGS.c.project_id == bindparam("project_id"),
    )
)


def recording(rt: Runtime, project_id: str, recording_id: str) -> Recording:
    """A live recording of this project as `recordings.get` finds it, room and participant included,
    for showing only; 404 for unknown, foreign or deleted ids."""
    row = _LIVE.one_or_none(rt.db.engine, {"recording_id": recording_id, "project_id": project_id})
    if row is None or row[rows.STATE] == RecordingState.DELETED:
        raise NotFound("recording not found")
    return rows.joined(row, shown=True)
