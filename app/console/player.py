"""What the detail page's player needs: fresh links to the video and poster, and the session's events.

The links are the ones the API hands out (signed afresh, valid one hour; S3 serves byte ranges, so the
player seeks), logged in the link audit with purpose "console".
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from app.api import presenters
from app.models import Recording
from app.runtime import Runtime
from app.services.access import links
from app.services.interactions import event_store

CONSOLE = "console"
# A page lists at most this many events (one query); the sessions API pages through the rest.
MAX_EVENTS = 1000


def sources(rt: Runtime, rec: Recording, api_key_id: str) -> dict[str, str | None]:
    """The video and poster links of a finished recording (None before it finishes), as
    `links.handed_out` gives them: a reload within the reuse window plays the browser's cached copy."""
    [signed] = links.handed_out(rt, [rec], CONSOLE, api_key_id)
    return {"video": signed.download, "poster": signed.poster}


def events(rt: Runtime, rec: Recording) -> list[dict[str, Any]]:
    """The recording's first `MAX_EVENTS` interaction events in timestamp order, as the sessions API
    shows them: `id`, `type`, `timestamp` (Unix seconds), the type's fields, `screenshot_path` (a fresh
    link or None) and `offset`, the seconds into the video (None without one)."""
    found = islice(event_store.iter_events(rt, rec.id, page=MAX_EVENTS), MAX_EVENTS)
    return [presenters.session_event(rt, event, rec.timeline) for event in found]
