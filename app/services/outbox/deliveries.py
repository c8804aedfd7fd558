"""Delivering webhook events: one RQ job per attempt, retried on a schedule, every attempt logged.

Per endpoint, the events of one resource go out in order: an attempt waits while an earlier event of
that resource is still undelivered to the endpoint (retrying), and the end of an event's deliveries
(delivered, or given up) sends the next one. Duplicates remain possible (the receiver got a request
but we timed out, a worker died mid-attempt, an operator redelivered): receivers dedupe on webhook-id.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import sealing, wire
from app.db import affected
from app.errors import ConfigError, Conflict, NotFound, StorageError
from app.models import (
    ApiKey,
    DeliveryState,
    Recording,
    RecordingState,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from app.queueing import DELIVER_WEBHOOK
from app.runtime import Runtime
from app.services.access import links
from app.services.ids import new_id
from app.services.outbox import endpoints, outbox
from webhooks import delivery, policy, signing

log = logging.getLogger(__name__)
D = DeliveryState
PAGE_SIZE = 50


@dataclass(frozen=True)
class _Send:
    """A claimed attempt: everything needed to send it and to record what happened."""

    delivery_id: str
    attempt: int
    manual: bool
    attempted_at: datetime
    endpoint: WebhookEndpoint
    event_id: str
    event_type: str
    resource_id: str
    seq: int
    body: bytes


def deliver(rt: Runtime, delivery_id: str) -> str:
    """Make one delivery attempt (the `webhooks` queue's job); returns what happened, for the job log.

    Never raises for anything the receiver does; the outcome is in the delivery row.
    """
    send = _claim(rt, delivery_id)
    if isinstance(send, str):
        return send
    try:
        headers = _signed_headers(rt, send)
    except (sealing.SealError, ConfigError, signing.SignatureError) as e:
        result = delivery.Result(None, 0, f"cannot sign: {e}")
    else:
        result = delivery.post(
            send.endpoint.url,
            send.body,
            headers,
            timeout=rt.config.webhook_timeout,
            allowlist=rt.config.url_allowlist,
        )
    retry = _record(rt, send, result)
    if retry is not None:
        _schedule(rt, *retry)
    elif not send.manual:
        _send_next(rt, send)
    return f"attempt {send.attempt}: {result.error or result.status}"


def _claim(rt: Runtime, delivery_id: str) -> _Send | str:
    now = rt.now()
    with rt.db.transaction() as s:
        d = s.get(WebhookDelivery, delivery_id)
        if d is None:
            return "gone: its webhook was deleted"
        if d.state != D.PENDING.value:
            return f"already {d.state}"
        endpoint = s.get(WebhookEndpoint, d.endpoint_id)
        if endpoint is None or endpoint.disabled_at is not None:
            d.state, d.error = D.CANCELLED.value, "endpoint disabled"
            return "cancelled: endpoint disabled"
        if not d.manual and _waits_for_earlier(s, d):
            return "waiting for an earlier event of the same resource"
        claimed = affected(
            s,
            update(WebhookDelivery)
            .where(WebhookDelivery.id == d.id, WebhookDelivery.state == D.PENDING.value)
            .values(state=D.SENDING.value, attempted_at=now),
        )
        if not claimed:
            return "taken by another job"
        body = json.dumps(_fresh_payload(rt, s, d.event), separators=(",", ":")).encode()
        return _Send(
            d.id,
            d.attempt,
            d.manual,
            now,
            endpoint,
            d.event.id,
            d.event.type,
            d.event.resource_id,
            d.event.seq,
            body,
        )


def _waits_for_earlier(s: Session, d: WebhookDelivery) -> bool:
    """True while an earlier event of the same resource is undelivered to this endpoint."""
    earlier = s.scalar(
        select(WebhookDelivery.id)
        .join(WebhookEvent, WebhookDelivery.event_id == WebhookEvent.id)
        .where(
            WebhookDelivery.endpoint_id == d.endpoint_id,
            WebhookDelivery.manual.is_(False),
            WebhookDelivery.state.in_([D.PENDING.value, D.SENDING.value]),
            WebhookEvent.type == d.event.type,
            WebhookEvent.resource_id == d.event.resource_id,
            WebhookEvent.seq < d.event.seq,
        )
        .limit(1)
    )
    return earlier is not None


def _fresh_payload(rt: Runtime, s: Session, event: WebhookEvent) -> dict[str, Any]:
    """The stored payload, with a finished recording's links signed now (and logged): events are stored
    without them, and a receiver that was down for an hour still gets a download link that works."""
    payload = dict(event.payload)
    shown = payload.get("recording") or {}
    if event.type != outbox.RECORDING_UPDATE or shown.get("state") != RecordingState.FINISHED:
        return payload
    rec = s.get(Recording, event.resource_id)
    if rec is None or rec.state != RecordingState.FINISHED:
        return payload  # deleted since, with its media: there is nothing left to link to
    try:
        signed = links.fresh(rt, rec)
    except StorageError as e:  # the event still goes out, without links, rather than not at all
        log.warning("links of %s not signed: %s", rec.id, e)
        return payload
    payload["recording"] = {**shown, "links": wire.recording_links(rec.id, rt.config.public_url, signed)}
    if signed.download:
        links.record(rt, [rec], links.WEBHOOK, None, s)
    return payload


def _signed_headers(rt: Runtime, send: _Send) -> dict[str, str]:
    timestamp = int(send.attempted_at.timestamp())
    secrets = endpoints.signing_secrets(rt, send.endpoint, send.attempted_at)
    return {
        "X-Eyeson-Signature": signing.eyeson_signature(endpoints.eyeson_key(rt, send.endpoint), send.body),
        **signing.standard_headers(send.event_id, timestamp, send.body, secrets),
    }


def _record(rt: Runtime, send: _Send, result: delivery.Result) -> tuple[str, datetime] | None:
    """Log the attempt, update the endpoint, disable it when it must be; returns the retry to schedule."""
    now = rt.now()
    gone = policy.disables_endpoint(result.status)
    retry_policy = policy.RetryPolicy(tuple(rt.config.webhook_retry_schedule))
    delay = None if result.ok or gone or send.manual else retry_policy.delay_after(send.attempt)
    next_at = now + timedelta(seconds=delay) if delay is not None else None
    with rt.db.transaction() as s:
        # Lock order is endpoint, then its deliveries, as in deleting or disabling an endpoint;
        # taking the delivery first deadlocks against a concurrent DELETE /webhooks/{id} on PostgreSQL.
        if _lock_endpoint(s, send.endpoint.id) is None:
            return None  # the endpoint was deleted meanwhile
        logged = affected(
            s,
            update(WebhookDelivery)
            .where(WebhookDelivery.id == send.delivery_id, WebhookDelivery.state == D.SENDING.value)
            .values(
                state=(D.SUCCEEDED if result.ok else D.FAILED).value,
                status_code=result.status,
                duration_ms=result.duration_ms,
                error=result.error[:1000] if result.error else None,
                response_excerpt=result.excerpt,
                next_attempt_at=next_at,
            ),
        )
        if not logged:  # the endpoint was deleted meanwhile
            return None
        failing_since = None if result.ok else func.coalesce(WebhookEndpoint.failing_since, now)
        s.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == send.endpoint.id)
            .values(
                last_request_sent_at=send.attempted_at,
                last_response_code=result.status,
                failing_since=failing_since,
            )
        )
        reason = _disable_reason(rt, s, send, result, now)
        if reason:
            endpoints.disable(s, send.endpoint.id, reason, now)
        if next_at is None or reason:
            return None
        retry = WebhookDelivery(
            id=new_id(),
            endpoint_id=send.endpoint.id,
            event_id=send.event_id,
            attempt=send.attempt + 1,
            state=D.PENDING.value,
            created_at=now,
            due_at=next_at,
        )
        s.add(retry)
    return retry.id, next_at


def _lock_endpoint(s: Session, endpoint_id: str) -> str | None:
    return s.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.id == endpoint_id).with_for_update())


def _disable_reason(
    rt: Runtime, s: Session, send: _Send, result: delivery.Result, now: datetime
) -> str | None:
    if policy.disables_endpoint(result.status):
        return f"the receiver answered 410 Gone at {wire.iso(now)}"
    if result.ok:
        return None
    since = s.scalar(select(WebhookEndpoint.failing_since).where(WebhookEndpoint.id == send.endpoint.id))
    if since is not None and now - since >= timedelta(days=rt.config.webhook_disable_after_days):
        return f"every attempt has failed since {wire.iso(since)}; the last: {result.error}"
    return None


def _schedule(rt: Runtime, delivery_id: str, when: datetime) -> None:
    try:
        rt.jobs.enqueue_at(DELIVER_WEBHOOK, when, delivery_id, job_id=outbox.job_id(delivery_id))
    except Exception as e:  # noqa: BLE001 - Redis down: dispatch_pending sends it once it is due
        log.warning("retry %s not scheduled (%s); dispatch_pending will send it", delivery_id, e)


def _send_next(rt: Runtime, send: _Send) -> None:
    """This event is done with this endpoint: send the resource's next waiting event, if due."""
    with rt.db.read() as s:
        following = s.scalar(
            select(WebhookDelivery.id)
            .join(WebhookEvent, WebhookDelivery.event_id == WebhookEvent.id)
            .where(
                WebhookDelivery.endpoint_id == send.endpoint.id,
                WebhookDelivery.manual.is_(False),
                WebhookDelivery.state == D.PENDING.value,
                WebhookDelivery.due_at <= rt.now(),
                WebhookEvent.type == send.event_type,
                WebhookEvent.resource_id == send.resource_id,
                WebhookEvent.seq > send.seq,
            )
            .order_by(WebhookEvent.seq)
            .limit(1)
        )
    if following is not None:
        outbox.enqueue(rt, [following])


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
