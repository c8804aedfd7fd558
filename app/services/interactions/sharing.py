"""Public links to one recording (PostHog's sharing configuration).

`configuration` answers a recording's link settings (a disabled one is made on first read, as PostHog
does). Enabling mints a fresh access token; disabling revokes it at once, and enabling again mints
another, so a link that was turned off never opens anything again. Each change is one conditional
UPDATE, so a concurrent disable is never undone by a refresh. The token is stored hashed (for
`opened_by`) and sealed with MEETREC_SECRET_KEY (its owner sees it again on every read); a sealed token
that no longer opens (the key changed) turns the link off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError

from app import sealing
from app.db import affected
from app.errors import SealError
from app.models import Recording, RecordingState, SharingConfiguration
from app.runtime import Runtime
from app.services.ids import hash_secret, new_secret

log = logging.getLogger(__name__)

_OFF: dict[str, Any] = {"enabled": False, "token_hash": None, "token_sealed": None}


@dataclass(frozen=True)
class Sharing:
    enabled: bool
    access_token: str | None
    created_at: datetime


@dataclass(frozen=True)
class Opened:
    """What a sharing token opens: one live recording."""

    project_id: str
    recording_id: str
    external_id: str


def configuration(rt: Runtime, project_id: str, recording_id: str) -> Sharing:
    """The recording's sharing settings, made (disabled) when it has none yet."""
    row = _row(rt, recording_id)
    if row is None:
        try:
            with rt.db.transaction() as s:
                s.add(
                    SharingConfiguration(
                        recording_id=recording_id, project_id=project_id, enabled=False, created_at=rt.now()
                    )
                )
        except IntegrityError:
            pass  # made by a concurrent read
        row = _row(rt, recording_id)
        assert row is not None
    return _present(rt, row)


def set_enabled(rt: Runtime, project_id: str, recording_id: str, enabled: bool) -> Sharing:
    """Turn the link on (a new token unless it is on already) or off (its token stops working now)."""
    configuration(rt, project_id, recording_id)
    if enabled:
        token = _fresh(rt, recording_id)
        _update(rt, recording_id, SharingConfiguration.enabled.is_(False), enabled=True, **token)
    else:
        _update(rt, recording_id, SharingConfiguration.enabled.is_(True), **_OFF)
    return configuration(rt, project_id, recording_id)


def refresh(rt: Runtime, project_id: str, recording_id: str) -> Sharing:
    """A new access token for an enabled link (the old one stops working); a disabled link stays off."""
    configuration(rt, project_id, recording_id)
    _update(rt, recording_id, SharingConfiguration.enabled.is_(True), **_fresh(rt, recording_id))
    return configuration(rt, project_id, recording_id)


def _fresh(rt: Runtime, recording_id: str) -> dict[str, str]:
    """The columns of a newly minted access token."""
    token = new_secret("shr")
    return {
        "token_hash": hash_secret(token),
        "token_sealed": sealing.seal(rt.config.secret_key, token, _context(recording_id)),
    }


def _update(rt: Runtime, recording_id: str, guard: ColumnElement[bool], **values: Any) -> int:
    """Set `values` on the recording's link in one statement if `guard` still holds; rows changed."""
    with rt.db.transaction() as s:
        return affected(
            s,
            update(SharingConfiguration)
            .where(SharingConfiguration.recording_id == recording_id, guard)
            .values(**values),
        )


def opened_by(rt: Runtime, token: str) -> Opened | None:
    """The live recording an enabled sharing token opens, or None."""
    if not token or len(token) > 200:
        return None
    with rt.db.read() as s:
        row = s.execute(
            select(Recording.project_id, Recording.id, Recording.external_id)
            .join(SharingConfiguration, SharingConfiguration.recording_id == Recording.id)
            .where(
                SharingConfiguration.token_hash == hash_secret(token),
                SharingConfiguration.enabled.is_(True),
                Recording.state != RecordingState.DELETED,
            )
        ).one_or_none()
    return None if row is None else Opened(row[0], row[1], row[2])


def _row(rt: Runtime, recording_id: str) -> SharingConfiguration | None:
    with rt.db.read() as s:
        return s.get(SharingConfiguration, recording_id)


def _present(rt: Runtime, row: SharingConfiguration) -> Sharing:
    """The settings of `row`; a token that no longer opens (MEETREC_SECRET_KEY changed) turns the link off."""
    if not (row.enabled and row.token_sealed):
        return Sharing(row.enabled, None, row.created_at)
    try:
        token = sealing.unseal(rt.config.secret_key, row.token_sealed, _context(row.recording_id))
    except SealError:
        log.warning("recording %s: its sharing token does not open; the link is off", row.recording_id)
        _update(rt, row.recording_id, SharingConfiguration.token_sealed == row.token_sealed, **_OFF)
        return Sharing(False, None, row.created_at)
    return Sharing(True, token, row.created_at)


def _context(recording_id: str) -> str:
    return f"sharing:{recording_id}"
