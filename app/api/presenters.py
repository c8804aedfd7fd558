"""Wire shapes as the API hands them out: `app.wire` shapes them, this adds their links (logged)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flask import Response

from app import wire
from app.models import Recording
from app.runtime import Runtime
from app.services.access import links
from app.services.interactions.event_store import StoredEvent
from app.services.pipeline.timeline import video_offset
from app.wire import iso, room, user

__all__ = ["dumps", "iso", "issued", "json_answer", "recording", "room", "session_event", "user"]


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def json_answer(value: Any, status: int = 200) -> Response:
    """`value` as a JSON body, as the wire shapes of `app.wire` already are: no schema dump (the
    route's schema still documents it; the fuzz tests check the two agree)."""
    return Response(dumps(value), status=status, mimetype="application/json")


def recording(rt: Runtime, rec: Recording, signed: wire.RecordingLinks = wire.UNSIGNED) -> dict[str, Any]:
    """The recording under this deployment's public URL with the `signed` links (none by default)."""
    return wire.recording(rec, rt.config.public_url, signed)


def issued(
    rt: Runtime, found: list[Recording], api_key_id: str | None, purpose: str = links.API
) -> list[dict[str, Any]]:
    """Recordings as the API hands them out (`links.handed_out`): every download link among them is in
    the audit log."""
    return _shown(rt, found, links.handed_out(rt, found, purpose, api_key_id))


def issued_again(
    rt: Runtime, found: list[Recording], api_key_id: str | None, purpose: str = links.API
) -> list[dict[str, Any]] | None:
    """`issued` when it writes nothing to the audit log (`links.handed_out_again`), else None."""
    signed = links.handed_out_again(rt, found, purpose, api_key_id)
    return None if signed is None else _shown(rt, found, signed)


def _shown(rt: Runtime, found: list[Recording], signed: list[wire.RecordingLinks]) -> list[dict[str, Any]]:
    return [recording(rt, r, s) for r, s in zip(found, signed, strict=True)]


def session_event(
    rt: Runtime, event: StoredEvent, timeline: Sequence[Sequence[float]] | None
) -> dict[str, Any]:
    """An interaction event as the sessions API shows it, its screenshot link signed afresh (one hour)."""
    screenshot = links.screenshot_link(rt, event.screenshot_key)
    return wire.session_event(event, video_offset(timeline, event.ts), screenshot)
