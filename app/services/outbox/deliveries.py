"""Delivering webhook events: every attempt logged, retried on a schedule, sent concurrently.

The `webhooks` queue's job is the pump (`pump`): it claims due deliveries in batches (`claims`), sends
them side by side over kept-alive connections, and logs each batch's outcomes in one transaction
(`results`). Per endpoint, the events of one resource go out in order: an attempt waits while an
earlier event of that resource is still undelivered to the endpoint (retrying), and the end of an
event's deliveries (delivered, or given up) lets the next one be claimed. Duplicates remain possible
(the receiver got a request but we timed out, a worker died mid-attempt, an operator redelivered):
receivers dedupe on webhook-id.
"""

from __future__ import annotations

from sqlalchemy import func, select

from app.errors import Conflict, NotFound
from app.models import ApiKey, DeliveryState, WebhookDelivery
from app.runtime import Runtime
from app.services.ids import new_id
from app.services.outbox import claims, endpoints, outbox, pump, results

D = DeliveryState
PAGE_SIZE = 50


def deliver(rt: Runtime, delivery_id: str) -> str:
    """Make one attempt at this delivery now, due or not (the per-resource order still holds), on a
    connection of its own; returns what happened. Never raises for anything the receiver does; the
    outcome is in the delivery row."""
    with rt.db.transaction() as s:
        claimed = claims.claim(rt, s, limit=1, per_endpoint=1, only=[delivery_id])
        if claimed.cancelled:
            return "cancelled: endpoint disabled"
        if not claimed.sends:
            return claims.why_not(s, delivery_id)
    (send,) = claimed.sends
    result = pump.attempt(rt, send)
    with rt.db.transaction() as s:
        retries = results.record(rt, s, [(send, result)])
    results.schedule(rt, retries)
    if not retries:
        outbox.wake(rt)  # the resource's next event, if one waited for this one
    return f"attempt {send.attempt}: {result.error or result.status}"


def redeliver(rt: Runtime, key: ApiKey, endpoint_id: str, delivery_id: str) -> WebhookDelivery:
    """Send a logged delivery's event again now: one attempt, outside the per-resource order.

    404 unknown ids or an endpoint `key` does not manage, 409 when the endpoint is disabled (register
    it again first).
    """
    endpoint = endpoints.get(rt, key, endpoint_id)
    if endpoint.disabled_at is not None:
        raise Conflict(f"the webhook is disabled ({endpoint.disabled_reason}); register it again first")
    now = rt.now()
    with rt.db.transaction() as s:
        original = s.get(WebhookDelivery, delivery_id)
        if original is None or original.endpoint_id != endpoint.id:
            raise NotFound("delivery not found")
        last = s.scalar(
            select(func.max(WebhookDelivery.attempt)).where(
                WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.event_id == original.event_id
            )
        )
        again = WebhookDelivery(
            id=new_id(),
            endpoint_id=endpoint.id,
            event=original.event,
            attempt=(last or 0) + 1,
            manual=True,
            state=D.PENDING.value,
            created_at=now,
            due_at=now,
        )
        s.add(again)
        outbox.enqueue_after_commit(rt, s, [again.id])
    return again


def list_for_endpoint(rt: Runtime, key: ApiKey, endpoint_id: str, page: int = 1) -> list[WebhookDelivery]:
    """An endpoint's attempts, newest first, 50 a page; 404 for unknown endpoints or ones `key` does
    not manage."""
    endpoint = endpoints.get(rt, key, endpoint_id)
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == endpoint.id)
                .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.attempt.desc())
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            )
        )
