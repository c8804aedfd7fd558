"""Webhook endpoints: Eyeson-style registration (one per API key), secrets and their rotation.

Eyeson signs with the API key that registered the webhook, and meetrec stores keys only hashed, so the
registration keeps the raw key sealed with MEETREC_SECRET_KEY (see `app.sealing`). Register with a key
that holds only `webhook:write` and the stored key can do nothing but manage webhooks.

A webhook belongs to the key that registered it: a key sees, rotates and deletes its own, an admin key
every one of its project's (`managed_by`). Revoking a key disables its webhook in the same transaction
(`disable_for_key`), so the one rule fan-out and delivery follow, a disabled endpoint gets nothing,
covers revoked keys too (migration 0009 disabled those revoked before).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import sealing
from app.db import affected
from app.errors import ConfigError, Conflict, NotFound, SealError, Unavailable, Unprocessable
from app.models import ApiKey, DeliveryState, WebhookDelivery, WebhookEndpoint
from app.runtime import Runtime
from app.services.access import keys
from app.services.ids import new_id
from app.services.outbox.outbox import TYPES
from webhooks import signing
from webhooks.urlsafety import UnsafeURL, check_url

# A rotated secret still signs (beside the new one) this long, so receivers can switch without a gap.
ROTATION_GRACE = timedelta(hours=24)
MAX_URL = 2000


@dataclass
class Registration:
    endpoint: WebhookEndpoint
    secret: str | None  # the whsec_ secret, only when this call created it (shown once)


def parse_types(raw: str | list[str]) -> list[str]:
    """Eyeson's comma-separated `types` (or a list), deduplicated; ValueError for none or an unknown one."""
    parts = raw.split(",") if isinstance(raw, str) else raw
    types = list(dict.fromkeys(p.strip() for p in parts if p.strip()))
    unknown = [t for t in types if t not in TYPES]
    if unknown:
        raise ValueError(f"unknown types: {', '.join(unknown)} (known: {', '.join(TYPES)})")
    if not types:
        raise ValueError(f"name at least one of {', '.join(TYPES)}")
    return types


def check_endpoint_url(rt: Runtime, url: str) -> str:
    """An http(s) URL whose host is public or allow-listed; 422 otherwise (checked again at each attempt)."""
    if not url.lower().startswith(("http://", "https://")) or len(url) > MAX_URL:
        raise Unprocessable("url must be an http(s) URL", errors={"url": ["not an http(s) URL"]})
    try:
        check_url(url, rt.config.url_allowlist)
    except UnsafeURL as e:
        raise Unprocessable(f"url refused: {e}", errors={"url": [str(e)]}) from e
    return url


def register(
    rt: Runtime, project_id: str, api_key_id: str, raw_key: str, url: str, types: list[str]
) -> Registration:
    """Create this key's endpoint, or replace its URL and types (which also enables it again).

    Replacing keeps the endpoint's id, history and `whsec_` secret: Eyeson clients register again at
    every start, and a new secret each time would break Standard Webhooks receivers.
    """
    check_endpoint_url(rt, url)
    for _ in range(2):  # two first registrations racing: the loser replaces the winner's
        try:
            return _register(rt, project_id, api_key_id, raw_key, url, types)
        except IntegrityError:
            continue
    raise Conflict("could not register the webhook, try again")


def _register(
    rt: Runtime, project_id: str, api_key_id: str, raw_key: str, url: str, types: list[str]
) -> Registration:
    now = rt.now()
    with rt.db.transaction() as s:
        endpoint = s.scalar(select(WebhookEndpoint).where(WebhookEndpoint.api_key_id == api_key_id))
        secret = None
        if endpoint is None:
            endpoint = WebhookEndpoint(
                id=new_id(), project_id=project_id, api_key_id=api_key_id, created_at=now
            )
            secret = signing.new_secret()
            endpoint.secret_sealed = _seal(rt, endpoint.id, "secret", secret)
            s.add(endpoint)
        endpoint.url = url
        endpoint.types = ",".join(types)
        endpoint.eyeson_key_sealed = _seal(rt, endpoint.id, "eyeson", raw_key)
        endpoint.updated_at = now
        endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
    return Registration(endpoint, secret)


def managed_by(key: ApiKey) -> list[ColumnElement[bool]]:
    """The endpoints `key` may see and manage: a webhook belongs to the key that registered it, and an
    admin key manages every one of its project's. Others are 404, like another project's."""
    conditions = [WebhookEndpoint.project_id == key.project_id]
    if not keys.has_scope(key, "admin"):
        conditions.append(WebhookEndpoint.api_key_id == key.id)
    return conditions


