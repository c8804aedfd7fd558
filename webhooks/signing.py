"""Webhook signatures, both schemes meetrec sends on every request.

- Eyeson: `X-Eyeson-Signature` is the hex HMAC-SHA256 of the raw body, keyed with the API key that
  registered the webhook.
- Standard Webhooks (https://www.standardwebhooks.com): `webhook-id` (the event id, the same on every
  retry), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`, a space-separated
  list of `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per valid `whsec_` secret (two
  while a rotated secret is still honoured).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


class SignatureError(ValueError):
    """A webhook request does not carry a valid signature."""


def eyeson_signature(api_key: str, body: bytes) -> str:
    """Eyeson's `X-Eyeson-Signature`: hex HMAC-SHA256 of `body` keyed with the API key."""
    return hmac.new(api_key.encode(), body, hashlib.sha256).hexdigest()


def new_secret() -> str:
    """A fresh Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _secret_bytes(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError as e:
        raise SignatureError("a webhook secret must be whsec_ and base64") from e
    if not key:
        raise SignatureError("empty webhook secret")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature: `v1,<base64>`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def standard_headers(msg_id: str, timestamp: int, body: bytes, secrets_: Iterable[str]) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret in `secrets_`."""
    signatures = " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)
    if not signatures:
        raise SignatureError("no secret to sign with")
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures}
