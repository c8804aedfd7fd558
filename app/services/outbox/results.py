"""Recording what attempts did, a batch in one transaction: every attempt logged, each endpoint's last
answer, the retries `webhooks.policy` schedules, and endpoints disabled when they must be."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from app import wire
from app.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from app.queueing import DELIVER_WEBHOOK
from app.runtime import Runtime
from app.services.ids import new_id
from app.services.outbox import endpoints, outbox
from app.services.outbox.claims import Send
from webhooks import delivery, policy

log = logging.getLogger(__name__)
D = DeliveryState
Done = tuple[Send, delivery.Result]
Retry = tuple[str, datetime]  # the new attempt's delivery id, and when it is due

_deliveries = cast(Table, WebhookDelivery.__table__)
_endpoints = cast(Table, WebhookEndpoint.__table__)
_LOCK_ENDPOINTS = (
    select(_endpoints.c.id, _endpoints.c.failing_since)
    .where(_endpoints.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_endpoints.c.id)
    .with_for_update()
)
_LAST_ANSWER = (
    update(_endpoints)
    .where(_endpoints.c.id == bindparam("b_id"))
    .values(
        last_request_sent_at=bindparam("b_sent"),
        last_response_code=bindparam("b_status"),
        failing_since=bindparam("b_since"),
    )
)
_LOGGED = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("b_id"), _deliveries.c.state == D.SENDING.value)
    .values(
        state=bindparam("b_state"),
        status_code=bindparam("b_status"),
        duration_ms=bindparam("b_ms"),
        error=bindparam("b_error"),
        response_excerpt=bindparam("b_excerpt"),
        next_attempt_at=bindparam("b_next"),
    )
)


def record(rt: Runtime, s: Session, done: Sequence[Done]) -> list[Retry]:
    """In `s`: log these attempts and update their endpoints; returns the retries to schedule.

    An attempt whose endpoint was deleted meanwhile, or that is no longer "sending" (made pending again
    as interrupted), is not logged and not retried.
    """
    if not done:
        return []
    now = rt.now()
    # Lock order is endpoints, then their deliveries, as in deleting or disabling an endpoint;
    # taking deliveries first deadlocks against a concurrent DELETE /webhooks/{id} on PostgreSQL.
    db = s.connection()  # Core statements, built once: a busy pump runs this every few milliseconds
    locked = db.execute(_LOCK_ENDPOINTS, {"ids": sorted({send.endpoint.id for send, _ in done})})
    failing_since: dict[str, datetime | None] = {row.id: row.failing_since for row in locked}
    kept = [(send, r) for send, r in done if send.endpoint.id in failing_since]
    if not kept:
        return []
    retry_policy = policy.RetryPolicy(tuple(rt.config.webhook_retry_schedule))
    due = {send.delivery_id: _next_at(retry_policy, send, result, now) for send, result in kept}
    # Guarded by the state: an attempt made pending again meanwhile (as interrupted) is not logged.
    db.execute(_LOGGED, [_row(send, result, due[send.delivery_id]) for send, result in kept])
    disabled = _update_endpoints(rt, s, kept, failing_since, now)
    retrying = _logged_ones(s, [d for d, next_at in due.items() if next_at is not None])
    retries = [
        WebhookDelivery(
            id=new_id(),
            endpoint_id=send.endpoint.id,
            event_id=send.event_id,
            attempt=send.attempt + 1,
            state=D.PENDING.value,
            created_at=now,
            due_at=due[send.delivery_id],
        )
        for send, _ in kept
        if send.delivery_id in retrying and send.endpoint.id not in disabled
    ]
    s.add_all(retries)
    s.flush()  # now: a claim in this transaction must see them (it blocks the resource's next events)
    return [(r.id, r.due_at) for r in retries]


def _logged_ones(s: Session, delivery_ids: list[str]) -> set[str]:
    """Which of these attempts were just logged as failed (not made pending again meanwhile)."""
    if not delivery_ids:
        return set()
    return set(
        s.scalars(
            select(WebhookDelivery.id).where(
                WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.state == D.FAILED.value
            )
        )
    )


def schedule(rt: Runtime, retries: Sequence[Retry]) -> None:
    """Enqueue a delivery job for when the retries are due: one per second they fall in (a receiver's
    outage fails many attempts at once; a job sends every one that is due)."""
    latest: dict[datetime, str] = {}
    for delivery_id, when in sorted(retries, key=lambda r: r[1]):
        # RQ's scheduler counts whole seconds (it would run a job due at 10.7 s at 10 s): the next one.
        latest[when.replace(microsecond=0) + timedelta(seconds=1 if when.microsecond else 0)] = delivery_id
    for when, delivery_id in latest.items():
        try:
            rt.jobs.enqueue_at(DELIVER_WEBHOOK, when, delivery_id, job_id=outbox.job_id(delivery_id))
        except Exception as e:  # noqa: BLE001 - Redis down: dispatch_pending sends it once it is due
            log.warning("retry %s not scheduled (%s); dispatch_pending will send it", delivery_id, e)
            return


def _next_at(
    retry_policy: policy.RetryPolicy, send: Send, result: delivery.Result, now: datetime
) -> datetime | None:
    if result.ok or send.manual or policy.disables_endpoint(result.status):
        return None
    delay = retry_policy.delay_after(send.attempt)
    return now + timedelta(seconds=delay) if delay is not None else None


def _row(send: Send, result: delivery.Result, next_at: datetime | None) -> dict[str, object]:
    return {
        "b_id": send.delivery_id,
        "b_state": (D.SUCCEEDED if result.ok else D.FAILED).value,
        "b_status": result.status,
        "b_ms": result.duration_ms,
        "b_error": result.error[:1000] if result.error else None,
        "b_excerpt": result.excerpt,
        "b_next": next_at,
    }


def _update_endpoints(
    rt: Runtime, s: Session, kept: Sequence[Done], failing_since: dict[str, datetime | None], now: datetime
) -> set[str]:
    """Each endpoint's last attempt, the time since which all have failed, and whether to disable it;
    returns the endpoints disabled."""
    by_endpoint: dict[str, list[Done]] = {}
    for item in kept:
        by_endpoint.setdefault(item[0].endpoint.id, []).append(item)
    disabled = set()
    for endpoint_id, attempts in by_endpoint.items():
        send, last = attempts[-1]
        some_ok = any(r.ok for _, r in attempts)
        since = None if last.ok else (now if some_ok else failing_since[endpoint_id] or now)
        answer = {"b_id": endpoint_id, "b_sent": send.attempted_at, "b_status": last.status, "b_since": since}
        s.connection().execute(_LAST_ANSWER, answer)
        reason = _disable_reason(rt, attempts, since, now)
        if reason:
            endpoints.disable(s, endpoint_id, reason, now)
            disabled.add(endpoint_id)
    return disabled


def _disable_reason(
    rt: Runtime, attempts: Sequence[Done], since: datetime | None, now: datetime
) -> str | None:
    if any(policy.disables_endpoint(r.status) for _, r in attempts):
        return f"the receiver answered 410 Gone at {wire.iso(now)}"
    last = attempts[-1][1]
    if last.ok or since is None:
        return None
    if now - since >= timedelta(days=rt.config.webhook_disable_after_days):
        return f"every attempt has failed since {wire.iso(since)}; the last: {last.error}"
    return None
