"""System: queue depths, workers and their heartbeats, the scheduler's ticks, storage used (admin)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import render_template

from app.console import auth, queries
from app.console.auth import current_key, rt
from app.console.blueprint import bp
from app.errors import QueueError
from app.services.operations import counts
from app.services.operations import system as system_service


@bp.get("/system", endpoint="system")
@auth.signed_in("admin")
def system_page():
    """What runs now; Redis being down is shown on the page rather than failing it."""
    try:
        status, redis_error = system_service.status(rt()), None
    except QueueError as e:
        status, redis_error = None, str(e)
    storage = {
        "all": queries.storage_used(rt()),
        "project": queries.storage_used(rt(), current_key().project_id),
    }
    return render_template(
        "console/system.html",
        status=status,
        redis_error=redis_error,
        storage=storage,
        ticks=_ticks(status),
        captures=counts.captures_running(rt()),
    )


def _ticks(status: dict[str, Any] | None) -> list[tuple[str, datetime, str]]:
    """Each timetable entry's last tick as (entry, when, by process), the service giving seconds ago."""
    if status is None:
        return []
    now = rt().now()
    found = status["scheduler"]["last_ticks"]
    return [(entry, now - timedelta(seconds=t["seconds_ago"]), t["by"]) for entry, t in sorted(found.items())]
