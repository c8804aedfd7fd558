"""meetrec's replays, playlists and projects in PostHog's JSON shapes.

A recording's `distinct_id` is the first of its metadata keys DISTINCT_ID_KEYS that is set (posthog-js
sends `distinct_id`; rrweb clients commonly `userId`); `person` is built from it, with the recording's
metadata as its properties, or null without one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import request

from app.models import Playlist, Project, RecordingState
from app.services.interactions import catalog
from app.services.interactions.catalog import Entry
from app.services.interactions.playlists import Counts

DISTINCT_ID_KEYS = ("distinct_id", "$distinct_id", "userId", "user_id", "userID")
NAME_KEYS = ("name", "$name", "email", "$email")
LIBRARY_KEYS = ("snapshot_library", "$lib")
_PERSONS = uuid.UUID("6f1c7c2e-2f43-4a8e-9a57-8d0b5f0e4c11")  # namespace of person uuids


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_ms(ms: int | None) -> str | None:
    """An event timestamp (Unix ms) in ISO 8601; None when absent or past what a date can hold."""
    try:
        return None if ms is None else iso(datetime.fromtimestamp(ms / 1000, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def recording(entry: Entry, key_id: str | None, now: datetime) -> dict[str, Any]:
    """The PostHog recording object of a catalogue entry, as the key `key_id` sees it."""
    r, s = entry.recording, entry.summary
    duration = round(catalog.duration_ms(s) / 1000)
    active = min(duration, round(s.active_ms / 1000))
    distinct_id = _first(entry.meta, DISTINCT_ID_KEYS)
    library = _first(entry.meta, LIBRARY_KEYS)
    return {
        "id": r.external_id,
        "distinct_id": distinct_id,
        "viewed": any(viewer == key_id for viewer, _ in entry.viewers),
        "viewers": [name for viewer, name in entry.viewers if viewer != key_id],
        "recording_duration": duration,
        "active_seconds": active,
        "inactive_seconds": max(0, duration - active),
        "start_time": iso_ms(s.first_timestamp),
        "end_time": iso_ms(s.last_timestamp),
        "click_count": s.click_count,
        "keypress_count": s.keypress_count,
        "mouse_activity_count": s.mouse_activity_count,
        "console_log_count": s.console_log_count,
        "console_warn_count": s.console_warn_count,
        "console_error_count": s.console_error_count,
        "start_url": s.start_url,
        "person": _person(r.project_id, distinct_id, entry) if distinct_id else None,
        "retention_period_days": entry.retention_days,
        "expiry_time": iso(entry.expires_at),
        "recording_ttl": None if entry.expires_at is None else max(0, (entry.expires_at - now).days),
        "snapshot_source": "web",
        "snapshot_library": library or "rrweb",
        "ongoing": r.state == RecordingState.STARTED,
        "activity_score": activity_score(s, duration, active),
        "external_references": [],
    }


def activity_score(s: Any, duration: int, active: int) -> float:
    """PostHog's score: (active s + clicks + keypresses + errors) / (mouse activity + duration s +
    errors + logs + warnings) * 100, to two places; 0 for an empty recording."""
    numerator = active + s.click_count + s.keypress_count + s.console_error_count
    denominator = (
        s.mouse_activity_count + duration + s.console_error_count + s.console_log_count + s.console_warn_count
    )
    return round(numerator / denominator * 100, 2) if denominator else 0.0


def shared_recording(entry: Entry) -> dict[str, Any]:
    """What a sharing token reads: PostHog's shared serializer (id, duration, start and end)."""
    s = entry.summary
    return {
        "id": entry.recording.external_id,
        "recording_duration": round(catalog.duration_ms(s) / 1000),
        "start_time": iso_ms(s.first_timestamp),
        "end_time": iso_ms(s.last_timestamp),
    }


def _first(meta: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = meta.get(name)
        if value not in (None, ""):
            return str(value)
    return None


def _person(project_id: str, distinct_id: str, entry: Entry) -> dict[str, Any]:
    person = uuid.uuid5(_PERSONS, f"{project_id}:{distinct_id}")
    return {
        "id": person.int >> 75,  # 53 bits: exact in a JavaScript number
        "name": _first(entry.meta, NAME_KEYS) or distinct_id,
        "distinct_ids": [distinct_id],
        "properties": entry.meta,
        "created_at": iso(entry.recording.created_at),
        "uuid": str(person),
        "last_seen_at": iso(entry.summary.last_ingest_at),
    }


def page_links(base: str, count: int, limit: int, offset: int) -> tuple[str | None, str | None]:
    """Absolute URLs (under `base`, MEETREC_PUBLIC_URL: never the request's Host) of the next and
    previous pages, in Django REST framework's limit/offset style."""

    def at(start: int) -> str:
        query = [(k, v) for k, v in request.args.items(multi=True) if k not in ("limit", "offset")]
        query += [("limit", str(limit)), ("offset", str(start))]
        return f"{base}{request.path}?{urlencode(query)}"

    following = at(offset + limit) if offset + limit < count else None
    preceding = at(max(0, offset - limit)) if offset > 0 else None
    return following, preceding


def playlist(p: Playlist, counts: Counts) -> dict[str, Any]:
    creator = {"id": p.created_by} if p.created_by else None
    return {
        "id": p.id,
        "short_id": p.short_id,
        "name": p.name,
        "derived_name": p.derived_name,
        "description": p.description,
        "pinned": p.pinned,
        "created_at": iso(p.created_at),
        "created_by": creator,
        "deleted": p.deleted,
        "filters": p.filters,
        "last_modified_at": iso(p.last_modified_at),
        "last_modified_by": None,
        "recordings_counts": {"collection": {"count": counts.count, "watched_count": counts.watched}},
        "type": p.type,
    }


def project(p: Project, api_token: str, retention_days: int) -> dict[str, Any]:
    return {
        "id": p.id,
        "uuid": str(uuid.UUID(hex=p.id.ljust(32, "0")[:32])) if _hex(p.id) else p.id,
        "organization": p.id,
        "project_id": p.id,
        "api_token": api_token,
        "name": p.name,
        "timezone": "UTC",
        "created_at": iso(p.created_at),
        "session_recording_opt_in": True,
        "session_recording_retention_period": f"{retention_days}d",
    }


def _hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return len(text) <= 32
