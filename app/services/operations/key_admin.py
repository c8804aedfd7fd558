"""Managing a project's API keys by id, for the command line and the console: revoke and rotate.

Both live here rather than in `access.keys` because revoking a key also stops its webhook
(`revocation.revoke_key`), which sits above the key layer. Ids are looked up within the project, so
another project's key id is as unknown as a made-up one.
"""

from __future__ import annotations

from app.errors import Conflict
from app.models import ApiKey
from app.runtime import Runtime
from app.services.access import keys
from app.services.operations import revocation


def revoke(rt: Runtime, project_id: str, key_id: str) -> ApiKey:
    """Revoke one of the project's keys and its webhook; the key as it is now (revoking twice is a
    no-op). NotFound for unknown and foreign ids."""
    keys.project_key(rt, project_id, key_id)
    revocation.revoke_key(rt, key_id)
    return keys.project_key(rt, project_id, key_id)


def rotate(rt: Runtime, project_id: str, key_id: str) -> tuple[ApiKey, str]:
    """Replace a live key: mint one with the same name, scopes and origins, then revoke the old one
    (and its webhook); return the new key and its secret, shown this once. The project's public token
    is replaced by a new public token. NotFound for unknown and foreign ids, Conflict when revoked."""
    old = keys.project_key(rt, project_id, key_id)
    if old.revoked_at is not None:
        raise Conflict("the key is revoked already; create a new one instead")
    if old.public_token_sealed is not None:
        raw = keys.rotate_public_token(rt, project_id)
        new = keys.by_secret(rt, raw)
        assert new is not None  # minted just now
        return new, raw
    origins = tuple(old.allowed_origins.split())
    new, raw = keys.create_key(rt, project_id, tuple(old.scope_set), name=old.name, origins=origins)
    revocation.revoke_key(rt, old.id)
    return new, raw
