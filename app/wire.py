"""Wire shapes of Eyeson's room, user and recording objects, shared by the API and webhook events.

Neutral ground: the API's presenters and the services that build webhook payloads both use these, so
a `recording_update` event carries exactly what `GET /recordings/{id}` answers at that moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.models import Participant, Recording, Room
from app.runtime import Runtime
from app.services.pipeline.timeline import video_offset

if TYPE_CHECKING:
    from app.services.interactions.event_store import StoredEvent


def iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def room(r: Room) -> dict[str, Any]:
    return {
        "id": r.key,
        "name": r.name,
        "ready": True,
        "started_at": iso(r.started_at),
        "shutdown": r.shutdown,
        "guest_token": r.guest_token,
        "options": r.options,
        "media_source": r.media_source,
    }


def user(p: Participant | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "id": p.user_id or p.id,
        "name": p.name,
        "avatar": p.avatar,
        "guest": p.guest,
        "joined_at": iso(p.joined_at),
    }


def recording(rt: Runtime, rec: Recording) -> dict[str, Any]:
    """Eyeson's recording object plus meetrec's extensions; the download link is signed afresh."""
    # Imported here: app.services.core.recordings emits webhook events built with this very function.
    from app.services.core import recordings

    return {
        "id": rec.id,
        "created_at": int(rec.created_at.timestamp()),
        "duration": round(rec.duration) if rec.duration is not None else None,
        "links": {
            "self": f"{rt.config.public_url}/recordings/{rec.id}",
            "download": recordings.download_link(rt, rec),
            "poster": recordings.poster_link(rt, rec),
        },
        "user": user(rec.participant),
        "room": room(rec.room) if rec.room else None,
        "state": rec.state,
        "duration_ms": round(rec.duration * 1000) if rec.duration is not None else None,
        "size": rec.size,
        "sha256": rec.sha256,
        "error": rec.error,
        "ingest": rec.ingest,
        "stop_reason": rec.stop_reason,
        "reconnects": rec.reconnects or 0,
        "gaps": list(rec.gaps or []),
        "persist": bool(rec.persist),
        "legal_hold": bool(rec.legal_hold),
        "stopped_at": iso(rec.stopped_at),
        "finished_at": iso(rec.finished_at),
        # The sessions API's fields (Unix seconds, like `created_at`).
        "description": rec.description,
        "start_time": int(rec.created_at.timestamp()),
        "end_time": _unix(rec.stop_requested_at or rec.stopped_at),
        "event_count": rec.event_count or 0,
    }


def _unix(ts: datetime | None) -> int | None:
    return int(ts.timestamp()) if ts is not None else None


def session_event(
    rt: Runtime, event: StoredEvent, timeline: Sequence[Sequence[float]] | None
) -> dict[str, Any]:
    """An interaction event as the sessions API shows it: id, type, timestamp, its type's fields, a
    one-hour `screenshot_path` link (or null) and `offset`, the seconds into the video (null without one)."""
    ts = event.ts
    return {
        "id": event.event_id,
        "type": event.type,
        "timestamp": int(ts) if ts.is_integer() else ts,
        **event.data,
        "screenshot_path": (
            rt.storage.presign_get(event.screenshot_key, rt.config.link_ttl_seconds)
            if event.screenshot_key
            else None
        ),
        "offset": video_offset(timeline, ts),
    }
