"""Wire shapes of Eyeson's room, user and recording objects, shared by the API and webhook events.

Neutral ground and pure: it shapes what it is given and signs nothing, so the API's presenters and the
services that build webhook payloads can both use it without an import cycle. The callers sign the links
(`app.services.access.links`): a `recording_update` event is stored without them and its delivery signs
them afresh, so the receiver gets what `GET /recordings/{id}` answers at that moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from app.models import Participant, Recording, RecordingState, Room


@dataclass(frozen=True)
class RecordingLinks:
    """A recording's presigned links: None where it has none (unfinished, no poster) or none was signed."""

    download: str | None = None
    poster: str | None = None


UNSIGNED = RecordingLinks()


class InteractionEvent(Protocol):
    """What `session_event` reads of an interaction event (an event_store.StoredEvent)."""

    @property
    def event_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def ts(self) -> float: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


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
        "media_source": redacted_source(r.media_source),
    }


REDACTED = "***"


def redacted_source(url: str | None) -> str | None:
    """A media source as it may be shown: credentials never are. The userinfo (`rtmp://user:secret@`)
    and every query value (`srt://...?passphrase=`, a signed HLS URL's token) become `***`."""
    if not url or "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{name.partition('=')[0]}={REDACTED}" if name else name for name in parts.query.split("&")
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


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


def recording_links(recording_id: str, public_url: str, signed: RecordingLinks) -> dict[str, str | None]:
    """A recording's `links` object: its API URL under `public_url`, and the `signed` links as given."""
    return {
        "self": f"{public_url}/recordings/{recording_id}",
        "download": signed.download,
        "poster": signed.poster,
    }


def recording(rec: Recording, public_url: str, signed: RecordingLinks) -> dict[str, Any]:
    """Eyeson's recording object plus meetrec's extensions, with the `signed` links as given."""
    return {
        "id": rec.id,
        "created_at": int(rec.created_at.timestamp()),
        "duration": round(rec.duration) if rec.duration is not None else None,
        "links": recording_links(rec.id, public_url, signed),
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
        "capture_attempts": rec.capture_attempts or 0,
        "gaps": list(rec.gaps or []),
        "persist": bool(rec.persist),
        "legal_hold": bool(rec.legal_hold),
        "stopped_at": iso(rec.stopped_at),
        "finished_at": iso(rec.finished_at),
        # The sessions API's fields (Unix seconds, like `created_at`).
        "description": rec.description,
        "start_time": int(rec.created_at.timestamp()),
        # Ended once stopped, not when the stop was asked for: while a capture is still closing (state
        # started) it is null, like `duration`; both appear with `stopped`.
        "end_time": None
        if rec.state == RecordingState.STARTED
        else _unix(rec.stop_requested_at or rec.stopped_at),
        "event_count": rec.event_count or 0,
    }


def _unix(ts: datetime | None) -> int | None:
    return int(ts.timestamp()) if ts is not None else None


def session_event(
    event: InteractionEvent, offset: float | None, screenshot_url: str | None
) -> dict[str, Any]:
    """An interaction event as the sessions API shows it: id, type, timestamp, its type's fields, the
    given `screenshot_path` link (or null) and `offset`, the seconds into the video (null without one)."""
    ts = event.ts
    return {
        "id": event.event_id,
        "type": event.type,
        "timestamp": int(ts) if ts.is_integer() else ts,
        **event.data,
        "screenshot_path": screenshot_url,
        "offset": offset,
    }
