"""Revoking an API key: the key and everything that acts in its name stop together."""

from __future__ import annotations

from app.runtime import Runtime
from app.services.access import keys
from app.services.outbox import endpoints


def revoke_key(rt: Runtime, key_id: str) -> bool:
    """Revoke a key: it authenticates no more (in other processes after `keys.KEY_CACHE_SECONDS` at
    most), and in the same transaction its webhook is disabled with its pending deliveries cancelled, so
    no event (and no download link) goes out in its name again. False when it was unknown or revoked
    already."""
    now = rt.now()
    with rt.db.transaction() as s:
        changed = keys.mark_revoked(s, key_id, now)
        if changed:
            endpoints.disable_for_key(s, key_id, "its API key was revoked", now)
    keys.forget_cached(key_id)
    return changed
