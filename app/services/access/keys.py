"""Projects and API keys: creation, listing, bootstrap, authentication and revocation."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import sealing
from app.db import affected
from app.errors import NotFound, SealError, Unprocessable
from app.models import ApiKey, Project
from app.runtime import Runtime
from app.services.access import key_use
from app.services.access.scopes import DEFAULT_SCOPES, SCOPES
from app.services.ids import hash_secret, new_id, new_secret

PUBLIC_TOKEN_NAME = "project api token"

# Keys that authenticated, by hash, for KEY_CACHE_SECONDS: every API request authenticates, and the SQL
# lookup was a fifth of a `GET /recordings/{id}`. `forget_cached` drops a key from this process's cache at
# once; in other processes (other api workers and replicas) a revoked key works for at most this long.
# Unknown keys are never cached, so a new key works at once and guessing costs a lookup each time.
KEY_CACHE_SECONDS = 10.0
KEY_CACHE_SIZE = 1024
_cache: dict[tuple[str, str], tuple[float, ApiKey]] = {}
_cache_lock = threading.Lock()


def create_project(rt: Runtime, name: str, retention_days: int | None = None) -> Project:
    """A new project (tenant); `retention_days` (1..3650) overrides MEETREC_RETENTION_DAYS."""
    if retention_days is not None and not 1 <= retention_days <= 3650:
        raise Unprocessable("retention_days must be 1..3650")
    with rt.db.transaction() as s:
        project = Project(id=new_id(), name=name, retention_days=retention_days, created_at=rt.now())
        s.add(project)
    return project


def create_key(
    rt: Runtime,
    project_id: str,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    name: str = "",
    raw: str = "",
    origins: tuple[str, ...] = (),
) -> tuple[ApiKey, str]:
    """Mint a key for `project_id` (or store `raw` when given); return the row and the raw key once.

    `origins` (scheme://host[:port]) are the only pages a browser may use the key from; none: any."""
    if not scopes:
        raise Unprocessable("a key needs at least one scope")
    unknown = set(scopes) - SCOPES
    if unknown:
        raise Unprocessable(f"unknown scopes: {', '.join(sorted(unknown))}")
    bad = [o for o in origins if normal_origin(o) is None]
    if bad:
        raise Unprocessable(f"not an origin (scheme://host[:port]): {', '.join(bad)}")
    raw = raw or new_secret("mr")
    with rt.db.transaction() as s:
        key = ApiKey(
            id=new_id(),
            project_id=project_id,
            name=name,
            prefix=raw[:8],
            key_hash=hash_secret(raw),
            scopes=" ".join(sorted(scopes)),
            allowed_origins=" ".join(sorted({normal_origin(o) or "" for o in origins})),
            created_at=rt.now(),
        )
        s.add(key)
    return key, raw


def known(rt: Runtime, raw: str) -> ApiKey | None:
    """`authenticate` when this process holds the key already (no SQL: fit for the event loop), its use
    noted; None when it does not (unknown, expired from the cache, or not a key at all)."""
    hit = _cache.get((rt.config.database_url, hash_secret(raw))) if raw and len(raw) <= 200 else None
    if hit is None or hit[0] <= time.monotonic():
        return None
    key_use.note(rt, hit[1].id)
    return hit[1]


def authenticate(rt: Runtime, raw: str) -> ApiKey | None:
    """The live key whose hash matches `raw`, or None; its use is noted (`key_use.note`). The row is
    shared by the requests of the next KEY_CACHE_SECONDS (detached, its project loaded): read it, never
    change it."""
    if not raw or len(raw) > 200:
        return None
    held = known(rt, raw)
    if held is not None:
        return held
    slot, now = (rt.config.database_url, hash_secret(raw)), time.monotonic()
    with rt.db.read() as s:
        key = s.scalar(select(ApiKey).where(ApiKey.key_hash == slot[1], ApiKey.revoked_at.is_(None)))
    if key is not None:
        with _cache_lock:
            if len(_cache) >= KEY_CACHE_SIZE:
                _cache.clear()
            _cache[slot] = (now + KEY_CACHE_SECONDS, key)
        key_use.note(rt, key.id)
    return key


def list_keys(rt: Runtime, project_id: str, include_revoked: bool = True) -> list[ApiKey]:
    """The project's keys, newest first; revoked ones too unless `include_revoked` is False."""
    query = select(ApiKey).where(ApiKey.project_id == project_id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    with rt.db.read() as s:
        return list(s.scalars(query.order_by(ApiKey.created_at.desc(), ApiKey.id)))


def project_key(rt: Runtime, project_id: str, key_id: str) -> ApiKey:
    """One of the project's keys, revoked or not; NotFound for unknown ids and other projects' keys."""
    with rt.db.read() as s:
        key = s.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.project_id == project_id))
    if key is None:
        raise NotFound(f"no API key {key_id} in this project")
    return key


def by_secret(rt: Runtime, raw: str) -> ApiKey | None:
    """The key whose secret is `raw`, revoked or not, read from SQL (no cache, no use noted)."""
    with rt.db.read() as s:
        return s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(raw)))


