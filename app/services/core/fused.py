"""Fused writes (PostgreSQL): a room recording's start and its stop, each written by one statement.

On PostgreSQL every statement is a round trip the driver pays for in CPU (measured here: ~70 us of
client CPU and ~35 us of the server's for the smallest one, more for a wide row), and a transaction
adds a BEGIN and a COMMIT. A start was BEGIN, the access key's read, the room's claim, the recording,
its event and COMMIT; a stop BEGIN, the read, the stop asked, the room freed and COMMIT.

Here each write is one data-modifying statement (`WITH ... AS (UPDATE/INSERT ... RETURNING)`) run in
autocommit, so it is atomic on its own:

- a start reads the access key's participant first (autocommit; the checks and a source's DNS lookup
  hold no lock), then claims the room, inserts the recording, its event (seq 1) and one pending delivery
  per subscribed endpoint in one statement; a room another start claimed first inserts nothing;
- a stop reads the participant, asks the stop and frees the room in one statement; a meeting shut down
  or a room recording nothing changes nothing.

Concurrent calls are decided as in the transactions they replace: each UPDATE re-checks its condition on
the row it locks (READ COMMITTED), so of two starts one claims the room, and of two stops one asks.
SQLite has no data-modifying WITH: it runs the same calls as transactions (`room_recordings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    Integer,
    String,
    and_,
    any_,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    true,
    update,
)

from app.db import Prepared, Tx, table_of, with_defaults
from app.errors import NotAcceptable, NotFound
from app.models import (
    DeliveryState,
    Participant,
    Recording,
    RecordingState,
    Room,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from app.runtime import Runtime
from app.services.core import recordings, rooms, rows
from app.services.ids import hash_secret
from app.services.outbox import outbox


def applies(rt: Runtime) -> bool:
    """True when the database takes fused writes (PostgreSQL)."""
    return rt.db.engine.dialect.name == "postgresql"


def start(
    rt: Runtime, c: Tx, participant: Participant, source: str, recording_id: str
) -> tuple[Recording, bool]:
    """Claim the participant's room for a new pull or push recording of `source`, with its
    `recording_update` event and pending deliveries, in one statement on `c` (`Database.autocommit`):
    the recording, and whether deliveries were written. NotAcceptable when the room is recording
    already (or shut down since it was read). What follows the write (`outbox.started_committed`, the
    capture's enqueue) is the caller's, once `c` is back in the pool."""
    room = participant.room
    values = recordings.started_row(rt, room.project_id, source, recording_id)
    values.update(room_id=room.id, participant_id=participant.id)  # _STARTED_KEYS (test_hot_writes)
    # The row as it will be stored: what was given, the defaults (the server's are the same) for the
    # rest. It is not read back: returned, the columns would make the statement longer than psycopg
    # caches (4096 bytes), and parsing it on every execution cost more than the round trips it saves.
    stored = with_defaults(_RECORDINGS, values)
    recording = rows.RECORDING_ROWS.load(
        tuple(stored[k] for k in rows.RECORDING_ROWS.keys), room=room, participant=participant
    )
    event = outbox.started_event_row(rt, recording)
    params = {
        "room": room.id,
        **{f"recording_{k}": v for k, v in values.items()},
        **{f"event_{k}": v for k, v in event.items()},
    }
    row = _START.run(c, params).first()
    if row is None:
        raise NotAcceptable("a recording is already running in this room")
    return recording, row.deliveries > 0


def stop(rt: Runtime, access_key: str) -> Recording | None:
    """Ask the running recording of the access key's meeting to stop and free its room, in one
    statement; the recording as the stop left it, or as it stands when its stop was asked already.
    NotFound unknown key or no recording running, Gone meeting shut down."""
    with rt.db.autocommit() as c:
        row = _STOP.run(c, {"key_hash": hash_secret(access_key), "now": rt.now()}).first()
        return _stopped(c, row)


def _stopped(c: Tx, row: Any) -> Recording | None:
    """The outcome of a row of `_STOP` (see `stop`)."""
    caller = rooms.held(rows.holder(row))
    recording_id = caller.room.active_recording_id
    if recording_id is None:
        raise NotFound("no recording is running in this room")
    assert row is not None  # `held` found its participant
    if row[_ASKED_AT + _ID] is not None and row[_ASKED_AT + _PARTICIPANT_ID] == caller.id:
        return rows.RECORDING_ROWS.load(row, _ASKED_AT, room=caller.room, participant=caller)
    # Its stop was asked already, or another participant started it: as it stands.
    return rows.recording(c, recording_id)


_ROOMS, _RECORDINGS = table_of(Room), table_of(Recording)
_EVENTS, _DELIVERIES, _ENDPOINTS = (
    table_of(WebhookEvent),
    table_of(WebhookDelivery),
    table_of(WebhookEndpoint),
)
_EVENT_KEYS = ("id", "project_id", "type", "resource_id", "seq", "payload", "created_at")


def _values(table: Any, prefix: str, keys: Sequence[str]) -> Any:
    """A SELECT of one bound value per column, `<prefix>_<key>` typed as the column."""
    return select(*(bindparam(f"{prefix}_{k}", type_=table.c[k].type) for k in keys))


# The start: the room claimed, then (each only if the one before it was written) the recording, its
# event, and a delivery for each enabled endpoint of the project subscribed to recording updates;
# answers a row (how many deliveries were written) when the recording was.
_STARTED_KEYS = recordings.STARTED_COLUMNS | {"room_id", "participant_id"}
_CLAIMED = (
    update(_ROOMS)
    .where(
        _ROOMS.c.id == bindparam("room"),
        _ROOMS.c.active_recording_id.is_(None),
        _ROOMS.c.shutdown_at.is_(None),
    )
    .values(active_recording_id=bindparam("recording_id", type_=String))
    .returning(_ROOMS.c.id)
    .cte("claimed")
)
_INSERTED = (
    insert(_RECORDINGS)
    .from_select(
        sorted(_STARTED_KEYS),
        _values(_RECORDINGS, "recording", sorted(_STARTED_KEYS)).select_from(_CLAIMED),
        include_defaults=False,  # the table's server defaults, the same as its Python ones
    )
    .returning(_RECORDINGS.c.id)
    .cte("inserted")
)
_EVENT = (
    insert(_EVENTS)
    .from_select(_EVENT_KEYS, _values(_EVENTS, "event", _EVENT_KEYS).select_from(_INSERTED))
    .returning(_EVENTS.c.id)
    .cte("event")
)
# A delivery's id as `new_id` makes them: 24 hex digits, random.
_NEW_ID = func.substr(
    func.replace(func.gen_random_uuid().cast(String), literal_column("'-'"), literal_column("''")), 1, 24
)
_DELIVERED = (
    insert(_DELIVERIES)
    .from_select(
        ("id", "endpoint_id", "event_id", "attempt", "manual", "state", "created_at", "due_at"),
        select(
            _NEW_ID,
            _ENDPOINTS.c.id,
            _EVENT.c.id,
            literal_column("1", Integer),
            literal_column("false"),
            literal_column(f"'{DeliveryState.PENDING.value}'", String),
            bindparam("event_created_at", type_=_DELIVERIES.c.created_at.type),
            bindparam("event_created_at", type_=_DELIVERIES.c.due_at.type),
        ).select_from(
            _EVENT.join(
                _ENDPOINTS,
                and_(
                    _ENDPOINTS.c.project_id == bindparam("event_project_id"),
                    _ENDPOINTS.c.disabled_at.is_(None),
                    bindparam("event_type", type_=String)
                    == any_(func.string_to_array(_ENDPOINTS.c.types, literal_column("','"))),
                ),
            )
        ),
    )
    .returning(_DELIVERIES.c.id)
    .cte("delivered")
)
_START = Prepared(
    select(select(func.count()).select_from(_DELIVERED).scalar_subquery().label("deliveries")).select_from(
        _EVENT
    )
)

# The stop: the access key's participant and room as `rows.BY_KEY` reads them, the stop asked of the
# room's running recording (unless the meeting shut down) and the room freed (found by its key: no index
# holds `active_recording_id`, and rooms are meeting instances, so they only grow); answers the
# participant's row followed by the recording's columns as the stop left them (all null when it asked
# nothing).
_CALLER = rows.BY_KEY.cte("caller")
_RUNNING = (
    select(_CALLER.c.room__active_recording_id).where(_CALLER.c.room__shutdown_at.is_(None)).scalar_subquery()
)
_ASKED = (
    update(_RECORDINGS)
    .where(
        _RECORDINGS.c.id == _RUNNING,
        _RECORDINGS.c.state == RecordingState.STARTED,
        _RECORDINGS.c.stop_requested_at.is_(None),
    )
    .values(stop_requested_at=bindparam("now"))
    .returning(*rows.RECORDING_ROWS.columns)
    .cte("asked")
)
_FREED = (
    update(_ROOMS)
    .where(
        _ROOMS.c.id == select(_CALLER.c.room_id).scalar_subquery(), _ROOMS.c.active_recording_id == _RUNNING
    )
    .values(active_recording_id=None)
    .returning(_ROOMS.c.id)
    .cte("freed")
)
_STOP = Prepared(
    select(*_CALLER.c, *(c.label(f"asked__{c.key}") for c in _ASKED.c))
    .select_from(_CALLER.outerjoin(_ASKED, cast(Any, true())))
    .add_cte(_FREED)
)
# Where the recording's columns start in a row of _STOP, and its participant's id among them.
_ASKED_AT = len(rows.PARTICIPANT_COLUMNS)
_ID, _PARTICIPANT_ID = rows.RECORDING_ROWS.keys.index("id"), rows.RECORDING_ROWS.keys.index("participant_id")
