"""Webhook events and their outbox.

An event is written in the same transaction as the state change it describes, with one pending
delivery per subscribed endpoint: no state change commits without its event, and none waits on a
receiver or on Redis. The delivery jobs are enqueued after the commit; a delivery that could not be
enqueued (Redis down) stays pending until `dispatch_pending` (every 30 s from the scheduler) enqueues it.

Each resource (a recording, a room) numbers its events from 1 in `seq`. The conditional update that
moves the resource locks its row until the commit, so two changes of one resource cannot take the
same number.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import wire
from app.errors import QueueError
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
DISPATCH_BATCH = 5000


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
    """Enqueue these deliveries once `s` commits (never before: a job must find its row)."""
    if not delivery_ids:
        return
    pending = s.info.get("webhook_deliveries")
    if pending is None:
        pending = s.info["webhook_deliveries"] = []
        sa_event.listen(
            s, "after_commit", lambda session: enqueue(rt, session.info.pop("webhook_deliveries", ()))
        )
        sa_event.listen(s, "after_rollback", lambda session: session.info.pop("webhook_deliveries", None))
    pending.extend(delivery_ids)


def job_id(delivery_id: str) -> str:
    return f"webhook-{delivery_id}"


def enqueue(rt: Runtime, delivery_ids: Iterable[str]) -> int:
    """Enqueue a job per delivery; returns how many were enqueued. Never raises: with Redis down the
    deliveries stay pending and `dispatch_pending` enqueues them later."""
    done = 0
    for delivery_id in delivery_ids:
        try:
            rt.jobs.enqueue(DELIVER_WEBHOOK, delivery_id, job_id=job_id(delivery_id))
        except Exception as e:  # noqa: BLE001 - Redis down: the outbox keeps the delivery
            log.warning("webhook delivery %s stays pending: cannot enqueue (%s)", delivery_id, e)
            break
        done += 1
    return done


def _resend_interrupted(rt: Runtime, now: datetime) -> None:
    """Make attempts a dead worker left "sending" pending again, and forget their jobs: RQ keeps such a
    job "started" for minutes (until it notices the worker is gone), and a live job is not enqueued again."""
    stale = now - min(STALE_SENDING, timedelta(seconds=rt.config.webhook_timeout) + SENDING_SLACK)
    interrupted = (WebhookDelivery.state == D.SENDING.value, WebhookDelivery.attempted_at < stale)
    with rt.db.transaction() as s:
        ids = s.scalars(select(WebhookDelivery.id).where(*interrupted).limit(DISPATCH_BATCH)).all()
        if ids:
            s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids), *interrupted)
                .values(state=D.PENDING.value, due_at=now, error="the attempt was interrupted; sending again")
            )
    for delivery_id in ids:
        try:
            rt.jobs.forget_job(job_id(delivery_id))
        except QueueError:  # Redis down: nothing is enqueued now either; RQ's cleanup frees the job later
            break


def dispatch_pending(rt: Runtime) -> int:
    """(Re)enqueue what is due: each endpoint's oldest undelivered event of each resource (its later
    events wait for it), and manual redeliveries. Attempts interrupted by a dead worker are made
    pending again first. Returns how many jobs were enqueued."""
    now = rt.now()
    _resend_interrupted(rt, now)
    with rt.db.read() as s:
        rows = s.execute(
            select(
                WebhookDelivery.id,
                WebhookDelivery.endpoint_id,
                WebhookDelivery.manual,
                WebhookDelivery.state,
                WebhookDelivery.due_at,
                WebhookEvent.type,
                WebhookEvent.resource_id,
            )
            .join(WebhookEvent, WebhookDelivery.event_id == WebhookEvent.id)
            .where(WebhookDelivery.state.in_([D.PENDING.value, D.SENDING.value]))
            .order_by(WebhookEvent.seq, WebhookDelivery.attempt)
            .limit(DISPATCH_BATCH)
        ).all()
    heads: dict[object, Any] = {}
    for row in rows:
        heads.setdefault(row.id if row.manual else (row.endpoint_id, row.type, row.resource_id), row)
    due = [
        r.id
        for r in heads.values()
        if r.state == D.PENDING.value and r.due_at <= now and not rt.jobs.job_is_live(job_id(r.id))
    ]
    return enqueue(rt, due)
