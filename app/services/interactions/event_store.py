"""The interaction event store: a recording's clicks, keys, scrolls, text input and custom events.

Built for volume. A batch is one `INSERT ... ON CONFLICT DO NOTHING RETURNING` over the batch sent as
one JSON document (see `_insert`). The same transaction counts the batch in with a conditional update
of the recording, so a concurrent stop cannot slip a batch in after it. Duplicates (a retried batch, a
client event id sent twice) are skipped by the unique (recording, event id) index and reported.

Reads never load a session whole: `iter_events` walks the (recording, ts, pk) index with keyset
pages, each in its own short read, so a response streams a million events with bounded memory and
without holding a database transaction open while a slow client reads.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from app.db import affected
from app.errors import Conflict, NotFound, StorageError
from app.models import Ingest, Recording, RecordingState, SessionEvent
from app.runtime import Runtime
from app.services.core import recordings

log = logging.getLogger(__name__)

S = RecordingState
T = cast(Table, SessionEvent.__table__)
READ_PAGE = 2000
SCREENSHOT_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


@dataclass(frozen=True)
class Screenshot:
    data: bytes
    content_type: str  # one of SCREENSHOT_TYPES


@dataclass
class NewEvent:
    """A validated event on its way in; `data` holds its type's fields as the wire shows them."""

    event_id: str
    type: str
    ts: float
    data: dict[str, Any]
    screenshot: Screenshot | None = None
    grab_frame: bool | None = None  # None: the default (clicks of a session with video)


@dataclass
class Appended:
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StoredEvent:
    pk: int
    event_id: str
    type: str
    ts: float
    data: dict[str, Any]
    screenshot_key: str | None


def screenshot_key(recording_id: str, event_id: str, content_type: str, nonce: str = "") -> str:
    """Where an event's screenshot goes; an uploaded one's `nonce` makes its key its own, so an upload
    for an event id stored before (a duplicate) can never overwrite the stored event's screenshot."""
    suffix = f"-{nonce}" if nonce else ""
    return (
        f"{recordings.object_prefix(recording_id)}screenshots/{event_id}{suffix}"
        f"{SCREENSHOT_TYPES[content_type]}"
    )


def append(rt: Runtime, project_id: str, recording_id: str, batch: Sequence[NewEvent]) -> Appended:
    """Store a validated batch for a running recording of the project.

    404 unknown, foreign or deleted; 409 once a stop was asked for; 503 when a screenshot cannot be
    stored (then nothing of the batch is)."""
    recording = recordings.get(rt, project_id, recording_id)
    _check_accepting(recording)
    unique = _first_of_each_id(batch)
    uploaded = _upload_screenshots(rt, recording_id, _not_stored_yet(rt, recording_id, unique))
    has_video = recording.ingest != Ingest.NONE
    rows = [
        {
            "recording_id": recording_id,
            "event_id": e.event_id,
            "type": e.type,
            "ts": e.ts,
            "data": e.data,
            "screenshot_key": uploaded.get(e.event_id),
            "wants_frame": _wants_frame(e, has_video),
        }
        for e in unique
    ]
    # Each upload has a key of its own (see `screenshot_key`), so nothing stored points at the uploads
    # of a refused batch or of a duplicate: they are removed.
    try:
        with rt.db.transaction() as s:
            stored = _insert(s, rows) if rows else set()
            if not _count_if_accepting(s, recording_id, len(stored)):
                raise Conflict("the session was stopped; it takes no more events")  # rolls the insert back
    except Conflict:
        for key in uploaded.values():
            _forget_screenshot(rt, key)
        raise
    for event_id, key in uploaded.items():
        if event_id not in stored:  # stored meanwhile by a concurrent batch: this copy is a duplicate
            _forget_screenshot(rt, key)
    result = Appended()
    for e in batch:
        if e.event_id in stored:
            stored.discard(e.event_id)  # a second copy in the same batch is a duplicate
            result.stored.append(e.event_id)
        else:
            result.duplicates.append(e.event_id)
    return result


def _first_of_each_id(batch: Sequence[NewEvent]) -> list[NewEvent]:
    """An id sent twice in one batch counts once, like an id sent in two batches: the first one wins."""
    seen: set[str] = set()
    unique = []
    for e in batch:
        if e.event_id not in seen:
            seen.add(e.event_id)
            unique.append(e)
    return unique


