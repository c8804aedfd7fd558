"""Wire shapes as the API hands them out: `app.wire` shapes them, this signs their links (afresh, logged)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app import wire
from app.models import Recording
from app.runtime import Runtime
from app.services.access import links
from app.services.interactions.event_store import StoredEvent
from app.services.pipeline.timeline import video_offset
from app.wire import iso, room, user

__all__ = ["iso", "issued", "recording", "room", "session_event", "user"]


def recording(rt: Runtime, rec: Recording, signed: wire.RecordingLinks = wire.UNSIGNED) -> dict[str, Any]:
    """The recording under this deployment's public URL with the `signed` links (none by default)."""
    return wire.recording(rec, rt.config.public_url, signed)


def issued(
    rt: Runtime, found: list[Recording], api_key_id: str | None, purpose: str = links.API
) -> list[dict[str, Any]]:
    """Recordings as the API hands them out; every download link among them goes to the audit log."""
    signed = [links.fresh(rt, r) for r in found]
    links.record(rt, [r for r, s in zip(found, signed, strict=True) if s.download], purpose, api_key_id)
    return [recording(rt, r, s) for r, s in zip(found, signed, strict=True)]


def session_event(
    rt: Runtime, event: StoredEvent, timeline: Sequence[Sequence[float]] | None
) -> dict[str, Any]:
    """An interaction event as the sessions API shows it, its screenshot link signed afresh (one hour)."""
    screenshot = links.screenshot_link(rt, event.screenshot_key)
    return wire.session_event(event, video_offset(timeline, event.ts), screenshot)