def public_token(rt: Runtime, project_id: str) -> str:
    """The project's public token (PostHog's `api_token`): a key with the `ingest` scope only, safe to
    ship in a web page, shown again on every read. Minted on first use; revoking it mints another, and so
    does a sealed token that no longer opens (MEETREC_SECRET_KEY changed): that key is revoked."""
    while (found := _live_token(rt, project_id)) is not None:
        opened = _opened_token(rt, *found)
        if opened is not None:
            return opened
    key_id, raw = _mint_token(rt, project_id)
    older = _live_token(rt, project_id)
    if older is not None and older[0] != key_id:  # two first reads raced: both answer the older token
        opened = _opened_token(rt, *older)
        if opened is not None:
            _revoke_token(rt, key_id)
            return opened
    return raw


def rotate_public_token(rt: Runtime, project_id: str) -> str:
    """Revoke the project's public token (pages still sending it are refused from now on, other
    processes after KEY_CACHE_SECONDS at most) and mint the one that replaces it."""
    while (found := _live_token(rt, project_id)) is not None:
        _revoke_token(rt, found[0])
    return public_token(rt, project_id)


def _live_token(rt: Runtime, project_id: str) -> tuple[str, str] | None:
    """The id and sealed token of the project's oldest live public token key, if it has one."""
    with rt.db.read() as s:
        row = s.execute(
            select(ApiKey.id, ApiKey.public_token_sealed)
            .where(
                ApiKey.project_id == project_id,
                ApiKey.public_token_sealed.is_not(None),
                ApiKey.revoked_at.is_(None),
            )
            .order_by(ApiKey.created_at, ApiKey.id)
            .limit(1)
        ).one_or_none()
    return None if row is None else (row[0], str(row[1]))


def _opened_token(rt: Runtime, key_id: str, sealed: str) -> str | None:
    """The public token sealed in `sealed`; None, with its key revoked, when it does not open."""
    try:
        return sealing.unseal(rt.config.secret_key, sealed, _token_context(key_id))
    except SealError:
        _revoke_token(rt, key_id)
        return None


def _mint_token(rt: Runtime, project_id: str) -> tuple[str, str]:
    """A new public token key for the project: its id and raw token."""
    raw = new_secret("phc")
    key_id = new_id()
    with rt.db.transaction() as s:
        s.add(
            ApiKey(
                id=key_id,
                project_id=project_id,
                name=PUBLIC_TOKEN_NAME,
                prefix=raw[:8],
                key_hash=hash_secret(raw),
                scopes="ingest",
                public_token_sealed=sealing.seal(rt.config.secret_key, raw, _token_context(key_id)),
                created_at=rt.now(),
            )
        )
    return key_id, raw


def _revoke_token(rt: Runtime, key_id: str) -> None:
    """Revoke a public token key now (an ingest-only key registers no webhook to stop)."""
    with rt.db.transaction() as s:
        mark_revoked(s, key_id, rt.now())
    forget_cached(key_id)


def _token_context(key_id: str) -> str:
    return f"api_keys:{key_id}:public_token"


def mark_revoked(s: Session, key_id: str, now: datetime) -> bool:
    """In `s`: revoke a key (it authenticates no more once committed, in other processes after
    KEY_CACHE_SECONDS at most; call `forget_cached` after the commit). False when it was unknown or
    revoked already. Revoke keys with `app.services.operations.revocation.revoke_key`, which also stops
    the key's webhook."""
    changed = affected(
        s, update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(changed)


def forget_cached(key_id: str | None = None) -> None:
    """Drop `key_id` (every key when None) from this process's authentication cache."""
    with _cache_lock:
        for slot, (_, key) in list(_cache.items()):
            if key_id is None or key.id == key_id:
                del _cache[slot]


def normal_origin(origin: str) -> str | None:
    """`origin` as browsers send it (lower-case scheme://host[:port], no path), or None if it is not one."""
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def origin_allowed(key: ApiKey, origin: str | None) -> bool:
    """True when a request from a page at `origin` may use `key`: the key names no origins, the request
    comes from no page (a server, curl), or the page's origin is one the key names."""
    if not key.allowed_origins or not origin:
        return True
    return normal_origin(origin) in key.allowed_origins.split()


def has_scope(key: ApiKey, scope: str) -> bool:
    scopes = key.scope_set
    return "admin" in scopes or scope in scopes


def bootstrap_admin(rt: Runtime, raw: str = "") -> str | None:
    """Make sure an admin key exists; return a newly minted raw key, or None when none was minted.

    With `raw` (MEETREC_API_KEY) that exact key is ensured, so a script can drive a fresh stack.
    Without it, a key is minted only when the database has no admin key yet.
    """
    with rt.db.read() as s:
        if raw and s.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_secret(raw))):
            return None
        if not raw and s.scalar(select(ApiKey.id).where(ApiKey.scopes.contains("admin")).limit(1)):
            return None
    _, minted = create_key(rt, bootstrap_project_id(rt), ("admin",), name="bootstrap admin", raw=raw)
    return None if raw else minted


def bootstrap_project_id(rt: Runtime) -> str:
    """The first project, created as "default" when there is none."""
    with rt.db.read() as s:
        project_id = s.scalar(select(Project.id).order_by(Project.created_at).limit(1))
    return project_id or create_project(rt, "default").id