def _not_stored_yet(rt: Runtime, recording_id: str, batch: list[NewEvent]) -> list[NewEvent]:
    """`batch` without the events carrying a screenshot whose id is stored already: a duplicate's
    screenshot is not uploaded (the stored event keeps its own). Costs a query only when screenshots
    come; a concurrent batch storing the same id after this check is handled after the insert."""
    with_shots = [e.event_id for e in batch if e.screenshot is not None]
    if not with_shots:
        return batch
    with rt.db.read() as s:
        known = set(
            s.scalars(
                select(T.c.event_id).where(T.c.recording_id == recording_id, T.c.event_id.in_(with_shots))
            )
        )
    return [e for e in batch if e.event_id not in known] if known else batch


def _check_accepting(recording: Recording) -> None:
    if recording.state != S.STARTED or recording.stop_requested_at is not None:
        raise Conflict(f"the session is {_shown_state(recording)}; it takes no more events")


def _shown_state(recording: Recording) -> str:
    return "stopping" if recording.state == S.STARTED else recording.state


def _wants_frame(e: NewEvent, has_video: bool) -> bool:
    if not has_video or e.screenshot is not None:
        return False
    return e.type == "click" if e.grab_frame is None else e.grab_frame


def _count_if_accepting(s: Session, recording_id: str, added: int) -> bool:
    """Count the batch in, if the recording still takes events; False (roll back) once a stop was
    asked for. The update locks the row: a concurrent stop waits for this batch, or this batch sees the
    stop and is undone."""
    return bool(
        affected(
            s,
            update(Recording)
            .where(
                Recording.id == recording_id,
                Recording.state == S.STARTED,
                Recording.stop_requested_at.is_(None),
            )
            .values(event_count=Recording.event_count + added),
        )
    )


