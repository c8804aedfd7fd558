"""Claiming webhook deliveries for sending: a batch in one transaction, each ready to POST.

A delivery is claimable when it is pending, due and its endpoint enabled, and, unless it is a manual
redelivery, no earlier event of its resource is still undelivered (pending or sending) to the same
endpoint: per endpoint, the events of one resource go out one at a time and in order, while different
resources go out side by side. Claiming moves a delivery to "sending" and stamps `attempted_at`; a claim
whose worker died is made pending again by `outbox.dispatch_pending` once its attempt's time is past.
Pending deliveries of a disabled endpoint met on the way are cancelled.

On PostgreSQL the candidates are locked with SKIP LOCKED, so concurrent claims never wait on each other
(nor on an endpoint being deleted); the conditional update then says which rows this claim won.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Select, Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from app import sealing, wire
from app.errors import ConfigError, StorageError
from app.models import (
    DeliveryState,
    Recording,
    RecordingState,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from app.runtime import Runtime
from app.services.access import links
from app.services.outbox import endpoints, outbox
from webhooks import signing

log = logging.getLogger(__name__)
D = DeliveryState
UNDELIVERED = (D.PENDING.value, D.SENDING.value)
# Candidates read per claimable slot: room to skip those of endpoints already at their limit.
OVERSCAN = 2


@dataclass(frozen=True)
class Send:
    """A claimed attempt: everything needed to send it and to record what happened."""

    delivery_id: str
    attempt: int
    manual: bool
    attempted_at: datetime
    endpoint: WebhookEndpoint
    event_id: str
    body: bytes
    headers: dict[str, str]
    unsigned: str | None = None  # why it cannot be signed (it is then not sent, and fails)
    cap: int = 1  # at most this many of its endpoint's attempts in flight at once


@dataclass
class Claimed:
    sends: list[Send] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # pending deliveries of disabled endpoints
    more: bool = False  # due deliveries were left for lack of senders (another job could send them)


def claim(
    rt: Runtime,
    s: Session,
    *,
    limit: int,
    per_endpoint: int,
    per_failing: int | None = None,
    busy: Mapping[str, int] | None = None,
    full: Collection[str] = (),
    only: Sequence[str] | None = None,
    also: Sequence[str] = (),
) -> Claimed:
    """In `s`: claim up to `limit` due deliveries, at most `per_endpoint` in flight per endpoint
    (`per_failing` to one whose last attempt failed: a receiver that hangs holds few senders) counting
    the `busy` ones (endpoint id -> attempts already in flight); `full` endpoints are at their cap.

    `only` names the deliveries to consider, due or not (an explicit attempt); None: any due one, and
    those of `also` even if not quite due (a job scheduled for a retry may run a moment early: another
    machine's clock, or a scheduler counting whole seconds).
    """
    busy = dict(busy or {})
    now = rt.now()
    if only is not None:
        rows = s.connection().execute(_ONLY, {"only": list(only)})
    else:
        params = {"now": now, "also": list(also), "saturated": list(full), "scan": limit * OVERSCAN}
        rows = s.connection().execute(_DUE, params)
    picked: dict[str, Row[Any]] = {}
    cancel: list[str] = []
    caps: dict[str, int] = {}
    left = 0
    for row in rows:
        cap = caps[row.endpoint_id] = (
            per_endpoint if row.failing_since is None else per_failing or per_endpoint
        )
        if row.disabled_at is not None:
            cancel.append(row.id)
        elif len(picked) < limit and busy.get(row.endpoint_id, 0) < cap:
            picked[row.id] = row
            busy[row.endpoint_id] = busy.get(row.endpoint_id, 0) + 1
        else:
            left += 1
    found = Claimed(more=left > 0)
    if cancel:
        found.cancelled = list(s.connection().scalars(_CANCEL, {"ids": cancel}))
    if picked:
        won = s.connection().scalars(_CLAIM, {"ids": list(picked), "now": now}).all()
        found.sends = _sends(rt, s, [picked[i] for i in won], now, caps) if won else []
    return found


def why_not(s: Session, delivery_id: str) -> str:
    """Why `claim(only=[delivery_id])` claimed nothing."""
    d = s.get(WebhookDelivery, delivery_id)
    if d is None:
        return "gone: its webhook was deleted"
    if d.state != D.PENDING.value:
        return f"already {d.state}"
    return "waiting for an earlier event of the same resource"


# The statements are built once: a claim runs every few milliseconds under load.
_d = cast(Table, WebhookDelivery.__table__)
_e = cast(Table, WebhookEvent.__table__)
_ep = cast(Table, WebhookEndpoint.__table__)


def _candidates() -> Select[Any]:
    earlier, earlier_event = _d.alias("earlier"), _e.alias("earlier_event")
    waits = (
        select(earlier.c.id)
        .join(earlier_event, earlier.c.event_id == earlier_event.c.id)
        .where(
            earlier.c.endpoint_id == _d.c.endpoint_id,
            earlier.c.manual.is_(False),
            earlier.c.state.in_(UNDELIVERED),
            earlier_event.c.type == _e.c.type,
            earlier_event.c.resource_id == _e.c.resource_id,
            earlier_event.c.seq < _e.c.seq,
        )
        .exists()
    )
    return (
        select(
            _d.c.id,
            _d.c.endpoint_id,
            _d.c.attempt,
            _d.c.manual,
            _d.c.event_id,
            _e.c.type,
            _e.c.resource_id,
            _e.c.payload,
            _ep.c.disabled_at,
            _ep.c.failing_since,
        )
        .join(_e, _d.c.event_id == _e.c.id)
        .join(_ep, _d.c.endpoint_id == _ep.c.id)
        .where(_d.c.state == D.PENDING.value, or_(_d.c.manual.is_(True), ~waits))
        .order_by(_d.c.due_at, _e.c.seq)
        .with_for_update(of=_d, skip_locked=True)
    )


_DUE = (
    _candidates()
    .where(
        or_(_d.c.due_at <= bindparam("now"), _d.c.id.in_(bindparam("also", expanding=True))),
        _d.c.endpoint_id.not_in(bindparam("saturated", expanding=True)),
    )
    .limit(bindparam("scan"))
)
_ONLY = _candidates().where(_d.c.id.in_(bindparam("only", expanding=True)))
_CLAIM = (
    update(_d)
    .where(_d.c.id.in_(bindparam("ids", expanding=True)), _d.c.state == D.PENDING.value)
    .values(state=D.SENDING.value, attempted_at=bindparam("now"))
    .returning(_d.c.id)
)
_CANCEL = (
    update(_d)
    .where(_d.c.id.in_(bindparam("ids", expanding=True)), _d.c.state == D.PENDING.value)
    .values(state=D.CANCELLED.value, error="endpoint disabled")
    .returning(_d.c.id)
)


_ENDPOINTS = select(WebhookEndpoint).where(WebhookEndpoint.id.in_(bindparam("ids", expanding=True)))


def _sends(rt: Runtime, s: Session, rows: list[Row[Any]], now: datetime, caps: dict[str, int]) -> list[Send]:
    found = s.scalars(_ENDPOINTS, {"ids": list({r.endpoint_id for r in rows})})
    by_id = {e.id: e for e in found}
    keys: dict[str, tuple[str, list[str]] | str] = {}  # endpoint id -> its signing keys, or why none
    sends = []
    for r in rows:
        endpoint = by_id[r.endpoint_id]
        payload = _fresh_payload(rt, s, r.type, r.resource_id, r.payload)
        body = json.dumps(payload, separators=(",", ":")).encode()
        if endpoint.id not in keys:
            keys[endpoint.id] = _signing_keys(rt, endpoint, now)
        headers, unsigned = _signed(r.event_id, now, body, keys[endpoint.id])
        cap = caps[r.endpoint_id]
        sends.append(Send(r.id, r.attempt, r.manual, now, endpoint, r.event_id, body, headers, unsigned, cap))
    return sends


def _signing_keys(rt: Runtime, endpoint: WebhookEndpoint, now: datetime) -> tuple[str, list[str]] | str:
    """The Eyeson API key and the `whsec_` secrets to sign with; or why they cannot be had.

    Kept per sealed values (a rotation or a new registration changes them), so a busy endpoint's
    secrets are unsealed once, not at every round.
    """
    expires = endpoint.previous_secret_expires_at
    sealed = (
        rt.config.secret_key,
        endpoint.id,
        endpoint.eyeson_key_sealed,
        endpoint.secret_sealed,
        endpoint.previous_secret_sealed if expires and expires > now else None,
    )
    if sealed in _unsealed:
        return _unsealed[sealed]
    try:
        found = endpoints.eyeson_key(rt, endpoint), endpoints.signing_secrets(rt, endpoint, now)
    except (sealing.SealError, ConfigError) as e:
        return f"cannot sign: {e}"
    if len(_unsealed) >= UNSEALED_KEPT:
        _unsealed.clear()
    _unsealed[sealed] = found
    return found


UNSEALED_KEPT = 1000
_unsealed: dict[tuple[str | None, ...], tuple[str, list[str]]] = {}


def _signed(
    event_id: str, now: datetime, body: bytes, signer: tuple[str, list[str]] | str
) -> tuple[dict[str, str], str | None]:
    """Both signatures' headers, or none and why."""
    if isinstance(signer, str):
        return {}, signer
    api_key, secrets = signer
    try:
        standard = signing.standard_headers(event_id, int(now.timestamp()), body, secrets)
    except signing.SignatureError as e:
        return {}, f"cannot sign: {e}"
    return {"X-Eyeson-Signature": signing.eyeson_signature(api_key, body), **standard}, None


def _fresh_payload(
    rt: Runtime, s: Session, type_: str, resource_id: str, stored: dict[str, Any]
) -> dict[str, Any]:
    """The stored payload, with a finished recording's links signed now (and logged): events are stored
    without them, and a receiver that was down for an hour still gets a download link that works."""
    payload = dict(stored)
    shown = payload.get("recording") or {}
    if type_ != outbox.RECORDING_UPDATE or shown.get("state") != RecordingState.FINISHED:
        return payload
    rec = s.get(Recording, resource_id)
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
