"""Retention: a recording is destroyed `retention_days` after it was created (project override).

Persisted recordings and those under legal hold are exempt. Only an admin key may set or lift a legal
hold; a held recording cannot be deleted through the API either (409).

The purge works a batch at a time: one query picks up to `BATCH` expired recordings, one conditional
update claims those still expirable (no hold, not persisted: a flag set since the query wins), their
object versions go in S3 multi-object deletes (1000 keys a request), and their rows are tombstoned in
one transaction that writes each one's `recording_update` event. Objects go first, as in
`recordings.delete`: with storage down the claims are given back and the next run tries again. A
deletion that died between its claim and its tombstone is finished by the next purge.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import or_, select, update

from app.db import affected
from app.errors import Conflict, Forbidden, StorageError, Unprocessable
from app.models import ApiKey, Project, Recording, RecordingState
from app.runtime import Runtime
from app.services.access import keys
from app.services.core import lifecycle, recordings

log = logging.getLogger(__name__)
S = RecordingState
BATCH = 1000  # S3's multi-object delete takes 1000 keys; one SQL IN list of this size is cheap too
# A claim this old belongs to a deletion that died (a live one takes seconds, a purge batch a minute).
ABANDONED_AFTER = timedelta(minutes=15)


def expired_ids(rt: Runtime, limit: int = BATCH) -> list[str]:
    """Ids of recordings past their project's retention, oldest first. Running ones, persisted ones and
    those under legal hold are left alone."""
    now = rt.now()
    with rt.db.read() as s:
        overrides = [
            d
            for d in s.scalars(select(Project.retention_days).distinct().where(Project.retention_days > 0))
            if d is not None
        ]
        # One clause per distinct retention (a handful), not per project: it scales with projects.
        clauses = [
            Recording.project_id.in_(select(Project.id).where(Project.retention_days == days))
            & (Recording.created_at < now - timedelta(days=days))
            for days in overrides
        ]
        default = select(Project.id).where(or_(Project.retention_days.is_(None), Project.retention_days <= 0))
        clauses.append(
            Recording.project_id.in_(default)
            & (Recording.created_at < now - timedelta(days=rt.config.retention_days))
        )
        return list(
            s.scalars(
                select(Recording.id)
                .where(
                    Recording.state.in_(lifecycle.PURGE.sources),
                    Recording.persist.is_(False),
                    Recording.legal_hold.is_(False),
                    or_(*clauses),
                )
                .order_by(Recording.created_at)
                .limit(limit)
            )
        )


def purge_expired(rt: Runtime, batch: int = BATCH) -> int:
    """Delete every expired recording's object versions and tombstone its row; return how many went.
    With storage down nothing is deleted and the next run tries again."""
    purged = 0
    try:
        purged += _finish_abandoned(rt)
        while ids := expired_ids(rt, batch):
            moved = purge(rt, ids)
            purged += len(moved)
            if not moved:  # nothing left that this query can move: never spin
                break
    except StorageError as e:
        log.warning("purge postponed: %s", e)
    if purged:
        log.info("retention purged %d recordings", purged)
    return purged


def purge(rt: Runtime, recording_ids: list[str]) -> list[str]:
    """Claim those of `recording_ids` still expirable, delete their objects, tombstone them; return the
    ids purged. StorageError (the claim given back) when storage is down."""
    claim = lifecycle.claim(rt, recording_ids, lifecycle.CLAIM_PURGE)
    try:
        _delete_objects(rt, claim.ids)
    except StorageError:
        lifecycle.release(rt, claim)
        raise
    with rt.db.transaction() as s:
        return lifecycle.apply(rt, s, lifecycle.PURGE, claim.ids, deleted_at=rt.now())


def _finish_abandoned(rt: Runtime) -> int:
    """Finish deletions that claimed a recording and died before tombstoning it (a crashed api or job).
    Their claims stay when storage is down: the next run finishes them."""
    cutoff = rt.now() - ABANDONED_AFTER
    with rt.db.read() as s:
        ids = list(
            s.scalars(
                select(Recording.id)
                .where(Recording.condemned_at < cutoff, Recording.state != S.DELETED)
                .limit(BATCH)
            )
        )
    _delete_objects(rt, ids)
    with rt.db.transaction() as s:
        return len(lifecycle.apply(rt, s, lifecycle.DELETE, ids, deleted_at=rt.now()))


def _delete_objects(rt: Runtime, recording_ids: list[str]) -> None:
    if recording_ids:
        rt.storage.delete_prefixes(recordings.object_prefix(i) for i in recording_ids)


def set_flags(
    rt: Runtime,
    key: ApiKey,
    recording_id: str,
    *,
    persist: bool | None = None,
    legal_hold: bool | None = None,
) -> Recording:
    """Set or clear a recording's `persist` and `legal_hold` flags (None leaves one as it is).

    NotFound unknown, foreign or deleted; Forbidden when a key without the admin scope touches the legal
    hold; Unprocessable when nothing is to change; Conflict while a deletion is removing its objects.
    """
    values = {name: v for name, v in (("persist", persist), ("legal_hold", legal_hold)) if v is not None}
    if not values:
        raise Unprocessable("nothing to change", errors={"json": {"persist": ["give persist or legal_hold"]}})
    if "legal_hold" in values and not keys.has_scope(key, "admin"):
        raise Forbidden("only a key with the admin scope may set or lift a legal hold")
    recordings.get(rt, key.project_id, recording_id)  # 404 before anything changes
    with rt.db.transaction() as s:
        changed = affected(
            s,
            update(Recording)
            .where(
                Recording.id == recording_id,
                Recording.project_id == key.project_id,
                Recording.state != S.DELETED,
                Recording.condemned_at.is_(None),
            )
            .values(**values),
        )
    recording = recordings.get(rt, key.project_id, recording_id)  # deleted meanwhile: 404
    if not changed:
        raise Conflict("the recording is being deleted")
    return recording
