"""Wire shapes shared by several resources; they live in `app.wire` so services can build them too."""

from __future__ import annotations

from typing import Any

from app.models import Recording
from app.runtime import Runtime
from app.services.core import links
from app.wire import iso, recording, room, user

__all__ = ["iso", "issued", "recording", "room", "user"]


def issued(
    rt: Runtime, found: list[Recording], api_key_id: str | None, purpose: str = links.API
) -> list[dict[str, Any]]:
    """Recordings as the API hands them out; every download link among them goes to the audit log."""
    bodies = [recording(rt, r) for r in found]
    links.record(
        rt, [r for r, b in zip(found, bodies, strict=True) if b["links"]["download"]], purpose, api_key_id
    )
    return bodies