def _insert(s: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert `rows`, skipping (recording, event id) pairs stored before; returns the ids inserted.

    The batch goes to the database as one JSON document, unpacked server-side (PostgreSQL's
    json_to_recordset, SQLite's json_each): one statement, one round trip and one parameter for 500
    rows, where an executemany costs Python time per row and array parameters cost more to encode
    than the insert costs the server."""
    statement = _RECORDSET_INSERT if s.get_bind().dialect.name == "postgresql" else _JSON_EACH_INSERT
    params = {"recording_id": rows[0]["recording_id"], "rows": json.dumps(rows, separators=(",", ":"))}
    return set(s.scalars(statement, params).all())


_COLUMNS = "recording_id, event_id, type, ts, data, screenshot_key, wants_frame"
_RECORDSET_INSERT = text(
    f"INSERT INTO session_events ({_COLUMNS}) "
    "SELECT :recording_id, r.event_id, r.type, r.ts, r.data, r.screenshot_key, r.wants_frame "
    "FROM json_to_recordset(CAST(:rows AS json)) "
    "AS r(event_id text, type text, ts float8, data json, screenshot_key text, wants_frame boolean) "
    "ON CONFLICT (recording_id, event_id) DO NOTHING RETURNING event_id"
)
# `WHERE true` keeps SQLite from reading ON CONFLICT as a join constraint of the SELECT.
_JSON_EACH_INSERT = text(
    f"INSERT INTO session_events ({_COLUMNS}) "
    "SELECT :recording_id, value ->> '$.event_id', value ->> '$.type', value ->> '$.ts', "
    "value -> '$.data', value ->> '$.screenshot_key', value ->> '$.wants_frame' "
    "FROM json_each(:rows) WHERE true "
    "ON CONFLICT (recording_id, event_id) DO NOTHING RETURNING event_id"
)


def _upload_screenshots(rt: Runtime, recording_id: str, batch: Sequence[NewEvent]) -> dict[str, str]:
    uploaded: dict[str, str] = {}
    for e in batch:
        if e.screenshot is not None:
            key = screenshot_key(recording_id, e.event_id, e.screenshot.content_type, secrets.token_hex(6))
            rt.storage.put_bytes(key, e.screenshot.data, e.screenshot.content_type)  # StorageError: 503
            uploaded[e.event_id] = key
    return uploaded


def _forget_screenshot(rt: Runtime, key: str) -> None:
    try:
        rt.storage.delete_keys([key])
    except StorageError as e:  # retention removes the recording's prefix later
        log.warning("screenshot %s left behind: %s", key, e)


def iter_events(
    rt: Runtime, recording_id: str, *, types: Sequence[str] | None = None, page: int = READ_PAGE
) -> Iterator[StoredEvent]:
    """The recording's events in timestamp order (ties in arrival order), `page` rows a query."""
    after: tuple[float, int] | None = None
    while True:
        query = select(T.c.pk, T.c.event_id, T.c.type, T.c.ts, T.c.data, T.c.screenshot_key).where(
            T.c.recording_id == recording_id
        )
        if types:
            query = query.where(T.c.type.in_(list(types)))
        if after is not None:
            ts, pk = after
            query = query.where(or_(T.c.ts > ts, and_(T.c.ts == ts, T.c.pk > pk)))
        with rt.db.read() as s:
            rows = s.execute(query.order_by(T.c.ts, T.c.pk).limit(page)).all()
        for row in rows:
            yield StoredEvent(*row)
        if len(rows) < page:
            return
        after = (rows[-1].ts, rows[-1].pk)


def get(rt: Runtime, project_id: str, recording_id: str, event_id: str) -> tuple[Recording, StoredEvent]:
    """One event of one of the project's recordings; 404 for unknown ids on either level."""
    recording = recordings.get(rt, project_id, recording_id)
    with rt.db.read() as s:
        row = s.execute(
            select(T.c.pk, T.c.event_id, T.c.type, T.c.ts, T.c.data, T.c.screenshot_key).where(
                T.c.recording_id == recording_id, T.c.event_id == event_id
            )
        ).one_or_none()
    if row is None:
        raise NotFound("event not found")
    return recording, StoredEvent(*row)


def remove(rt: Runtime, project_id: str, recording_id: str, event_id: str) -> Recording:
    """Delete one event (and its screenshot); returns the recording as it is now. 404 unknown ids,
    409 while the recording is under legal hold (the event and its screenshot stay)."""
    recording, event = get(rt, project_id, recording_id, event_id)
    if recording.legal_hold:
        raise Conflict(recordings.LEGAL_HOLD)
    with rt.db.transaction() as s:
        gone = affected(s, delete(T).where(T.c.pk == event.pk))
        # Guarded by the hold and locking the row: a hold set meanwhile refuses (and undoes) the delete.
        if gone and not affected(
            s,
            update(Recording)
            .where(Recording.id == recording_id, Recording.legal_hold.is_(False))
            .values(event_count=Recording.event_count - gone),
        ):
            raise Conflict(recordings.LEGAL_HOLD)
    if not gone:
        raise NotFound("event not found")
    if event.screenshot_key:
        _forget_screenshot(rt, event.screenshot_key)
    return recordings.get(rt, project_id, recording.id)


@dataclass(frozen=True)
class FramePlan:
    """The frames a finalize grabs: `events` (no screenshot yet, timestamp order) and how many events
    that asked for one get none because the recording asked for more than the bound (`skipped`)."""

    events: list[StoredEvent]
    wanted: int
    skipped: int


def frames_to_grab(rt: Runtime, recording_id: str, limit: int) -> FramePlan:
    """At most `limit` of the events that asked for a frame of the video, evenly spread over them in
    timestamp order (the first always included), less those that already have one.

    The choice depends only on the events, not on what a previous run grabbed, so a finalize run again
    after a crash grabs the rest of the same ones and never more than `limit` in all. The database
    picks them (the k-th of n events is taken when k * limit mod n < limit: exactly `limit` of them,
    one every n / limit), so a million clicks are never loaded."""
    wants = and_(T.c.recording_id == recording_id, T.c.wants_frame.is_(True))
    ranked = (
        select(
            T.c.pk,
            T.c.event_id,
            T.c.type,
            T.c.ts,
            T.c.data,
            T.c.screenshot_key,
            (func.row_number().over(order_by=(T.c.ts, T.c.pk)) - 1).label("rank"),
            func.count().over().label("total"),
        )
        .where(wants)
        .subquery()
    )
    r = ranked.c
    with rt.db.read() as s:
        wanted = s.scalar(select(func.count()).select_from(T).where(wants)) or 0
        rows = s.execute(
            select(r.pk, r.event_id, r.type, r.ts, r.data, r.screenshot_key)
            .where((r.rank * limit) % r.total < limit, r.screenshot_key.is_(None))
            .order_by(r.ts, r.pk)
        ).all()
    return FramePlan([StoredEvent(*row) for row in rows], wanted, max(0, wanted - limit))


def attach_screenshot(rt: Runtime, pk: int, key: str) -> bool:
    """Point an event at a stored screenshot; False when the event was deleted meanwhile."""
    with rt.db.transaction() as s:
        return bool(affected(s, update(T).where(T.c.pk == pk).values(screenshot_key=key)))
