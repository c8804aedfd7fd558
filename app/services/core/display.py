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

from typing import Any

from app.errors import NotFound
from app.models import Recording, RecordingState
from app.runtime import Runtime
from app.services.core import rows


def recording(rt: Runtime, project_id: str, recording_id: str) -> Recording:
    """A live recording of this project as `recordings.get` finds it, room and participant included,
    for showing only; 404 for unknown, foreign or deleted ids."""
    # A deleted or foreign recording is told apart on the row: on SQLite a bound `state != ?` beside the
    # joins made the statement be prepared again on every execution, and on PostgreSQL the project's
    # condition led the generic plan off the primary key (see `rows.BY_ID`).
    return _shown(rows.BY_ID.one_or_none(rt.db.engine, {"recording_id": recording_id}), project_id)


async def recording_on_loop(rt: Runtime, project_id: str, recording_id: str) -> Recording:
    """`recording`, read on the running event loop (`app.db.LoopReads`); `NotOnLoop` when it could
    not be read there."""
    row = await rows.BY_ID.one_or_none_on_loop(rt.db.on_loop, {"recording_id": recording_id})
    return _shown(row, project_id)


def _shown(row: tuple[Any, ...] | None, project_id: str) -> Recording:
    if row is None or row[rows.PROJECT] != project_id or row[rows.STATE] == RecordingState.DELETED:
        raise NotFound("recording not found")
    return rows.joined(row, shown=True)
