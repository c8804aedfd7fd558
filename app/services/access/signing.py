"""Presigned URLs: `expires`, `keyId` and `signature` query parameters, signed with a named key.

The signature is the hex HMAC-SHA256, under the signing key's secret, of

    METHOD \\n PATH \\n the query string without `signature`, its pairs sorted

so a link is good for exactly one method, path and set of parameters, until `expires` (Unix seconds).
Each project signs new links with its newest active key. Rotating: `create_key` a new one (links are
signed with it from then on), wait until links signed with the old one have expired (MEETREC_LINK_TTL),
then `retire_key` the old one: its links stop working at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import select, update

from app import sealing
from app.db import affected
from app.errors import NotFound, SealError, Unauthorized
from app.models import SigningKey
from app.runtime import Runtime

SIGNED = ("expires", "keyId", "signature")
MAX_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Grant:
    """What a valid presigned URL lets its holder do: this method on this path, in this project."""

    project_id: str
    key_id: str


def create_key(rt: Runtime, project_id: str) -> SigningKey:
    """A new signing key for the project; from now on its links are signed with it."""
    stamp = rt.now().strftime("%Y-%m-%d")
    key_id = f"key-{stamp}-{secrets.token_hex(3)}"
    secret = secrets.token_urlsafe(32)
    with rt.db.transaction() as s:
        key = SigningKey(
            id=key_id,
            project_id=project_id,
            secret_sealed=sealing.seal(rt.config.secret_key, secret, _context(key_id)),
            created_at=rt.now(),
        )
        s.add(key)
    return key


def retire_key(rt: Runtime, project_id: str, key_id: str) -> None:
    """Stop accepting links signed with `key_id`; NotFound unless it is an active key of the project."""
    with rt.db.transaction() as s:
        changed = affected(
            s,
            update(SigningKey)
            .where(
                SigningKey.id == key_id, SigningKey.project_id == project_id, SigningKey.retired_at.is_(None)
            )
            .values(retired_at=rt.now()),
        )
    if not changed:
        raise NotFound("no active signing key with this id")


def keys_of(rt: Runtime, project_id: str) -> list[SigningKey]:
    """The project's signing keys, newest first (retired ones included)."""
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(SigningKey)
                .where(SigningKey.project_id == project_id)
                .order_by(SigningKey.created_at.desc(), SigningKey.id.desc())
            )
        )


def current_key(rt: Runtime, project_id: str) -> SigningKey:
    """The key new links are signed with: the newest active one, created when there is none."""
    with rt.db.read() as s:
        key = s.scalar(
            select(SigningKey)
            .where(SigningKey.project_id == project_id, SigningKey.retired_at.is_(None))
            .order_by(SigningKey.created_at.desc(), SigningKey.id.desc())
            .limit(1)
        )
    return key or create_key(rt, project_id)


def sign(
    rt: Runtime, project_id: str, method: str, path: str, params: dict[str, str] | None = None
) -> dict[str, str]:
    """The query parameters (given `params` plus expires, keyId, signature) that presign the request."""
    return signer(rt, project_id)(method, path, params)


Signer = Callable[[str, str, "dict[str, str] | None"], dict[str, str]]


def signer(rt: Runtime, project_id: str) -> Signer:
    """`sign` for many requests of one project: the key is looked up and unsealed once (a list of
    100 recordings with signed links)."""
    key = current_key(rt, project_id)
    secret = _secret(rt, key)
    expires = str(int(rt.now().timestamp()) + rt.config.link_ttl_seconds)

    def sign_one(method: str, path: str, params: dict[str, str] | None = None) -> dict[str, str]:
        query = {**(params or {}), "expires": expires, "keyId": key.id}
        query["signature"] = _digest(secret, method, path, query.items())
        return query

    return sign_one


def verify(rt: Runtime, method: str, path: str, params: Iterable[tuple[str, str]]) -> Grant:
    """The grant of a presigned request; Unauthorized when it is expired, tampered with, or signed by
    an unknown or retired key (one message for all, so a guesser learns nothing)."""
    pairs = list(params)
    given = dict(pairs)
    try:
        expires = int(given.get("expires", ""))
    except ValueError:
        raise Unauthorized("the presigned URL is invalid or has expired") from None
    signature, key_id = given.get("signature", ""), given.get("keyId", "")
    key = _active_key(rt, key_id)
    now = int(rt.now().timestamp())
    if key is None or not now <= expires <= now + MAX_TTL_SECONDS:
        raise Unauthorized("the presigned URL is invalid or has expired")
    expected = _digest(_secret(rt, key), method, path, pairs)
    if not hmac.compare_digest(expected, signature):
        raise Unauthorized("the presigned URL is invalid or has expired")
    return Grant(key.project_id, key.id)


def is_presigned(params: Iterable[str]) -> bool:
    return "signature" in set(params)


def _active_key(rt: Runtime, key_id: str) -> SigningKey | None:
    if not key_id or len(key_id) > 64:
        return None
    with rt.db.read() as s:
        return s.scalar(select(SigningKey).where(SigningKey.id == key_id, SigningKey.retired_at.is_(None)))


def _digest(secret: str, method: str, path: str, pairs: Iterable[tuple[str, str]]) -> str:
    query = urlencode(sorted((k, v) for k, v in pairs if k != "signature"))
    message = f"{method.upper()}\n{path}\n{query}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _secret(rt: Runtime, key: SigningKey) -> str:
    try:
        return sealing.unseal(rt.config.secret_key, key.secret_sealed, _context(key.id))
    except SealError as e:  # MEETREC_SECRET_KEY changed: the key cannot verify anything
        raise Unauthorized("the presigned URL is invalid or has expired") from e


def _context(key_id: str) -> str:
    return f"signing-key:{key_id}"
