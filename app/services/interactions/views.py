"""Who read a recording (PostHog's `viewed` and `viewers`): a key that retrieves a recording or reads
its snapshots marks it viewed. One row per recording and key, with the time of its first read."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.models import ApiKey, RecordingView
from app.runtime import Runtime


def mark_viewed(rt: Runtime, recording_id: str, api_key_id: str) -> None:
    """Record that the key read the recording (once; later reads change nothing)."""
    with rt.db.read() as s:
        if s.get(RecordingView, (recording_id, api_key_id)) is not None:
            return
    try:
        with rt.db.transaction() as s:
            s.add(RecordingView(recording_id=recording_id, api_key_id=api_key_id, viewed_at=rt.now()))
    except IntegrityError:
        pass  # a concurrent read marked it first


def viewers_of(rt: Runtime, recording_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """(key id, viewer name) of every key that read each recording, first viewer first. A key is named by
    its name, or by the start of its id when it has none (its prefix is part of its secret)."""
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    if not recording_ids:
        return found
    with rt.db.read() as s:
        rows = s.execute(
            select(RecordingView.recording_id, ApiKey.id, ApiKey.name)
            .join(ApiKey, ApiKey.id == RecordingView.api_key_id)
            .where(RecordingView.recording_id.in_(recording_ids))
            .order_by(RecordingView.viewed_at)
        ).all()
    for recording_id, key_id, name in rows:
        found[recording_id].append((key_id, name or f"key {key_id[:8]}"))
    return found
