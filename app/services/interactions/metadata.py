"""Recording metadata: searchable key/value pairs on a recording, each with a version and a timestamp.

Values are JSON scalars. A key's `version` starts at 1 and rises by one whenever its value changes
(writing the same value again changes nothing, so clients may resend their metadata freely);
`updated_at` is the time of that change. `search` finds a project's web replays by exact values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app.db import affected
from app.errors import Unprocessable
from app.models import Recording, RecordingMeta, RecordingState, ReplaySummary
from app.runtime import Runtime
from app.services.interactions import replays

MAX_KEYS = 100  # per call
MAX_KEY_LENGTH = 200
MAX_MATCH_LENGTH = 500  # a string value's length; other values' JSON text
MAX_FILTERS = 10


@dataclass(frozen=True)
class Listed:
    """One replay in a search result: the id its client knows and when it was created."""

    recording_id: str
    external_id: str
    created_at: datetime


def canonical(value: Any) -> tuple[str, str]:
    """(stored JSON text, the text filters compare): a string matches as is, other scalars as JSON."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text, value if isinstance(value, str) else text


def check(values: dict[str, Any]) -> None:
    """Unprocessable, with the offending keys, unless every pair can be stored."""
    if not values:
        raise Unprocessable("send at least one key")
    if len(values) > MAX_KEYS:
        raise Unprocessable(f"at most {MAX_KEYS} keys per call")
    errors: dict[str, list[str]] = {}
    for key, value in values.items():
        if not key or len(key) > MAX_KEY_LENGTH:
            errors[key[:50] or "(empty)"] = [f"keys are 1..{MAX_KEY_LENGTH} characters"]
        elif value is not None and not isinstance(value, str | int | float | bool):
            errors[key] = ["values are strings, numbers, booleans or null"]
        elif len(canonical(value)[1]) > MAX_MATCH_LENGTH:
            errors[key] = [f"values are at most {MAX_MATCH_LENGTH} characters"]
    if errors:
        raise Unprocessable("some metadata cannot be stored", errors={"json": errors})


def set_meta(rt: Runtime, project_id: str, external_id: str, values: dict[str, Any]) -> None:
    """Store `values` on the recording `external_id` names (created when new, like a first batch)."""
    check(values)
    set_meta_on(rt, project_id, replays.open_replay(rt, project_id, external_id), values)


def set_meta_on(rt: Runtime, project_id: str, recording_id: str, values: dict[str, Any]) -> None:
    """Store `values` (checked) on an open replay whose recording id is known (`replays.ingest` gave it)."""
    for attempt in range(2):
        try:
            _write(rt, project_id, recording_id, values)
            return
        except IntegrityError:  # a concurrent call inserted one of the keys first: update it instead
            if attempt:
                raise


def _write(rt: Runtime, project_id: str, recording_id: str, values: dict[str, Any]) -> None:
    now = rt.now()
    with rt.db.transaction() as s:
        current = dict(
            s.execute(
                select(RecordingMeta.key, RecordingMeta.value).where(
                    RecordingMeta.recording_id == recording_id
                )
            ).all()
        )
        for key, value in values.items():
            text, match = canonical(value)
            if key not in current:
                s.add(
                    RecordingMeta(
                        recording_id=recording_id,
                        key=key,
                        project_id=project_id,
                        value=text,
                        match=match,
                        version=1,
                        updated_at=now,
                    )
                )
            elif current[key] != text:
                affected(
                    s,
                    update(RecordingMeta)
                    .where(RecordingMeta.recording_id == recording_id, RecordingMeta.key == key)
                    .values(value=text, match=match, version=RecordingMeta.version + 1, updated_at=now),
                )
        s.execute(
            update(ReplaySummary).where(ReplaySummary.recording_id == recording_id).values(last_ingest_at=now)
        )


def meta_of(rt: Runtime, project_id: str, external_id: str) -> list[RecordingMeta]:
    """Every metadata pair of a replay, by key; NotFound for unknown, foreign or deleted ids."""
    recording, _ = replays.replay_of(rt, project_id, external_id)
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(RecordingMeta)
                .where(RecordingMeta.recording_id == recording.id)
                .order_by(RecordingMeta.key)
            )
        )


def value_of(meta: RecordingMeta) -> Any:
    return decode(meta.value)


def decode(stored: str) -> Any:
    """A stored value (canonical JSON text) as the value it was."""
    return json.loads(stored)


def search(
    rt: Runtime, project_id: str, filters: dict[str, str], limit: int = 50, offset: int = 0
) -> list[Listed]:
    """The project's web replays whose metadata holds every `key: value` of `filters`, newest first."""
    if len(filters) > MAX_FILTERS:
        raise Unprocessable(f"at most {MAX_FILTERS} meta filters")
    query = (
        select(Recording.id, Recording.external_id, Recording.created_at)
        .join(ReplaySummary, ReplaySummary.recording_id == Recording.id)
        .where(ReplaySummary.project_id == project_id, Recording.state != RecordingState.DELETED)
    )
    for key, value in filters.items():
        meta = aliased(RecordingMeta)
        query = query.join(
            meta,
            (meta.recording_id == Recording.id)
            & (meta.project_id == project_id)
            & (meta.key == key)
            & (meta.match == value),
        )
    query = query.order_by(Recording.created_at.desc(), Recording.id.desc()).limit(limit).offset(offset)
    with rt.db.read() as s:
        return [Listed(*row) for row in s.execute(query).all()]


@dataclass(frozen=True)
class Statistics:
    total_recordings: int
    recordings_this_month: int
    total_storage_bytes: int


def statistics(rt: Runtime, project_id: str) -> Statistics:
    """The project's live web replays: how many, how many made this calendar month (UTC), and the
    bytes their stored blocks take."""
    now = rt.now().astimezone(UTC)
    month = datetime(now.year, now.month, 1, tzinfo=UTC)
    this_month = func.sum(case((Recording.created_at >= month, 1), else_=0))
    with rt.db.read() as s:
        row = s.execute(
            select(
                func.count(), func.coalesce(this_month, 0), func.coalesce(func.sum(ReplaySummary.bytes), 0)
            )
            .select_from(ReplaySummary)
            .join(Recording, Recording.id == ReplaySummary.recording_id)
            .where(ReplaySummary.project_id == project_id, Recording.state != RecordingState.DELETED)
        ).one()
    return Statistics(int(row[0]), int(row[1]), int(row[2]))
