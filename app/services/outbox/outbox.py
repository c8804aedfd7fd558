"""Webhook events and their outbox.

An event is written in the same transaction as the state change it describes, with one pending
delivery per subscribed endpoint: no state change commits without its event, and none waits on a
receiver or on Redis. After the commit a delivery job is woken (`wake`: one job sends every due
delivery, see `pump`); a delivery whose job could not be enqueued (Redis down) stays pending until
`dispatch_pending` (every 30 s from the scheduler) wakes one.

Each resource (a recording, a room) numbers its events from 1 in `seq`. The conditional update that
moves the resource locks its row until the commit, so two changes of one resource cannot take the
same number; a resource inserted by the event's own transaction has none before it (`first`: 1, no
lookup). The statements are Core, built once: this runs in the transaction of every state change.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import bindparam, func, insert, literal, literal_column, select, update
from sqlalchemy.orm import Session

from app import wire
from app.db import InTransaction, Prepared, after_commit, table_of
from app.models import (
    DeliveryState,
    Recording,
    RecordingState,
    Room,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from app.queueing import DELIVER_WEBHOOK
from app.runtime import Runtime
from app.services.ids import new_id

log = logging.getLogger(__name__)
# One line per state change of a recording, whatever made it (the API, a job, the reconciler, retention).
changes = logging.getLogger("meetrec.recordings")

RECORDING_UPDATE = "recording_update"
ROOM_UPDATE = "room_update"
TYPES = (RECORDING_UPDATE, ROOM_UPDATE)

D = DeliveryState
# A delivery still "sending" after its attempt's timeout (a watchdog bounds the whole attempt) plus this
# slack for its SQL writes belongs to a worker that died; at most STALE_SENDING after the attempt began.
SENDING_SLACK = timedelta(seconds=30)
STALE_SENDING = timedelta(minutes=5)
# A delivery job enqueued this long ago and still queued is not relied on to run soon (see `wake`).
COALESCE_SECONDS = 10.0


def recording_changed(rt: Runtime, s: Session, recording_id: str) -> None:
    """Emit `recording_update` with the recording as `GET /recordings/{id}` shows it now, minus the
    download and poster links: each delivery attempt signs those afresh (`deliveries`). The change is
    logged once `s` commits."""
    s.flush()
    rec = s.get(Recording, recording_id, populate_existing=True)
    if rec is not None:
        _recording_event(rt, s, rec, first=False)


def recording_started(rt: Runtime, s: InTransaction, rec: Recording) -> None:
    """`recording_changed` for a recording `s` has just inserted, shown from `rec` as written (its
    `room` and `participant` set): no re-read, and its first event (seq 1) without a lookup."""
    _recording_event(rt, s, rec, first=True)


def _recording_event(rt: Runtime, s: InTransaction, rec: Recording, *, first: bool) -> None:
    emit(rt, s, rec.project_id, RECORDING_UPDATE, rec.id, {"recording": _shown(rt, rec)}, first=first)
    _log_after_commit(s, *_change_line(rec))


def _shown(rt: Runtime, rec: Recording) -> dict[str, Any]:
    """The recording as its event shows it: stored unsigned, since a link signed now would expire
    before a late attempt, and was never audited."""
    return wire.recording(rec, rt.config.public_url, wire.UNSIGNED)


def _change_line(rec: Recording) -> tuple[int, str, dict[str, Any]]:
    """One line for a recording's state change: what, where (room, project), and a failure's why."""
    room = rec.room.key if rec.room else None
    where = f"room {room}, project {rec.project_id}" if room else f"project {rec.project_id}"
    line = f"recording {rec.id} {rec.state} ({where}"
    if rec.state == RecordingState.STARTED:
        line += f", {rec.ingest} media" if rec.media_source else ", events only"
    elif rec.duration is not None:
        line += f", {rec.duration:.1f} s"
    line += ")"
    failed = rec.state == RecordingState.FAILED
    if failed:
        line += f": {rec.error or 'no reason recorded'}"
    fields = {"recording_id": rec.id, "project_id": rec.project_id, "state": str(rec.state)}
    if room:
        fields["room"] = room
    return (logging.WARNING if failed else logging.INFO), line, fields


def _log_after_commit(s: InTransaction, level: int, line: str, fields: dict[str, Any]) -> None:
    """Log `line` (with `fields`) once `s` commits: a change rolled back happened to nobody."""
    after_commit(s, "change_lines", (level, line, fields), _log_committed)


def _log_committed(lines: list[tuple[int, str, dict[str, Any]]]) -> None:
    for level, line, fields in lines:
        changes.log(level, "%s", line, extra=fields)


def room_changed(rt: Runtime, s: Session, room_id: str) -> None:
    """Emit `room_update` with the room as the API shows it now (started, or shut down)."""
    s.flush()
    room = s.get(Room, room_id, populate_existing=True)
    if room is not None:
        emit(rt, s, room.project_id, ROOM_UPDATE, room.id, {"room": wire.room(room)})


def emit(
    rt: Runtime,
    s: InTransaction,
    project_id: str,
    type_: str,
    resource_id: str,
    body: dict[str, Any],
    *,
    first: bool = False,
) -> str:
    """Write an event (`event_row`) and its pending deliveries in `s`'s transaction; enqueue them
    after the commit. `first`: the resource was inserted in this transaction, so this is its event 1.
    Returns the event id.
    """
    if first:
        seq = 1
    else:
        last = _LAST_SEQ.run(s, {"event_type": type_, "resource": resource_id}).scalar()
        seq = (last or 0) + 1
    event = event_row(rt, project_id, type_, resource_id, body, seq)
    event_id, now = event["id"], event["created_at"]
    subscribed = _INSERT_EVENT.run(s, {**event, "project": project_id}).scalar() or ""
    endpoint_ids = [
        endpoint_id
        for endpoint_id, _, types in (ep.partition(":") for ep in subscribed.split(";") if ep)
        if type_ in types.split(",")
    ]
    if endpoint_ids:
        delivery_ids = [new_id() for _ in endpoint_ids]
        pending = {"event_id": event_id, "attempt": 1, "manual": False, "state": D.PENDING.value}
        for delivery_id, endpoint_id in zip(delivery_ids, endpoint_ids, strict=True):
            values = {
                "id": delivery_id,
                "endpoint_id": endpoint_id,
                **pending,
                "created_at": now,
                "due_at": now,
            }
            _INSERT_DELIVERY.run(s, values)
        enqueue_after_commit(rt, s, delivery_ids)
    return event_id


def event_row(
    rt: Runtime, project_id: str, type_: str, resource_id: str, body: dict[str, Any], seq: int
) -> dict[str, Any]:
    """The columns of a new event numbered `seq`: the payload is Eyeson's `{timestamp, type,
    <resource>}` plus meetrec's `id` (also the `webhook-id` header) and `seq`."""
    now, event_id = rt.now(), new_id()
    return {
        "id": event_id,
        "project_id": project_id,
        "type": type_,
        "resource_id": resource_id,
        "seq": seq,
        "payload": {"timestamp": wire.iso(now), "type": type_, **body, "id": event_id, "seq": seq},
        "created_at": now,
    }


def started_event_row(rt: Runtime, rec: Recording) -> dict[str, Any]:
    """The event row `recording_started` writes for `rec` (its `room` and `participant` set), for a
    caller that writes it itself (`app.services.core.fused`); `started_committed` follows its commit."""
    return event_row(rt, rec.project_id, RECORDING_UPDATE, rec.id, {"recording": _shown(rt, rec)}, 1)


def started_committed(rt: Runtime, rec: Recording, delivering: bool) -> None:
    """What follows the commit of a recording's start event written by `started_event_row`'s caller:
    a delivery job woken when deliveries were written, and the change's log line."""
    if delivering:
        wake(rt)
    _log_committed([_change_line(rec)])


# Built once: `emit` runs in the transaction of every state change (Core, no unit of work).
_EVENTS, _ENDPOINTS = table_of(WebhookEvent), table_of(WebhookEndpoint)
_LAST_SEQ = Prepared(
    select(func.max(_EVENTS.c.seq)).where(
        _EVENTS.c.type == bindparam("event_type"), _EVENTS.c.resource_id == bindparam("resource")
    )
)
# The event goes in and the project's enabled endpoints ("<id>:<type>,<type>;...", ids are hex and
# types are names) come back in the same round trip: with no subscriber that is the whole outbox write.
_INSERT_EVENT = Prepared(
    insert(_EVENTS).returning(
        # The separator a constant of the SQL (typed as a string, it is taken as an expression too):
        # given as a string it is rendered into the SQL on every execution, which Prepared refuses.
        select(
            func.aggregate_strings(
                _ENDPOINTS.c.id + literal(":") + _ENDPOINTS.c.types, cast(str, literal_column("';'"))
            )
        )
        .where(_ENDPOINTS.c.project_id == bindparam("project"), _ENDPOINTS.c.disabled_at.is_(None))
        .scalar_subquery()
    )
)
_INSERT_DELIVERY = Prepared(insert(table_of(WebhookDelivery)))


def enqueue_after_commit(rt: Runtime, s: InTransaction, delivery_ids: list[str]) -> None:
    """Wake a delivery job once `s` commits (never before: the job must find the rows)."""
    if delivery_ids:
        after_commit(s, "webhook_deliveries", delivery_ids, lambda _: wake(rt))


def job_id(delivery_id: str) -> str:
    """The job id of the delivery job scheduled for a retry."""
    return f"webhook-{delivery_id}"


class _Queued:
    """The last delivery job this process enqueued, per Redis: while it waits in the queue it will see
    whatever was committed before it starts, so a commit need not enqueue another."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, tuple[str, float]] = {}  # redis url -> (job id, when enqueued)


_queued = _Queued()


def wake(rt: Runtime, *, force: bool = False) -> bool:
    """Make sure a delivery job starts after this moment (see `pump`); False when Redis refused (the
    deliveries wait in the outbox for `dispatch_pending`). Never raises.

    A job this process enqueued that is still queued (not started) will claim everything committed
    before it starts, so no other is enqueued unless `force`; one queued longer than COALESCE_SECONDS
    is not trusted (its worker may have died holding it).
    """
    with _queued.lock:
        last = _queued.jobs.get(rt.config.redis_url)
    try:
        if not force and last and time.monotonic() - last[1] < COALESCE_SECONDS:
            if rt.jobs.job_status(last[0]) == "queued":
                return True
        pump_id = f"webhook-pump-{new_id()}"
        rt.jobs.enqueue(DELIVER_WEBHOOK, job_id=pump_id)
    except Exception as e:  # noqa: BLE001 - Redis down (QueueError) or worse: the outbox keeps them
        log.warning("webhook deliveries stay pending: cannot enqueue (%s)", e)
        return False
    with _queued.lock:
        _queued.jobs[rt.config.redis_url] = (pump_id, time.monotonic())
    return True


def _resend_interrupted(rt: Runtime, now: datetime) -> None:
    """Make attempts a dead worker left "sending" pending again."""
    stale = now - min(STALE_SENDING, timedelta(seconds=rt.config.webhook_timeout) + SENDING_SLACK)
    interrupted = (WebhookDelivery.state == D.SENDING.value, WebhookDelivery.attempted_at < stale)
    with rt.db.transaction() as s:
        s.execute(
            update(WebhookDelivery)
            .where(*interrupted)
            .values(state=D.PENDING.value, due_at=now, error="the attempt was interrupted; sending again")
        )


def dispatch_pending(rt: Runtime) -> int:
    """Wake a delivery job when deliveries are due (those Redis was down for, retries whose job was
    lost), after making attempts interrupted by a dead worker pending again. Returns how many are due."""
    now = rt.now()
    _resend_interrupted(rt, now)
    with rt.db.read() as s:
        due = s.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.state == D.PENDING.value, WebhookDelivery.due_at <= now)
        )
    if due:
        wake(rt, force=True)
    return due or 0