def list_for_key(rt: Runtime, key: ApiKey) -> list[WebhookEndpoint]:
    """The endpoints `key` manages (see `managed_by`), oldest first."""
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(WebhookEndpoint)
                .where(*managed_by(key))
                .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
            )
        )


def registered_by(rt: Runtime, key: ApiKey) -> WebhookEndpoint:
    """The endpoint `key` itself registered (Eyeson's one webhook per API key); 404 when it has none."""
    with rt.db.read() as s:
        endpoint = s.scalar(select(WebhookEndpoint).where(WebhookEndpoint.api_key_id == key.id))
    if endpoint is None:
        raise NotFound("this API key has no webhook; register one with POST /webhooks")
    return endpoint


def get(rt: Runtime, key: ApiKey, endpoint_id: str) -> WebhookEndpoint:
    """One of the endpoints `key` manages; 404 for unknown ids and the others."""
    with rt.db.read() as s:
        endpoint = s.scalar(
            select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, *managed_by(key))
        )
    if endpoint is None:
        raise NotFound("webhook not found")
    return endpoint


def remove(rt: Runtime, key: ApiKey, endpoint_id: str) -> None:
    """Delete an endpoint `key` manages with its delivery log; pending deliveries go with it. 404
    unknown ids and the others."""
    with rt.db.transaction() as s:
        gone = affected(s, delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, *managed_by(key)))
    if not gone:
        raise NotFound("webhook not found")


def rotate_secret(rt: Runtime, key: ApiKey, endpoint_id: str) -> tuple[WebhookEndpoint, str]:
    """A new `whsec_` secret (returned once); the old one keeps signing for ROTATION_GRACE."""
    endpoint = get(rt, key, endpoint_id)
    secret, now = signing.new_secret(), rt.now()
    with rt.db.transaction() as s:
        s.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint.id)
            .values(
                secret_sealed=_seal(rt, endpoint.id, "secret", secret),
                previous_secret_sealed=_reseal_previous(rt, endpoint),
                previous_secret_expires_at=now + ROTATION_GRACE,
                updated_at=now,
            )
        )
    return get(rt, key, endpoint_id), secret


def signing_secrets(rt: Runtime, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The `whsec_` secrets to sign with now: the current one, and a rotated one still in its grace."""
    found = [sealing.unseal(rt.config.secret_key, endpoint.secret_sealed, f"{endpoint.id}:secret")]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_sealed and expires and expires > now:
        found.append(
            sealing.unseal(rt.config.secret_key, endpoint.previous_secret_sealed, f"{endpoint.id}:previous")
        )
    return found


def eyeson_key(rt: Runtime, endpoint: WebhookEndpoint) -> str:
    """The API key that registered the endpoint, for `X-Eyeson-Signature`."""
    return sealing.unseal(rt.config.secret_key, endpoint.eyeson_key_sealed, f"{endpoint.id}:eyeson")


def disable(s: Session, endpoint_id: str, reason: str, now: datetime) -> bool:
    """In `s`: stop delivering to an endpoint and cancel what it has pending; True if this call did it.

    Registering the endpoint again enables it; cancelled deliveries can be redelivered one by one.
    """
    changed = affected(
        s,
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.disabled_at.is_(None))
        .values(disabled_at=now, disabled_reason=reason[:500]),
    )
    if changed:
        s.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.state == DeliveryState.PENDING.value,
            )
            .values(state=DeliveryState.CANCELLED.value, error=f"endpoint disabled: {reason}"[:1000])
        )
    return bool(changed)


def disable_for_key(s: Session, api_key_id: str, reason: str, now: datetime) -> None:
    """In `s`: disable the endpoint `api_key_id` registered, if any, cancelling what it has pending (its
    key was revoked: nothing more goes out in its name, download links least of all)."""
    for endpoint_id in s.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.api_key_id == api_key_id)):
        disable(s, endpoint_id, reason, now)


def _reseal_previous(rt: Runtime, endpoint: WebhookEndpoint) -> str | None:
    try:
        current = sealing.unseal(rt.config.secret_key, endpoint.secret_sealed, f"{endpoint.id}:secret")
    except SealError:  # sealed under another MEETREC_SECRET_KEY: nothing left to honour
        return None
    return _seal(rt, endpoint.id, "previous", current)


def _seal(rt: Runtime, endpoint_id: str, field: str, value: str) -> str:
    try:
        return sealing.seal(rt.config.secret_key, value, f"{endpoint_id}:{field}")
    except ConfigError as e:
        raise Unavailable(str(e)) from e
