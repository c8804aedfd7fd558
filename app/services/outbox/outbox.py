"""Webhook events and their outbox.

An event is written in the same transaction as the state change it describes, with one pending
delivery per subscribed endpoint: no state change commits without its event, and none waits on a
receiver or on Redis. After the commit a delivery job is woken (`wake`: one job sends every due
delivery, see `pump`); a delivery whose job could not be enqueued (Redis down) stays pending until
`dispatch_pending` (every 30 s from the scheduler) wakes one.

Each resource (a recording, a room) numbers its events from 1 in `seq`. The conditional update that
moves the resource locks its row until the commit, so two changes of one resource cannot take the
same number.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import wire
from app.models import (
    DeliveryState,
    Recording,
    Room,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from app.queueing import DELIVER_WEBHOOK
from app.runtime import Runtime
from app.services.ids import new_id

log = logging.getLogger(__name__)

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
    download and poster links: each delivery attempt signs those afresh (`deliveries`)."""
    s.flush()
    rec = s.get(Recording, recording_id, populate_existing=True)
    if rec is not None:
        # Stored unsigned: a link signed now would expire before a late attempt, and was never audited.
        shown = wire.recording(rec, rt.config.public_url, wire.UNSIGNED)
        emit(rt, s, rec.project_id, RECORDING_UPDATE, rec.id, {"recording": shown})


def room_changed(rt: Runtime, s: Session, room_id: str) -> None:
    """Emit `room_update` with the room as the API shows it now (started, or shut down)."""
    s.flush()
    room = s.get(Room, room_id, populate_existing=True)
    if room is not None:
        emit(rt, s, room.project_id, ROOM_UPDATE, room.id, {"room": wire.room(room)})


def emit(rt: Runtime, s: Session, project_id: str, type_: str, resource_id: str, body: dict[str, Any]) -> str:
    """Write an event and its pending deliveries in `s`'s transaction; enqueue them after the commit.

    The payload is Eyeson's `{timestamp, type, <resource>}` plus meetrec's `id` (also the `webhook-id`
    header) and `seq`. Returns the event id.
    """
    now = rt.now()
    last = s.scalar(
        select(func.max(WebhookEvent.seq)).where(
            WebhookEvent.type == type_, WebhookEvent.resource_id == resource_id
        )
    )
    seq, event_id = (last or 0) + 1, new_id()
    event = WebhookEvent(
        id=event_id,
        project_id=project_id,
        type=type_,
        resource_id=resource_id,
        seq=seq,
        payload={"timestamp": wire.iso(now), "type": type_, **body, "id": event_id, "seq": seq},
        created_at=now,
    )
    s.add(event)
    subscribed = s.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.types).where(
            WebhookEndpoint.project_id == project_id, WebhookEndpoint.disabled_at.is_(None)
        )
    ).all()
    deliveries = [
        WebhookDelivery(
            id=new_id(),
            endpoint_id=ep.id,
            event=event,
            attempt=1,
            state=D.PENDING.value,
            created_at=now,
            due_at=now,
        )
        for ep in subscribed
        if type_ in ep.types.split(",")
    ]
    s.add_all(deliveries)
    enqueue_after_commit(rt, s, [d.id for d in deliveries])
    return event_id


def enqueue_after_commit(rt: Runtime, s: Session, delivery_ids: list[str]) -> None:
    """Wake a delivery job once `s` commits (never before: the job must find the rows)."""
    if not delivery_ids:
        return
    if not s.info.get("webhook_deliveries"):
        s.info["webhook_deliveries"] = True
        sa_event.listen(
            s, "after_commit", lambda session: session.info.pop("webhook_deliveries", None) and wake(rt)
        )
        sa_event.listen(s, "after_rollback", lambda session: session.info.pop("webhook_deliveries", None))


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
